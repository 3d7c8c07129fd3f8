"""Port forwarding with the client's `stream.portforward` (a WebSocket speaking
`v4.channel.k8s.io`): arguments NAMESPACE POD ECHO_PORT REFUSED_PORT. Sends a line to the echo
port and reads it back, and waits for the error of the port nothing listens on; prints both."""

import time

from kubernetes import client
from kubernetes.stream import portforward

from common import connect, emit

LINE = b"hello from python\n"

namespace, pod, echo_port, refused_port = connect()
forward = portforward(
    client.CoreV1Api().connect_get_namespaced_pod_portforward,
    pod,
    namespace,
    ports=f"{echo_port},{refused_port}",
)
sock = forward.socket(int(echo_port))
sock.setblocking(True)
sock.settimeout(20)
sock.sendall(LINE)
echoed = b""
while len(echoed) < len(LINE):
    chunk = sock.recv(len(LINE) - len(echoed))
    if not chunk:
        break
    echoed += chunk
deadline = time.monotonic() + 20
error = forward.error(int(refused_port))
while error is None and time.monotonic() < deadline:
    time.sleep(0.05)
    error = forward.error(int(refused_port))
forward.close()
emit({"echoed": echoed.decode(), "error": error})
