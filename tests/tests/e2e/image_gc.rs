//! Image garbage collection: a node whose image filesystem passes the high threshold removes
//! the images no container uses, and keeps the one a pod runs. Needs root (CI is) to mount the
//! small tmpfs the node's data dir lives on.

use std::time::Duration;

use skiff_e2e::{example, repo_root, start_agent, wait_until, DevServer, Tmpfs};

const TIMEOUT: Duration = Duration::from_secs(60);

fn guest(name: &str) -> String {
    let path = repo_root().join(format!(
        "wasm-examples/target/wasm32-wasip1/release/{name}.wasm"
    ));
    format!("file:{}", path.display())
}

#[test]
fn unused_images_are_collected_when_the_disk_fills_and_used_ones_stay() -> anyhow::Result<()> {
    example("ticker"); // fails clearly when the guests have not been built
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let cli = server.cli();
    let disk = tmp.path().join("disk");
    let _tmpfs = Tmpfs::mount(&disk, 8)?;
    let mut agent = start_agent(
        &server.url(),
        &server.join_token()?,
        "gc-node",
        &disk.join("agent"),
        &[
            "--image-gc-high-threshold",
            "60",
            "--image-gc-low-threshold",
            "50",
            "--image-minimum-gc-age",
            "0s",
            "--image-gc-period",
            "1s",
            "--container-log-min-free",
            "1Mi",
        ],
    )?;
    wait_until("the node Ready", TIMEOUT, || {
        agent.check_running()?;
        Ok(cli.ok(&["get", "nodes"])?.contains(" Ready ").then_some(()))
    })?;

    let (used, unused) = (guest("ticker"), [guest("hello"), guest("crasher")]);
    let pod = tmp.path().join("pod.yaml");
    std::fs::write(
        &pod,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: user}}\nspec:\n  containers:\n  - {{name: c, image: '{used}'}}\n"
        ),
    )?;
    cli.ok(&["apply", "-f", pod.to_str().expect("utf-8")])?;
    wait_until("the pod Running", TIMEOUT, || {
        let pod = cli.json(&["get", "pod", "user"])?;
        Ok((pod["status"]["phase"] == "Running").then_some(()))
    })?;
    for image in &unused {
        cli.ok(&["image", "pull", image])?;
    }
    let listed = cli.ok(&["image", "ls"])?;
    assert!(
        unused
            .iter()
            .chain([&used])
            .all(|i| listed.contains(i.as_str())),
        "{listed}"
    );

    // Fill the node's filesystem past the high threshold with something that is not an image.
    std::fs::write(disk.join("filler"), vec![1u8; 5 << 20])?;
    let listed = wait_until("the unused images collected", TIMEOUT, || {
        agent.check_running()?;
        let listed = cli.ok(&["image", "ls"])?;
        Ok(unused
            .iter()
            .all(|i| !listed.contains(i.as_str()))
            .then_some(listed))
    })?;
    assert!(
        listed.contains(&used),
        "the image in use was collected: {listed}"
    );
    let pod = cli.json(&["get", "pod", "user"])?;
    assert_eq!(pod["status"]["phase"], "Running", "{pod}");
    assert!(
        agent.log().contains("could not free enough space"),
        "the node did not say that the rest is not its to free"
    );
    Ok(())
}
