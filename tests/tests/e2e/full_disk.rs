//! A full disk: a server whose data dir is a small tmpfs takes writes until the store cannot
//! persist any more. No write it could not make durable is acknowledged, the process does not
//! crash, and once the disk has room again a restart serves every acknowledged write.
//! Needs root (CI is) to mount the tmpfs.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_e2e::{wait_until, DevServer, Tmpfs};

#[test]
fn a_full_disk_never_acknowledges_a_write_it_could_not_persist() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let disk = Tmpfs::mount(&tmp.path().join("disk"), 40)?;
    // The data dir is the tmpfs itself; the server's log is beside it, on the real disk.
    let mut server = DevServer::start_with(&tmp.path().join("disk"), false, &[])?;
    let http = skiff_e2e::https_client_builder(&server.url())?
        .timeout(Duration::from_secs(20))
        .build()?;
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let payload = "x".repeat(200_000);
    let (mut acked, mut refused) = (Vec::new(), 0);
    for i in 0..400 {
        let name = format!("big-{i}");
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": name}, "data": {"v": payload}});
        match http.post(&url).json(&body).send() {
            Ok(r) if r.status().is_success() => acked.push(name),
            _ => refused += 1,
        }
        if refused >= 3 {
            break;
        }
    }
    assert!(
        refused >= 3,
        "the 40 MB disk never filled: {} writes",
        acked.len()
    );
    assert!(
        !acked.is_empty(),
        "nothing was written before the disk filled"
    );
    // The server is still up, and says it is not ready.
    server.process.check_running()?;
    let ready = http.get(format!("{}/readyz", server.url())).send()?;
    assert_eq!(ready.status().as_u16(), 503, "{}", server.log());
    let reason = ready.text()?;
    assert!(reason.contains("the store failed"), "readyz: {reason}");
    assert!(server.log().contains("this member stops serving"));
    // Health names the cause too, instead of 200.
    let health = http.get(format!("{}/healthz", server.url())).send()?;
    assert_eq!(
        health.status().as_u16(),
        503,
        "healthz after the store failed"
    );
    let cause = health.text()?;
    assert!(cause.contains("the store failed"), "healthz: {cause}");

    // Room again: after a restart every acknowledged write is there.
    server.kill9()?;
    disk.resize(400)?;
    server.restart()?;
    let present: Vec<String> = wait_until(
        "the list after the restart",
        Duration::from_secs(30),
        || {
            let list: Value = http.get(&url).send()?.error_for_status()?.json()?;
            Ok(list["items"].as_array().map(|items| {
                items
                    .iter()
                    .filter_map(|cm| cm["metadata"]["name"].as_str().map(str::to_string))
                    .collect()
            }))
        },
    )?;
    let missing: Vec<&String> = acked.iter().filter(|n| !present.contains(n)).collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    drop(server);
    drop(disk);
    Ok(())
}
