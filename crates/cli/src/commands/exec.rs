//! `skiff exec POD [-c CONTAINER] [-i] [-t] -- CMD...`: a command in a pod's container, as
//! `kubectl exec` runs it: output on our stdout and stderr, `-i` passes our stdin, `-t` (with
//! `-i`, when stdin is a terminal) runs it on a terminal with ours in raw mode and its size
//! kept in step, and we exit with the command's exit code.

use std::io::{IsTerminal, Read, Write};

use anyhow::Context;
use clap::Args;
use nix::sys::termios::{self, SetArg, Termios};
use skiff_api::remotecommand::TerminalSize;
use skiff_api::resources;
use skiff_client::{ExecEvent, ExecParams, ExecStream};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use super::client;
use crate::cli::ClientOpts;

/// The pod annotation naming the container kubectl exec and logs use by default.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// `skiff exec POD [-c CONTAINER] [-i] [-t] -- CMD...`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The pod to run the command in.
    pub pod: String,
    /// The container (default: the pod's only one, or its default-container annotation's).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass standard input to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Run the command on a terminal (with -i, when standard input is a terminal).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The remote command exited with this non-zero code: `skiff` exits with it too.
#[derive(Debug)]
pub struct RemoteExit(pub i32);

impl std::fmt::Display for RemoteExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "command terminated with exit code {}", self.0)
    }
}

impl std::error::Error for RemoteExit {}

/// Runs the command in the container; a non-zero exit code comes back as [`RemoteExit`].
pub async fn run(args: ExecArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let terminal = args.tty && args.stdin && std::io::stdin().is_terminal();
    if args.tty && args.stdin && !terminal {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
    }
    let client = client(opts)?;
    let container = match args.container {
        Some(container) => Some(container),
        None => default_container(&client, &opts.namespace, &args.pod).await?,
    };
    let params = ExecParams {
        container,
        command: args.command,
        stdin: args.stdin,
        tty: terminal,
    };
    let mut stream = client.exec(&opts.namespace, &args.pod, &params).await?;
    // Restored when dropped, on every way out of here.
    let raw = terminal.then(RawMode::enable).transpose()?;
    let code = attach(&mut stream, args.stdin, terminal).await;
    drop(raw);
    match code? {
        0 => Ok(()),
        code => Err(RemoteExit(code).into()),
    }
}

/// The container kubectl picks when none is named: none when the pod has one container or
/// names its default in the `kubectl.kubernetes.io/default-container` annotation (the server
/// picks it then), else the first, with kubectl's note on stderr.
async fn default_container(
    client: &skiff_client::Client,
    namespace: &str,
    pod: &str,
) -> anyhow::Result<Option<String>> {
    let pod = client
        .get(
            resources::by_name("pods").expect("pods are served"),
            Some(namespace),
            pod,
        )
        .await?;
    if pod["metadata"]["annotations"][DEFAULT_CONTAINER].is_string() {
        return Ok(None);
    }
    let names = |list: &str| -> Vec<String> {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let containers = names("containers");
    let [first, _, ..] = containers.as_slice() else {
        return Ok(None);
    };
    let all: Vec<String> = containers
        .iter()
        .cloned()
        .chain(
            names("initContainers")
                .into_iter()
                .map(|n| format!("{n} (init)")),
        )
        .collect();
    eprintln!("Defaulted container {first:?} out of: {}", all.join(", "));
    Ok(Some(first.clone()))
}

/// Passes our streams to the command and its output to ours until it exits; its exit code.
async fn attach(stream: &mut ExecStream, stdin: bool, terminal: bool) -> anyhow::Result<i32> {
    let mut input = stdin.then(read_stdin);
    let mut resized = match terminal {
        true => {
            stream.resize(window_size()?).await?;
            Some(signal(SignalKind::window_change())?)
        }
        false => None,
    };
    loop {
        tokio::select! {
            event = stream.next() => {
                let event = event.context("the exec stream ended without the command's exit status")??;
                match event {
                    ExecEvent::Stdout(data) => write(&mut std::io::stdout(), &data)?,
                    ExecEvent::Stderr(data) => write(&mut std::io::stderr(), &data)?,
                    ExecEvent::Exited(code) => return Ok(code),
                    ExecEvent::Failed(message) => anyhow::bail!("{message}"),
                }
            }
            chunk = next_chunk(&mut input), if input.is_some() => match chunk {
                Some(data) => stream.send_stdin(&data).await?,
                None => {
                    stream.close_stdin().await?;
                    input = None;
                }
            },
            Some(()) = next_resize(&mut resized), if resized.is_some() => {
                stream.resize(window_size()?).await?;
            }
        }
    }
}

async fn next_chunk(input: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match input {
        Some(input) => input.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_resize(resized: &mut Option<Signal>) -> Option<()> {
    match resized {
        Some(resized) => resized.recv().await,
        None => std::future::pending().await,
    }
}

fn write(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    out.write_all(data)?;
    out.flush()
}

/// Our standard input in chunks, read on a thread of its own (a read of a terminal cannot be
/// cancelled, and must not hold the runtime at exit); the channel closes at its end.
fn read_stdin() -> mpsc::Receiver<Vec<u8>> {
    let (chunks, received) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0; 16 << 10];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if chunks.blocking_send(buffer[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    received
}

/// The size of the terminal on our standard output (else our standard input).
fn window_size() -> anyhow::Result<TerminalSize> {
    for fd in [1, 0] {
        let mut size = nix::libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize through the pointer, valid for the call.
        if unsafe { nix::libc::ioctl(fd, nix::libc::TIOCGWINSZ, &mut size) } == 0 {
            return Ok(TerminalSize {
                width: size.ws_col,
                height: size.ws_row,
            });
        }
    }
    Err(std::io::Error::last_os_error()).context("reading the terminal's size")
}

/// Our terminal in raw mode (keys go to the remote terminal as typed) until dropped.
struct RawMode {
    original: Termios,
}

impl RawMode {
    fn enable() -> anyhow::Result<RawMode> {
        let stdin = std::io::stdin();
        let original = termios::tcgetattr(&stdin).context("reading the terminal's mode")?;
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).context("setting raw mode")?;
        Ok(RawMode { original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.original);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        args: ExecArgs,
    }

    #[test]
    fn the_command_follows_the_double_dash() {
        let line =
            Line::try_parse_from(["exec", "-it", "web", "-c", "app", "--", "sh", "-c", "ls -l"])
                .expect("parses");
        assert!(line.args.stdin && line.args.tty);
        assert_eq!(line.args.pod, "web");
        assert_eq!(line.args.container.as_deref(), Some("app"));
        assert_eq!(line.args.command, ["sh", "-c", "ls -l"]);
        assert!(Line::try_parse_from(["exec", "web"]).is_err(), "no command");
    }

    #[test]
    fn a_remote_exit_says_its_code() {
        assert_eq!(
            RemoteExit(3).to_string(),
            "command terminated with exit code 3"
        );
    }
}
