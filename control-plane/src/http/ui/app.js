// Live events: the events page's table grows with each event the server's watch sends.
// Cells are set as text, never as HTML.
"use strict";

(function () {
  const live = document.getElementById("live");
  if (!live) {
    return;
  }
  const body = document.querySelector("table.objects tbody");
  const source = new EventSource(live.dataset.stream);
  source.addEventListener("open", function () {
    live.textContent = "Live: new events appear below.";
  });
  source.addEventListener("row", function (message) {
    const event = JSON.parse(message.data);
    const row = document.createElement("tr");
    row.className = "live";
    for (const cell of event.cells) {
      const td = document.createElement("td");
      td.textContent = cell;
      row.appendChild(td);
    }
    body.appendChild(row);
    const empty = document.querySelector("p.empty");
    if (empty) {
      empty.remove();
    }
  });
  source.addEventListener("error", function () {
    live.textContent = "Disconnected; reconnecting…";
  });
})();
