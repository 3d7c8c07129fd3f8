//! `skiff exec` and stock `kubectl exec` end to end, client → API server → agent: the busybox
//! test image (Debian's busybox-static) pushed to Debian's docker-registry, a control plane
//! and an agent with `--runtimes wasm,linux`. In a busybox pod, a command's stdout and stderr
//! arrive on the right streams and its exit code is the CLI's; `-i` pipes stdin; `-it` (under
//! `script`, which gives the CLI a terminal) runs on a terminal of the container's own devpts,
//! of the caller's size; `kubectl cp` copies a file in and out (tar over exec). kubectl 1.32
//! (WebSocket), kubectl 1.20 (SPDY) and the Python client (v4 WebSocket) do the same. A Wasm
//! pod and an unknown container give clear errors. Needs root, cgroups, busybox-static,
//! util-linux's `script`, both kubectls, the Python client and the built guests; leaves no
//! process behind when it fails.

use std::process::{Command, Stdio};
use std::time::Duration;

use skiff_e2e::linux::LinuxCluster;
use skiff_e2e::{kubectl_output, wait_until, PythonClient, Skiff};

const WAIT: Duration = Duration::from_secs(90);

fn pods(busybox: &str, guest: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: shell}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: busybox
    image: "{busybox}"
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata: {{name: guest}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: ticker
    image: "file:{guest}"
"#
    )
}

/// Whether every pod is Running.
fn all_running(cli: &Skiff) -> anyhow::Result<Option<()>> {
    let pods = cli.items(&["get", "pods"])?;
    Ok((pods.len() == 2 && pods.iter().all(|p| p["status"]["phase"] == "Running")).then_some(()))
}

#[test]
fn exec_streams_commands_in_linux_containers_and_refuses_wasm_ones() -> anyhow::Result<()> {
    let guest = skiff_e2e::example_guest("ticker")?;
    let mut cluster = LinuxCluster::start(&[("node", &["--runtimes", "wasm,linux"])])?;
    let (server, tmp) = (&cluster.server, &cluster.tmp);
    let cli = server.cli();
    cli.apply_yaml(&pods(&cluster.busybox, &guest.display().to_string()))?;
    wait_until("both pods Running", WAIT, || {
        cluster.agents[0].check_running()?;
        all_running(&cli)
    })?;

    // Output on the right streams, and the command's exit code as ours.
    let out = cli.run(&[
        "exec",
        "shell",
        "--",
        "sh",
        "-c",
        "echo hi; echo err >&2; exit 3",
    ])?;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stdout, "hi\n");
    assert!(out.stderr.starts_with("err\n"), "{out:?}");
    assert!(
        out.stderr.contains("command terminated with exit code 3"),
        "{out:?}"
    );
    assert_eq!(
        cli.ok(&["exec", "shell", "-c", "busybox", "--", "true"])?,
        ""
    );

    // -i: our stdin is the command's, to its end.
    let piped = cli.run_with_stdin(
        &[
            "exec",
            "-i",
            "shell",
            "--",
            "sh",
            "-c",
            "cat; echo; echo done",
        ],
        Some("from stdin"),
    )?;
    assert!(piped.success, "{piped:?}");
    assert_eq!(piped.stdout, "from stdin\ndone\n");
    let counted = cli.run_with_stdin(&["exec", "-i", "shell", "--", "wc", "-c"], Some("12345"))?;
    assert_eq!(counted.stdout.trim(), "5", "{counted:?}");
    // Without -i the command reads end of file at once.
    let closed = cli.run_with_stdin(&["exec", "shell", "--", "cat"], Some("ignored"))?;
    assert!(closed.success && closed.stdout.is_empty(), "{closed:?}");

    // -it on a terminal (script gives the CLI one, 50x132): the command's is a terminal too,
    // of our size, and one of the container's devpts (`tty` names it).
    let line = format!(
        "stty rows 50 cols 132; {} --kubeconfig {} --server {} exec -it shell -- sh -c '[ -t 0 ] && [ -t 1 ] && echo on-a-tty; busybox tty; busybox stty size; exit 4'",
        Skiff::locate().display(),
        skiff_e2e::kubeconfig_for(&server.url())
            .expect("the server's kubeconfig")
            .display(),
        server.url()
    );
    let script = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .output()?;
    let shown = String::from_utf8_lossy(&script.stdout).to_string();
    assert!(shown.contains("on-a-tty"), "{shown:?} {script:?}");
    assert!(shown.contains("50 132"), "{shown:?}");
    // The container's own terminal, of its own devpts instance.
    assert!(shown.contains("/dev/pts/0"), "{shown:?}");
    assert_eq!(script.status.code(), Some(4), "{shown:?}");

    // A Wasm container cannot exec; an unknown container is named.
    let wasm = cli.run(&["exec", "guest", "--", "sh"])?;
    assert_eq!(wasm.code, Some(1), "{wasm:?}");
    assert!(
        wasm.stderr
            .contains("exec is not supported for Wasm containers"),
        "{wasm:?}"
    );
    let unknown = cli.run(&["exec", "shell", "-c", "nope", "--", "true"])?;
    assert!(!unknown.success, "{unknown:?}");
    assert!(unknown.stderr.contains("\"nope\" not found"), "{unknown:?}");
    let missing = cli.run(&["exec", "no-such-pod", "--", "true"])?;
    assert!(missing.stderr.contains("not found"), "{missing:?}");

    // Stock kubectl speaks the same protocol: output, and the exit code as its own.
    let cache = tmp.path().join("kube-cache");
    let echoed = kubectl_output(
        &server.url(),
        &cache,
        &["exec", "shell", "--", "echo", "hi"],
    )?;
    assert!(echoed.status.success(), "{echoed:?}");
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), "hi\n");
    let failed = kubectl_output(
        &server.url(),
        &cache,
        &["exec", "shell", "--", "sh", "-c", "echo out; exit 3"],
    )?;
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");
    assert_eq!(String::from_utf8_lossy(&failed.stdout), "out\n");
    // kubectl falls back to SPDY when the WebSocket is refused; the fallback is refused for
    // the same reason, which kubectl prints.
    let wasm = kubectl_output(&server.url(), &cache, &["exec", "guest", "--", "sh"])?;
    let refused = String::from_utf8_lossy(&wasm.stderr);
    assert!(!wasm.status.success(), "{wasm:?}");
    assert!(
        refused.contains("exec is not supported for Wasm containers"),
        "{refused}"
    );
    let stdin = kubectl_stdin(
        skiff_e2e::kubectl_command(&server.url(), &cache),
        "hello kubectl",
    )?;
    assert_eq!(stdin.trim(), "13", "kubectl exec -i");

    // kubectl 1.20 speaks SPDY only: output on the right streams, the exit code, stdin to its
    // end, and kubectl cp over it.
    let old = |args: &[&str]| {
        let mut command = skiff_e2e::kubectl_1_20_command(&server.url(), &cache);
        command.args(args).output()
    };
    let spdy = old(&[
        "exec",
        "shell",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ])?;
    assert_eq!(spdy.status.code(), Some(3), "{spdy:?}");
    assert_eq!(String::from_utf8_lossy(&spdy.stdout), "out\n");
    assert!(
        String::from_utf8_lossy(&spdy.stderr).starts_with("err\n"),
        "{spdy:?}"
    );
    let stdin = kubectl_stdin(
        skiff_e2e::kubectl_1_20_command(&server.url(), &cache),
        "hello over spdy",
    )?;
    assert_eq!(stdin.trim(), "15", "kubectl 1.20 exec -i");
    let old_wasm = old(&["exec", "guest", "--", "sh"])?;
    assert!(!old_wasm.status.success(), "{old_wasm:?}");
    assert!(
        String::from_utf8_lossy(&old_wasm.stderr)
            .contains("exec is not supported for Wasm containers"),
        "{old_wasm:?}"
    );

    // The Python client's WebSocket speaks v4: outputs, exit code and stdin.
    let python = PythonClient::for_server(&server.url())?;
    let seen = python.run("exec.py", &["default", "shell"])?;
    assert_eq!(
        seen["outputs"],
        serde_json::json!({"stdout": "out\n", "stderr": "err\n", "code": 3}),
        "{seen}"
    );
    assert_eq!(
        seen["stdin"],
        serde_json::json!({"stdout": "12345", "stderr": "", "code": 0}),
        "{seen}"
    );

    // kubectl cp runs tar in the container over the same exec: a file in and back out.
    let local = tmp.path().join("copied-in.txt");
    std::fs::write(&local, "carried by kubectl cp\n")?;
    let local = local.to_str().expect("utf-8");
    let copy_in = kubectl_output(&server.url(), &cache, &["cp", local, "shell:/tmp/in.txt"])?;
    assert!(copy_in.status.success(), "{copy_in:?}");
    assert_eq!(
        cli.ok(&["exec", "shell", "--", "cat", "/tmp/in.txt"])?,
        "carried by kubectl cp\n"
    );
    let back = tmp.path().join("copied-out.txt");
    let back_path = back.to_str().expect("utf-8");
    let copy_out = kubectl_output(
        &server.url(),
        &cache,
        &["cp", "shell:/tmp/in.txt", back_path],
    )?;
    assert!(copy_out.status.success(), "{copy_out:?}");
    assert_eq!(std::fs::read_to_string(&back)?, "carried by kubectl cp\n");
    let back_old = tmp.path().join("copied-out-1.20.txt");
    let copy_old = old(&["cp", "shell:/tmp/in.txt", back_old.to_str().expect("utf-8")])?;
    assert!(copy_old.status.success(), "{copy_old:?}");
    assert_eq!(
        std::fs::read_to_string(&back_old)?,
        "carried by kubectl cp\n"
    );
    cluster.agents[0].check_running()?;
    Ok(())
}

/// `kubectl exec -i shell -- wc -c` with `input` as its stdin, `kubectl` being the
/// configured command; its stdout.
fn kubectl_stdin(mut kubectl: Command, input: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = kubectl
        .args(["exec", "-i", "shell", "--", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}
