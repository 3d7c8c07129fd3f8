//! The Linux runtime on this host, beyond the conformance suite: output and exit codes, the
//! cgroup limits (a memory hog is OOMKilled, a fork bomb stops at the pids limit), isolation
//! from the host, the pod's /etc files, capabilities, no_new_privs and seccomp, stop with grace
//! then kill, exec (collected and streaming, with and without a terminal), the user and a
//! read-only root, volumes, and shims that outlive the runtime. Every test tears down its
//! containers, cgroups and mounts when it ends, also when it fails (`Teardown`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use skiff_node_runtime::runtime::linux::{LinuxConfig, LinuxRuntime, ShimCommand};
use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerEventKind, ContainerId, ContainerRuntime, ContainerState,
    ContainerStatus, DnsConfig, ExecRequest, Mount, PodNetwork, PodSandboxConfig, SandboxId,
    SeccompProfile, TerminalSize,
};
use skiff_test_support::busybox::{self, Teardown};
use tempfile::TempDir;

/// Longest wait for a container to exit or a command to finish.
const WAIT: Duration = Duration::from_secs(30);

struct Fixture {
    runtime: LinuxRuntime,
    config: LinuxConfig,
    _teardown: Teardown,
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(tune: impl FnOnce(&mut LinuxConfig)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let shim = ShimCommand {
            program: env!("CARGO_BIN_EXE_skiff-container-shim").into(),
            args: vec![],
        };
        let mut config = LinuxConfig {
            cgroup_parent: "skiff-test".into(),
            ..LinuxConfig::new(dir.path().join("linux"), shim)
        };
        tune(&mut config);
        let runtime = LinuxRuntime::new(config.clone()).expect("the Linux runtime");
        Fixture {
            runtime,
            _teardown: Teardown(config.clone()),
            config,
            dir,
        }
    }

    async fn sandbox(&self, pod: &str) -> SandboxId {
        self.runtime
            .run_pod_sandbox(&PodSandboxConfig {
                uid: format!("{pod}-uid"),
                namespace: "default".into(),
                name: pod.into(),
                labels: Default::default(),
                log_directory: self.dir.path().join(pod),
                network: None,
                hostname: format!("{pod}-host"),
                dns: Some(DnsConfig {
                    nameservers: vec!["10.96.0.10".parse().expect("ip")],
                    searches: vec!["default.svc.cluster.local".into()],
                    options: vec!["ndots:5".into()],
                }),
            })
            .await
            .expect("run_pod_sandbox")
    }

    /// A container of pod `pod` running `sh -c script`, as `tune` adjusts it.
    async fn create(
        &self,
        pod: &str,
        script: &str,
        tune: impl FnOnce(&mut ContainerConfig),
    ) -> ContainerId {
        let sandbox = self.sandbox(pod).await;
        let mut config = ContainerConfig::new("main", busybox::image(self.dir.path(), script));
        tune(&mut config);
        self.runtime
            .create_container(&sandbox, &config)
            .await
            .expect("create_container")
    }

    /// Runs `script` to its end; returns its status and log.
    async fn run(
        &self,
        script: &str,
        tune: impl FnOnce(&mut ContainerConfig),
    ) -> (ContainerStatus, String) {
        self.run_in("run", script, tune).await
    }

    /// [`Fixture::run`] in pod `pod` (each run of a test in its own, for its own log).
    async fn run_in(
        &self,
        pod: &str,
        script: &str,
        tune: impl FnOnce(&mut ContainerConfig),
    ) -> (ContainerStatus, String) {
        let id = self.create(pod, script, tune).await;
        let mut events = self.runtime.subscribe();
        self.runtime.start_container(&id).await.expect("start");
        self.exited(&mut events, &id).await
    }

    async fn exited(
        &self,
        events: &mut tokio::sync::broadcast::Receiver<skiff_node_runtime::runtime::ContainerEvent>,
        id: &ContainerId,
    ) -> (ContainerStatus, String) {
        tokio::time::timeout(WAIT, async {
            loop {
                let event = events.recv().await.expect("events");
                if event.container == *id && event.kind == ContainerEventKind::Exited {
                    return;
                }
            }
        })
        .await
        .expect("the container exits");
        let status = self.runtime.container_status(id).await.expect("status");
        let log = std::fs::read_to_string(&status.log_path).unwrap_or_default();
        (status, log)
    }
}

fn exit_of(status: &ContainerStatus) -> (i32, &str) {
    match &status.state {
        ContainerState::Exited {
            exit_code, reason, ..
        } => (*exit_code, reason.as_str()),
        other => panic!("not exited: {other:?}"),
    }
}

#[tokio::test]
async fn runs_and_logs_in_the_cri_format() {
    let f = Fixture::new();
    let (status, log) = f.run("echo hello; echo oops >&2", |_| {}).await;
    assert_eq!(exit_of(&status), (0, "Completed"), "{log}");
    assert!(log.lines().any(|l| l.ends_with(" stdout F hello")), "{log}");
    assert!(log.lines().any(|l| l.ends_with(" stderr F oops")), "{log}");
}

#[tokio::test]
async fn exit_codes_are_the_programs() {
    let f = Fixture::new();
    let (status, log) = f.run("exit 3", |_| {}).await;
    assert_eq!(exit_of(&status), (3, "Error"), "{log}");
}

#[tokio::test]
async fn a_memory_hog_is_oom_killed() {
    let f = Fixture::new();
    let (status, log) = f
        .run("dd if=/dev/zero of=/dev/null bs=64M count=1", |c| {
            c.resources.memory_bytes = Some(16 * 1024 * 1024);
        })
        .await;
    assert_eq!(exit_of(&status), (137, "OOMKilled"), "{log}");
}

#[tokio::test]
async fn a_fork_bomb_stops_at_the_pids_limit() {
    let f = Fixture::with(|c| c.pids_limit = 16);
    let (status, log) = f.run("while true; do sleep 1000 & done", |_| {}).await;
    let (code, _) = exit_of(&status);
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("can't fork"), "the shell fails to fork: {log}");
}

#[tokio::test]
async fn the_container_sees_neither_host_processes_nor_host_files() {
    let f = Fixture::new();
    let host_file = f.dir.path().join("host-secret");
    std::fs::write(&host_file, "secret").expect("write");
    let script = format!(
        "ps -o pid | wc -l; test -e {} && echo SEES-HOST || echo no-host-file; \
         hostname; cat /etc/resolv.conf",
        host_file.display()
    );
    let (status, log) = f.run(&script, |_| {}).await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    // The header, the shell (pid 1), ps and wc.
    assert!(log.contains(" stdout F 4"), "only its own processes: {log}");
    assert!(
        log.contains("no-host-file") && !log.contains("SEES-HOST"),
        "{log}"
    );
    assert!(
        log.contains(" stdout F run-host"),
        "the pod's host name: {log}"
    );
    assert!(
        log.contains("nameserver 10.96.0.10"),
        "the pod's resolver: {log}"
    );
    assert!(log.contains("search default.svc.cluster.local"), "{log}");
}

#[tokio::test]
async fn the_pods_network_namespace_is_joined() {
    let f = Fixture::new();
    // A fresh network namespace, as the agent's pod network makes one: only a loopback link.
    let netns = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        std::fs::File::open("/proc/thread-self/ns/net").expect("open netns")
    })
    .join()
    .expect("thread");
    let sandbox = f
        .runtime
        .run_pod_sandbox(&PodSandboxConfig {
            uid: "net-uid".into(),
            namespace: "default".into(),
            name: "net".into(),
            labels: Default::default(),
            log_directory: f.dir.path().join("net"),
            network: Some(PodNetwork {
                ip: "10.244.0.7".parse().expect("ip"),
                netns: Arc::new(netns.into()),
            }),
            hostname: "net".into(),
            dns: None,
        })
        .await
        .expect("run_pod_sandbox");
    let status = f
        .runtime
        .pod_sandbox_status(&sandbox)
        .await
        .expect("status");
    assert_eq!(status.ip.as_deref(), Some("10.244.0.7"));
    let config = ContainerConfig::new(
        "main",
        busybox::image(f.dir.path(), "ls /sys/class/net; cat /etc/hosts"),
    );
    let id = f
        .runtime
        .create_container(&sandbox, &config)
        .await
        .expect("create");
    let mut events = f.runtime.subscribe();
    f.runtime.start_container(&id).await.expect("start");
    let (status, log) = f.exited(&mut events, &id).await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    let links: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split(" stdout F ").nth(1))
        .filter(|l| !l.contains('\t') && !l.contains(' '))
        .collect();
    assert_eq!(links, ["lo"], "only the pod's namespace's links: {log}");
    assert!(
        log.contains("10.244.0.7\tnet"),
        "the pod's address in /etc/hosts: {log}"
    );
}

#[tokio::test]
async fn stop_asks_with_sigterm_then_kills_after_the_grace() {
    let f = Fixture::new();
    let polite = f
        .create(
            "polite",
            "trap 'echo bye; exit 0' TERM; sleep 3600 & wait",
            |_| {},
        )
        .await;
    let deaf = f.create("deaf", "sleep 3600", |_| {}).await;
    let mut events = f.runtime.subscribe();
    for id in [&polite, &deaf] {
        f.runtime.start_container(id).await.expect("start");
    }
    f.runtime
        .stop_container(&polite, WAIT)
        .await
        .expect("stop polite");
    let (status, log) = f.exited(&mut events, &polite).await;
    assert_eq!(exit_of(&status), (0, "Completed"), "handled SIGTERM: {log}");
    assert!(log.contains("bye"), "{log}");

    // PID 1 ignores SIGTERM it has no handler for: the grace runs out, then SIGKILL.
    f.runtime
        .stop_container(&deaf, Duration::from_millis(200))
        .await
        .expect("stop deaf");
    let (status, log) = f.exited(&mut events, &deaf).await;
    assert_eq!(exit_of(&status), (137, "Error"), "killed: {log}");
}

#[tokio::test]
async fn streaming_exec_pipes_and_terminal() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fixture::new();
    let id = f.create("stream", "sleep 3600", |_| {}).await;
    f.runtime.start_container(&id).await.expect("start");
    let request = |script: &str, tty: bool| ExecRequest {
        cmd: vec!["sh".to_string(), "-c".to_string(), script.to_string()],
        tty,
        stdin: true,
    };

    // Pipes: stdin reaches the command, stdout and stderr stay apart, the exit code returns.
    let mut session = f
        .runtime
        .exec(&id, &request("cat; echo oops >&2; exit 3", false))
        .await
        .expect("exec");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"piped\n").await.expect("write");
    drop(stdin);
    let (mut out, mut err) = (String::new(), String::new());
    let mut stderr = session.stderr.take().expect("stderr");
    let (read_out, read_err) = tokio::join!(
        session.stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err)
    );
    read_out.expect("stdout");
    read_err.expect("stderr");
    assert_eq!((out.as_str(), err.as_str()), ("piped\n", "oops\n"));
    let code = tokio::time::timeout(WAIT, session.exit)
        .await
        .expect("exit");
    assert_eq!(code, Ok(3));

    // A command killed by a signal exits 128 + the signal, as a shell reports it.
    let killed = f
        .runtime
        .exec(&id, &request("kill -9 $$", false))
        .await
        .expect("exec");
    let code = tokio::time::timeout(WAIT, killed.exit).await.expect("exit");
    assert_eq!(code, Ok(137));

    // A terminal: the command sees a terminal of the size sent (stty), and its input echoes.
    let mut session = f
        .runtime
        .exec(
            &id,
            &request("until [ \"$(stty size)\" = '40 100' ]; do :; done; read line; stty size; echo got $line; exit 5", true),
        )
        .await
        .expect("exec");
    assert!(session.stderr.is_none(), "a TTY has one output stream");
    let resize = session.resize.take().expect("resize");
    resize
        .send(TerminalSize {
            width: 100,
            height: 40,
        })
        .await
        .expect("resize");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"typed\n").await.expect("write");
    stdin.flush().await.expect("flush");
    let mut out = String::new();
    tokio::time::timeout(WAIT, session.stdout.read_to_string(&mut out))
        .await
        .expect("output ends")
        .expect("read");
    assert!(out.contains("typed\r\n"), "the terminal echoes: {out:?}");
    assert!(out.contains("40 100\r\n"), "stty size: {out:?}");
    assert!(out.contains("got typed\r\n"), "{out:?}");
    let code = tokio::time::timeout(WAIT, session.exit)
        .await
        .expect("exit");
    assert_eq!(code, Ok(5));
}

#[tokio::test]
async fn exec_runs_in_the_container() {
    let f = Fixture::new();
    let id = f.create("exec", "sleep 3600", |_| {}).await;
    f.runtime.start_container(&id).await.expect("start");
    let cmd = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    let result = f
        .runtime
        .exec_sync(&id, &cmd("cat /etc/hostname; ps -o pid,comm; exit 4"), WAIT)
        .await
        .expect("exec");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(result.exit_code, 4, "{stdout}");
    assert!(stdout.contains("exec-host"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.trim() == "1 sleep"),
        "the container's processes: {stdout}"
    );
    let missing = f
        .runtime
        .exec_sync(&id, &["no-such-program".to_string()], WAIT)
        .await
        .expect("exec");
    assert_ne!(missing.exit_code, 0);
    let late = f
        .runtime
        .exec_sync(
            &id,
            &["sleep".to_string(), "1000".to_string()],
            Duration::from_millis(300),
        )
        .await;
    assert!(late.is_err(), "an exec past its timeout fails: {late:?}");
    // The timed-out command dies with its shim: only the container's own sleep is left.
    tokio::time::timeout(WAIT, async {
        loop {
            let after = f
                .runtime
                .exec_sync(&id, &cmd("ps -o comm | grep -c sleep"), WAIT)
                .await
                .expect("exec");
            if String::from_utf8_lossy(&after.stdout).trim() == "1" {
                return;
            }
        }
    })
    .await
    .expect("the timed-out command is killed");
    f.runtime.remove_container(&id).await.expect("remove");
}

#[tokio::test]
async fn capabilities_and_seccomp_by_default_and_no_new_privs_only_when_asked() {
    let f = Fixture::new();
    let script = "cat /proc/self/status; touch /tmp/x; chown 1 /tmp/x && echo CHOWNED; \
                  unshare -U true 2>/dev/null && echo MADE-USERNS || echo no-userns";
    let (status, log) = f.run_in("r1", script, |_| {}).await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    // Docker's and containerd's default capability set.
    assert!(log.contains(" stdout F CapEff:\t00000000a80425fb"), "{log}");
    assert!(log.contains(" stdout F CapBnd:\t00000000a80425fb"), "{log}");
    assert!(log.contains(" stdout F CHOWNED"), "{log}");
    // As Kubernetes: no_new_privs only with allowPrivilegeEscalation false.
    assert!(log.contains(" stdout F NoNewPrivs:\t0"), "{log}");
    assert!(log.contains(" stdout F Seccomp:\t2"), "{log}");
    assert!(
        log.contains("no-userns") && !log.contains("MADE-USERNS"),
        "{log}"
    );
    let (status, log) = f
        .run_in(
            "r2",
            "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status",
            |c| {
                c.security.allow_privilege_escalation = Some(false);
                c.security.run_as_user = Some(65534);
            },
        )
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert!(log.contains(" stdout F NoNewPrivs:\t1"), "{log}");
    assert!(log.contains(" stdout F Seccomp:\t2"), "{log}");
    // Without no_new_privs the filter is installed before the user changes.
    let (status, log) = f
        .run_in(
            "r3",
            "grep -E 'NoNewPrivs|Seccomp:|CapEff' /proc/self/status",
            |c| {
                c.security.allow_privilege_escalation = Some(true);
                c.security.run_as_user = Some(65534);
            },
        )
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert!(log.contains(" stdout F NoNewPrivs:\t0"), "{log}");
    assert!(log.contains(" stdout F Seccomp:\t2"), "{log}");
    assert!(log.contains(" stdout F CapEff:\t0000000000000000"), "{log}");
}

#[tokio::test]
async fn capabilities_are_added_and_dropped() {
    let f = Fixture::new();
    let script = "grep -E 'CapEff|CapBnd' /proc/self/status; touch /tmp/x; \
                  chown 1 /tmp/x 2>/dev/null && echo CHOWNED || echo no-chown";
    let (status, log) = f
        .run_in("r4", script, |c| {
            c.security.capabilities_drop = vec!["ALL".into()];
            c.security.capabilities_add = vec!["CAP_NET_RAW".into()];
        })
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert!(log.contains(" stdout F CapEff:\t0000000000002000"), "{log}");
    assert!(log.contains(" stdout F CapBnd:\t0000000000002000"), "{log}");
    assert!(
        log.contains("no-chown") && !log.contains("CHOWNED"),
        "{log}"
    );
    let (status, log) = f
        .run_in("r5", script, |c| {
            c.security.capabilities_drop = vec!["chown".into()];
            c.security.capabilities_add = vec!["NET_ADMIN".into()];
        })
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    // The default set less CHOWN (bit 0) plus NET_ADMIN (bit 12).
    assert!(log.contains(" stdout F CapEff:\t00000000a80435fa"), "{log}");
    assert!(log.contains("no-chown"), "{log}");
    let sandbox = f.sandbox("bad-cap").await;
    let mut config = ContainerConfig::new("main", busybox::image(f.dir.path(), "true"));
    config.security.capabilities_add = vec!["NET_FOO".into()];
    let err = f
        .runtime
        .create_container(&sandbox, &config)
        .await
        .expect_err("an unknown capability");
    assert!(err.to_string().contains("NET_FOO"), "{err}");
}

#[tokio::test]
async fn seccomp_profiles_runtime_default_unconfined_and_localhost() {
    let profiles = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        profiles.path().join("no-mkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .expect("profile");
    // Argument conditions: kill(2) with signal 0, or above 30, is refused.
    std::fs::write(
        profiles.path().join("kill.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 30, "op": "SCMP_CMP_GT"}]}]}"#,
    )
    .expect("profile");
    let root = profiles.path().to_path_buf();
    let f = Fixture::with(|c| c.seccomp_profile_root = root);
    let script = "grep Seccomp: /proc/self/status; \
                  unshare -U true 2>/dev/null && echo MADE-USERNS || echo no-userns; \
                  mkdir /tmp/d 2>&1 && echo MADE-DIR; true";
    let (status, log) = f
        .run_in("r6", script, |c| {
            c.security.seccomp = SeccompProfile::Unconfined
        })
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert!(log.contains(" stdout F Seccomp:\t0"), "{log}");
    assert!(
        log.contains("MADE-USERNS") && log.contains("MADE-DIR"),
        "{log}"
    );
    let (status, log) = f
        .run_in("r7", script, |c| {
            c.security.seccomp = SeccompProfile::Localhost("no-mkdir.json".into())
        })
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert!(log.contains(" stdout F Seccomp:\t2"), "{log}");
    // This profile allows what RuntimeDefault refuses, and refuses mkdir with EACCES.
    assert!(log.contains("MADE-USERNS"), "{log}");
    assert!(
        log.contains("Permission denied") && !log.contains("MADE-DIR"),
        "{log}"
    );
    let (status, log) = f
        .run_in(
            "args",
            "kill -0 $$ && echo SIG0-SENT; kill -CONT $$ && echo CONT-SENT; \
             kill -31 $$ && echo SIG31-SENT; true",
            |c| c.security.seccomp = SeccompProfile::Localhost("kill.json".into()),
        )
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert!(log.contains(" stdout F CONT-SENT"), "{log}");
    assert!(
        !log.contains("SIG0-SENT") && !log.contains("SIG31-SENT"),
        "{log}"
    );
    let sandbox = f.sandbox("bad-profile").await;
    let mut config = ContainerConfig::new("main", busybox::image(f.dir.path(), "true"));
    config.security.seccomp = SeccompProfile::Localhost("missing.json".into());
    let err = f
        .runtime
        .create_container(&sandbox, &config)
        .await
        .expect_err("a missing profile");
    assert!(err.to_string().contains("missing.json"), "{err}");
}

#[tokio::test]
async fn proc_and_sys_paths_are_masked_unless_privileged_or_unmasked() {
    let f = Fixture::new();
    let script = "echo timer_list=$(cat /proc/timer_list | wc -c); \
                  echo acpi=$(ls /proc/acpi | wc -l) firmware=$(ls /sys/firmware | wc -l); \
                  echo x > /proc/sys/kernel/hostname 2>/dev/null && echo WROTE-SYS || echo ro-sys";
    let (status, log) = f.run_in("r8", script, |_| {}).await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert!(log.contains(" stdout F timer_list=0"), "{log}");
    assert!(log.contains(" stdout F acpi=0 firmware=0"), "{log}");
    assert!(
        log.contains("ro-sys") && !log.contains("WROTE-SYS"),
        "{log}"
    );
    type Tune = fn(&mut ContainerConfig);
    let unmasks: [(&str, Tune); 2] = [
        ("unmasked", |c| c.security.unmasked_proc = true),
        ("privileged", |c| c.security.privileged = true),
    ];
    for (pod, unmask) in unmasks {
        let (status, log) = f.run_in(pod, "cat /proc/timer_list | wc -c", unmask).await;
        assert_eq!(exit_of(&status).0, 0, "{log}");
        let bytes: u64 = log
            .lines()
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0);
        assert!(bytes > 0, "{log}");
    }
}

#[tokio::test]
async fn a_volume_target_through_an_image_symlink_stays_inside_the_root() {
    let f = Fixture::new();
    // A host directory the image's /data points at: a naive join would put the volume's
    // mount point (and a file target) there, outside the container's root.
    let host_side = f.dir.path().join("host-side");
    std::fs::create_dir_all(&host_side).expect("host side");
    let layer = f.dir.path().join("symlink-layer");
    std::fs::create_dir_all(&layer).expect("layer");
    std::os::unix::fs::symlink(&host_side, layer.join("data")).expect("link");
    let source = f.dir.path().join("config-file");
    std::fs::write(&source, "from-the-volume\n").expect("write");
    let inside = format!("{}/planted", host_side.display());
    let (status, log) = f
        .run(&format!("cat /data/planted; cat {inside}"), |c| {
            c.image.layers.push(layer.clone());
            c.mounts.push(Mount {
                container_path: "/data/planted".into(),
                host_path: source.clone(),
                read_only: true,
            });
        })
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert_eq!(
        log.matches(" stdout F from-the-volume").count(),
        2,
        "the volume shows at the link's target inside the root: {log}"
    );
    assert!(
        std::fs::read_dir(&host_side)
            .expect("host side")
            .next()
            .is_none(),
        "nothing was made outside the root"
    );
}

#[tokio::test]
async fn user_read_only_root_and_volumes() {
    let f = Fixture::new();
    let volume = f.dir.path().join("volume");
    std::fs::create_dir_all(&volume).expect("volume");
    std::fs::write(volume.join("data"), "from-the-volume").expect("write");
    let (status, log) = f
        .run(
            "id -u; cat /data/data; touch /new 2>/dev/null && echo WROTE-ROOT || echo ro-root",
            |c| {
                c.security.run_as_user = Some(65534);
                c.security.read_only_root_filesystem = true;
                c.mounts.push(Mount {
                    container_path: "/data".into(),
                    host_path: volume.clone(),
                    read_only: true,
                });
            },
        )
        .await;
    assert_eq!(exit_of(&status).0, 0, "{log}");
    assert!(log.contains(" stdout F 65534"), "{log}");
    assert!(log.contains("from-the-volume"), "{log}");
    assert!(
        log.contains("ro-root") && !log.contains("WROTE-ROOT"),
        "{log}"
    );
}

#[tokio::test]
async fn containers_outlive_the_runtime_and_are_recovered() {
    let f = Fixture::new();
    let id = f.create("outlive", "sleep 3600", |_| {}).await;
    f.runtime.start_container(&id).await.expect("start");
    let Fixture {
        runtime,
        config,
        _teardown,
        dir,
    } = f;
    drop(runtime);
    let next = LinuxRuntime::new(config).expect("a new runtime");
    let mut events = next.subscribe();
    let sandboxes = next.recover().await.expect("recover");
    assert_eq!(sandboxes, ["outlive-uid"]);
    let status = next.container_status(&id).await.expect("status");
    assert!(
        matches!(status.state, ContainerState::Running { .. }),
        "{status:?}"
    );
    next.stop_container(&id, Duration::ZERO)
        .await
        .expect("stop");
    tokio::time::timeout(WAIT, async {
        while let Ok(event) = events.recv().await {
            if event.container == id && event.kind == ContainerEventKind::Exited {
                return;
            }
        }
    })
    .await
    .expect("the recovered container's exit is pushed");
    next.remove_pod_sandbox(&"outlive-uid".to_string())
        .await
        .expect("remove");
    assert!(
        std::fs::read_dir(dir.path().join("linux/containers"))
            .expect("dir")
            .next()
            .is_none(),
        "nothing left"
    );
    assert!(!Path::new("/sys/fs/cgroup/pids/skiff-test")
        .join(&id)
        .exists());
}
