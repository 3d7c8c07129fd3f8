//! Real `skiff` processes (servers and agents) on loopback, killed when dropped. Servers and
//! agents bind port 0 and the harness reads the address a server got from its output; each
//! server gets a loopback address of its own (127.x.y.z), so a port it keeps across restarts,
//! and a fixed Raft peer port, belong to no other test.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cli::Skiff;
use crate::wait::wait_until;

/// How long a process may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// What `skiff server` prints once its API listens, followed by the URL.
const LISTENING: &str = "skiff API listening on ";

/// One `skiff` process with its arguments and log file.
pub struct SkiffProcess {
    child: Option<Child>,
    args: Vec<String>,
    log_path: PathBuf,
    /// Where in the log the current run's output starts.
    run_offset: usize,
    /// The network namespace it runs in (`ip netns exec`), if not the test's own.
    netns: Option<String>,
    /// Its descriptor limit (soft and hard), if not the test's own.
    nofile: Option<u64>,
}

/// A node on the test's own network serves no Ingress unless the test says where: the
/// defaults (ports 80 and 443) would collide between tests running at once.
fn ingress_off_unless_given(mut args: Vec<String>) -> Vec<String> {
    let node = args.first().is_some_and(|a| a == "agent") || args.iter().any(|a| a == "--dev");
    for flag in ["--ingress-http-listen", "--ingress-https-listen"] {
        if node
            && !args
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        {
            args.extend([flag.to_string(), "none".to_string()]);
        }
    }
    args
}

impl SkiffProcess {
    /// Starts `skiff ARGS`, appending its output to `log_path`.
    pub fn spawn(args: Vec<String>, log_path: PathBuf) -> anyhow::Result<Self> {
        Self::spawn_in(None, args, log_path)
    }

    /// Starts `skiff ARGS` inside network namespace `netns` (when given).
    pub fn spawn_in(
        netns: Option<String>,
        args: Vec<String>,
        log_path: PathBuf,
    ) -> anyhow::Result<Self> {
        let args = if netns.is_none() {
            ingress_off_unless_given(args)
        } else {
            args
        };
        let mut process = SkiffProcess {
            child: None,
            args,
            log_path,
            run_offset: 0,
            netns,
            nofile: None,
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        self.run_offset = log.metadata()?.len().try_into()?;
        // `ip netns exec` execs skiff in place: the child's pid is skiff's.
        let mut command = match &self.netns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns]).arg(Skiff::locate());
                command
            }
            None => Command::new(Skiff::locate()),
        };
        if let Some(limit) = self.nofile {
            use nix::sys::resource::{setrlimit, Resource};
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    setrlimit(Resource::RLIMIT_NOFILE, limit, limit).map_err(std::io::Error::from)
                });
            }
        }
        let child = command
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting skiff {:?}", self.args))?;
        self.child = Some(child);
        Ok(())
    }

    /// Replaces the value that follows `flag` in the arguments (for the next `restart`).
    pub(crate) fn set_arg(&mut self, flag: &str, value: String) -> anyhow::Result<()> {
        let at = self
            .args
            .iter()
            .position(|a| a == flag)
            .with_context(|| format!("skiff {:?} has no {flag}", self.args))?;
        let slot = self
            .args
            .get_mut(at + 1)
            .with_context(|| format!("{flag} has no value"))?;
        *slot = value;
        Ok(())
    }

    /// Waits until the server, in its current run, says where its API listens, and returns
    /// that URL.
    /// The server's admin kubeconfig is remembered for that URL (see `credentials`).
    pub(crate) fn wait_api_url(&mut self) -> anyhow::Result<String> {
        let url = wait_until("the server to listen", START_TIMEOUT, || {
            self.check_running()?;
            let log = self.log();
            let run = log.get(self.run_offset..).unwrap_or_default();
            Ok(run.lines().find_map(|line| {
                let rest = line.split_once(LISTENING)?.1;
                Some(rest.split_whitespace().next()?.to_string())
            }))
        })?;
        if let Some(at) = self.args.iter().position(|a| a == "--data-dir") {
            if let Some(dir) = self.args.get(at + 1) {
                crate::credentials::remember(&url, Path::new(dir));
            }
        }
        Ok(url)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "skiff {:?} exited with {status}; log:\n{}",
                    self.args,
                    self.log()
                );
            }
        }
        Ok(())
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `lines` lines the process printed, to explain a failed wait, after any panic
    /// message it printed earlier (a backtrace would push it out of the tail).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        let panics: Vec<&str> = all
            .iter()
            .enumerate()
            .filter(|(_, line)| line.contains("panicked at"))
            .flat_map(|(i, _)| all[i..(i + 2).min(all.len())].iter().copied())
            .collect();
        let panics = if panics.is_empty() {
            String::new()
        } else {
            format!("its panics:\n{}\n", panics.join("\n"))
        };
        format!("{panics}the last {lines} lines of its log:\n{tail}")
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("kill -9")?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGSTOP: the process stays, frozen, holding its sockets (a stalled host or a GC pause).
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGCONT)
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("the process is not running")?;
        kill(Pid::from_raw(child.id() as i32), signal)?;
        Ok(())
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("the process is not running")?;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
        let status = wait_until(
            "the process to exit after SIGTERM",
            Duration::from_secs(30),
            || Ok(child.try_wait()?),
        );
        if status.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }

    /// Starts the process again with the same arguments (after it was stopped or exited).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if child.try_wait()?.is_some() {
                self.child = None;
            }
        }
        anyhow::ensure!(
            self.child.is_none(),
            "stop the process before restarting it"
        );
        self.start()
    }
}

impl Drop for SkiffProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `skiff server` (with `--dev`: plus one node agent) on a loopback address of its own.
pub struct DevServer {
    pub process: SkiffProcess,
    pub data_dir: PathBuf,
    /// Its API base URL.
    url: String,
}

impl DevServer {
    /// `skiff server --dev` on `data_dir`, waited for until ready.
    pub fn start(data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(data_dir, true, &[])
    }

    /// `skiff server [--dev] EXTRA...` on `data_dir`, waited for until ready.
    pub fn start_with(data_dir: &Path, dev: bool, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_limited(data_dir, dev, extra, None)
    }

    /// `skiff server --dev` on `data_dir` with node `dev1` allowed to run images from
    /// `guests`, which this creates; EXTRA are more flags.
    pub fn start_with_guests(
        data_dir: &Path,
        guests: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(guests)?;
        let guests = guests
            .to_str()
            .context("a guest directory named in UTF-8")?;
        let mut args = vec!["--node-name", "dev1", "--allow-image-dir", guests];
        args.extend_from_slice(extra);
        Self::start_with(data_dir, true, &args)
    }

    /// As `start_with`, the server's descriptor limit (soft and hard) set to `nofile` if given.
    pub fn start_limited(
        data_dir: &Path,
        dev: bool,
        extra: &[&str],
        nofile: Option<u64>,
    ) -> anyhow::Result<Self> {
        let mut args = vec!["server".to_string()];
        if dev {
            // Tests on the test's own network share it; pod networks run in namespaces.
            args.extend(["--dev".into(), "--pod-network".into(), "host".into()]);
        }
        args.extend([
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            format!("{}:0", loopback_host()?),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut process = SkiffProcess {
            child: None,
            args: ingress_off_unless_given(args),
            log_path: data_dir.with_extension("log"),
            run_offset: 0,
            netns: None,
            nofile,
        };
        process.start()?;
        let url = process.wait_api_url()?;
        // A restart comes back where clients and agents know it.
        process.set_arg("--listen", authority(&url).to_string())?;
        let mut server = DevServer {
            process,
            data_dir: data_dir.to_path_buf(),
            url,
        };
        server.wait_ready()?;
        if dev {
            server.wait_node()?;
        }
        Ok(server)
    }

    /// Waits until the dev server's own node has registered (its agent first trades the join
    /// token for a node certificate).
    fn wait_node(&self) -> anyhow::Result<()> {
        let cli = self.cli();
        wait_until("the dev node to register", START_TIMEOUT, || {
            let out = cli.run(&["get", "nodes", "-o", "name"])?;
            Ok((out.success && !out.stdout.trim().is_empty()).then_some(()))
        })
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.url());
        let http = crate::credentials::https_client_builder(&url)?
            .timeout(Duration::from_secs(2))
            .build()?;
        wait_until("the server to be ready", START_TIMEOUT, || {
            self.process.check_running()?;
            Ok(http
                .get(&url)
                .send()
                .ok()
                .filter(|r| r.status().is_success())
                .map(drop))
        })
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A new join token for agents (`skiff token create`).
    pub fn join_token(&self) -> anyhow::Result<String> {
        Ok(self.cli().ok(&["token", "create"])?.trim().to_string())
    }

    /// A CLI bound to this server.
    pub fn cli(&self) -> Skiff {
        Skiff::new(self.url())
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.process.kill9()
    }

    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.process.terminate()
    }

    /// Starts the server again on the same data dir and port, and waits until it is ready.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()?;
        self.wait_ready()
    }
}

/// A `skiff agent` joined to a server with `token`, on its own data dir, its kubelet endpoint
/// on a port of the system's choice (the agent registers it with its Node), allowed to run the
/// example guests (`--allow-image-dir wasm-examples`), its pods on the test's own network
/// (`--pod-network host`: parallel tests do not share one bridge); `extra` arguments are
/// appended.
pub fn start_agent(
    server_url: &str,
    token: &str,
    node: &str,
    data_dir: &Path,
    extra: &[&str],
) -> anyhow::Result<SkiffProcess> {
    let mut args = vec![
        "agent".to_string(),
        "--server".into(),
        server_url.into(),
        "--token".into(),
        token.into(),
        "--node-name".into(),
        node.into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--pod-network".into(),
        "host".into(),
        "--allow-image-dir".into(),
        crate::repo_root()
            .join("wasm-examples")
            .display()
            .to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    SkiffProcess::spawn(args, data_dir.with_extension("log"))
}

/// A control plane alone (`skiff server EXTRA...`, no node of its own) in `dir/server`, and
/// one agent per name (data in `dir/<name>`), returned once every node is Ready.
pub fn start_with_agents(
    dir: &Path,
    extra: &[&str],
    names: &[&str],
) -> anyhow::Result<(DevServer, Vec<SkiffProcess>)> {
    start_with_agent_flags(dir, extra, &[], names)
}

/// As [`start_with_agents`], each agent started with `agent_extra` flags too.
pub fn start_with_agent_flags(
    dir: &Path,
    extra: &[&str],
    agent_extra: &[&str],
    names: &[&str],
) -> anyhow::Result<(DevServer, Vec<SkiffProcess>)> {
    let server = DevServer::start_with(&dir.join("server"), false, extra)?;
    let token = server.join_token()?;
    let mut agents = names
        .iter()
        .map(|name| start_agent(&server.url(), &token, name, &dir.join(name), agent_extra))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cli = server.cli();
    wait_until("every node Ready", Duration::from_secs(30), || {
        for agent in &mut agents {
            agent.check_running()?;
        }
        let ready = cli.ok(&["get", "nodes"])?.matches(" Ready ").count();
        Ok((ready == names.len()).then_some(()))
    })?;
    Ok((server, agents))
}

/// `HOST:PORT` of an `http(s)://HOST:PORT` URL.
pub(crate) fn authority(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// A loopback address no other server of this test run uses: 127.A.B.N, with A and the
/// first B from this process's id (test binaries running at once have different ones), and
/// B.N counting the servers this process has started (the whole end-to-end suite is one
/// process), 254 to each B. Linux routes all of 127.0.0.0/8 to the loopback device.
pub(crate) fn loopback_host() -> anyhow::Result<IpAddr> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    anyhow::ensure!(
        n < 254 * 64,
        "this test process has used up its loopback addresses"
    );
    let pid = std::process::id();
    let a = 1 + ((pid >> 8) % 254) as u8;
    let b = (pid as u8).wrapping_add((n / 254) as u8);
    Ok(IpAddr::V4(Ipv4Addr::new(127, a, b, (1 + n % 254) as u8)))
}
