//! `skiff image ls|pull|rm`: a node's images through the API server's node proxy.

use std::time::Duration;

use skiff_e2e::{example, repo_root, wait_until, DevServer};

#[test]
fn images_are_listed_pulled_and_removed_only_when_unused() -> anyhow::Result<()> {
    example("ticker"); // fails clearly when the guests have not been built
    let guest = repo_root().join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm");
    let image = format!("file:{}", guest.display());
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    let pod = tmp.path().join("pod.yaml");
    std::fs::write(
        &pod,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: user}}\nspec:\n  containers:\n  - {{name: c, image: '{image}'}}\n"
        ),
    )?;
    cli.ok(&["apply", "-f", pod.to_str().expect("utf-8")])?;
    wait_until("the pod Running", Duration::from_secs(60), || {
        let pod = cli.json(&["get", "pod", "user"])?;
        Ok((pod["status"]["phase"] == "Running").then_some(()))
    })?;

    let listed = cli.ok(&["image", "ls"])?;
    assert!(listed.starts_with("IMAGE"), "{listed}");
    assert!(listed.contains(&image), "{listed}");

    let out = cli.run(&["image", "rm", &image])?;
    assert!(
        !out.success && out.stderr.contains("in use by container c"),
        "removed an image in use: {} {}",
        out.stdout,
        out.stderr
    );

    cli.ok(&["delete", "pod", "user", "--grace-period", "0"])?;
    let removed = wait_until("the image removable", Duration::from_secs(30), || {
        let out = cli.run(&["image", "rm", &image])?;
        Ok(out.success.then_some(out.stdout))
    })?;
    assert!(removed.contains("Deleted"), "{removed}");
    assert!(!cli.ok(&["image", "ls"])?.contains(&image));
    let out = cli.run(&["image", "rm", &image])?;
    assert!(
        !out.success && out.stderr.contains("not on this node"),
        "{}",
        out.stderr
    );

    let pulled = cli.ok(&["image", "pull", &image])?;
    assert!(pulled.contains("sha256:"), "{pulled}");
    assert!(cli.ok(&["image", "ls"])?.contains(&image));
    let out = cli.run(&["image", "pull", "file:/nowhere/missing.wasm"])?;
    assert!(
        !out.success && out.stderr.contains("missing.wasm"),
        "{}",
        out.stderr
    );
    let out = cli.run(&["image", "ls", "--node", "no-such-node"])?;
    assert!(
        !out.success && out.stderr.contains("no-such-node"),
        "{}",
        out.stderr
    );
    Ok(())
}
