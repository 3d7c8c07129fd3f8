//! The agent's side of a `v5.channel.k8s.io` exec stream: the client's messages (stdin,
//! stdin's close, terminal sizes) go to a running [`ExecSession`], its output goes back as
//! stdout and stderr messages, and once the command has exited and its output is sent, the
//! exit status closes the stream on the error channel.

use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use skiff_api::remotecommand::{self, Channel};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::runtime::{ExecSession, TerminalSize};

/// How long output is still read after the command exited (a background process may hold
/// the pipes open).
const DRAIN: Duration = Duration::from_secs(2);
/// Bytes read from an output stream per message.
const CHUNK: usize = 32 << 10;

/// Which output streams the client asked for (the others are read and dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outputs {
    pub stdout: bool,
    pub stderr: bool,
}

/// Runs `session` over a client's messages until the command exits (then sends its status,
/// the last message) or the client goes away (then the command is killed).
pub async fn pump<I, O>(
    session: ExecSession,
    outputs: Outputs,
    incoming: I,
    mut outgoing: O,
) -> Result<(), O::Error>
where
    I: Stream<Item = Vec<u8>> + Unpin,
    O: Sink<Vec<u8>> + Unpin,
{
    let ExecSession {
        stdin,
        stdout,
        stderr,
        resize,
        mut exit,
    } = session;
    let (chunks_tx, mut chunks) = mpsc::channel(16);
    // The readers end with the pump (dropping the set aborts them), even while a process the
    // command left in the background holds its output open.
    let mut readers = JoinSet::new();
    readers.spawn(read_output(
        stdout,
        outputs.stdout.then_some(Channel::Stdout),
        chunks_tx.clone(),
    ));
    if let Some(stderr) = stderr {
        let channel = outputs.stderr.then_some(Channel::Stderr);
        readers.spawn(read_output(stderr, channel, chunks_tx.clone()));
    }
    drop(chunks_tx);
    let input = feed(incoming, stdin, resize);
    tokio::pin!(input);
    let mut code = None;
    let mut output_done = false;
    let drained = tokio::time::sleep(Duration::MAX);
    tokio::pin!(drained);
    while code.is_none() || !output_done {
        tokio::select! {
            chunk = chunks.recv(), if !output_done => match chunk {
                Some(message) => outgoing.send(message).await?,
                None => output_done = true,
            },
            exited = &mut exit, if code.is_none() => {
                code = Some(exited);
                drained.as_mut().reset(tokio::time::Instant::now() + DRAIN);
            }
            () = &mut drained, if code.is_some() => break,
            // The client is gone: dropping the session kills the command.
            () = &mut input => return Ok(()),
        }
    }
    let status = match code {
        Some(Ok(code)) => remotecommand::exit_status(code),
        _ => remotecommand::failure("the command's exit status was lost"),
    };
    outgoing
        .send(remotecommand::frame(
            Channel::Error,
            status.to_string().as_bytes(),
        ))
        .await
}

/// Sends `stream`'s chunks on `channel` (or drops them when the client did not ask for it).
async fn read_output(
    mut stream: std::pin::Pin<Box<dyn AsyncRead + Send>>,
    channel: Option<Channel>,
    chunks: mpsc::Sender<Vec<u8>>,
) {
    let mut buffer = vec![0; CHUNK];
    loop {
        let n = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(channel) = channel {
            if chunks
                .send(remotecommand::frame(channel, &buffer[..n]))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Passes the client's messages on to the command until the client goes away.
async fn feed<I>(
    mut incoming: I,
    mut stdin: Option<std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>>,
    resize: Option<mpsc::Sender<TerminalSize>>,
) where
    I: Stream<Item = Vec<u8>> + Unpin,
{
    while let Some(message) = incoming.next().await {
        match remotecommand::split(&message) {
            Ok((Channel::Stdin, data)) => {
                if let Some(input) = stdin.as_mut() {
                    if input.write_all(data).await.is_err() || input.flush().await.is_err() {
                        stdin = None;
                    }
                }
            }
            Ok((Channel::Close, [byte])) if *byte == Channel::Stdin.byte() => {
                if let Some(mut input) = stdin.take() {
                    let _ = input.shutdown().await;
                }
            }
            Ok((Channel::Resize, data)) => {
                let size = serde_json::from_slice::<remotecommand::TerminalSize>(data);
                if let (Some(resize), Ok(size)) = (&resize, size) {
                    let _ = resize
                        .send(TerminalSize {
                            width: size.width,
                            height: size.height,
                        })
                        .await;
                }
            }
            Ok((channel, _)) => tracing::debug!(?channel, "exec: ignoring a client message"),
            Err(err) => tracing::debug!(%err, "exec: ignoring a client message"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc as futures_mpsc;
    use serde_json::Value;
    use tokio::io::{duplex, AsyncReadExt, DuplexStream};
    use tokio::sync::oneshot;

    /// A session whose streams the test plays the command's side of.
    struct Command {
        stdin: DuplexStream,
        stdout: DuplexStream,
        stderr: DuplexStream,
        resized: mpsc::Receiver<TerminalSize>,
        exit: oneshot::Sender<i32>,
    }

    fn session() -> (ExecSession, Command) {
        let (stdin, command_stdin) = duplex(1024);
        let (command_stdout, stdout) = duplex(1024);
        let (command_stderr, stderr) = duplex(1024);
        let (resize, resized) = mpsc::channel(4);
        let (exit, code) = oneshot::channel();
        let session = ExecSession {
            stdin: Some(Box::pin(stdin)),
            stdout: Box::pin(stdout),
            stderr: Some(Box::pin(stderr)),
            resize: Some(resize),
            exit: code,
        };
        let command = Command {
            stdin: command_stdin,
            stdout: command_stdout,
            stderr: command_stderr,
            resized,
            exit,
        };
        (session, command)
    }

    const ALL: Outputs = Outputs {
        stdout: true,
        stderr: true,
    };

    /// Everything sent to the client, by channel, and the final status.
    fn collect(messages: Vec<Vec<u8>>) -> (String, String, Option<Value>) {
        let (mut out, mut err, mut status) = (String::new(), String::new(), None);
        for message in messages {
            match remotecommand::split(&message).expect("a frame") {
                (Channel::Stdout, data) => out.push_str(&String::from_utf8_lossy(data)),
                (Channel::Stderr, data) => err.push_str(&String::from_utf8_lossy(data)),
                (Channel::Error, data) => {
                    assert!(status.is_none(), "one status");
                    status = Some(serde_json::from_slice(data).expect("status JSON"));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        (out, err, status)
    }

    #[tokio::test]
    async fn input_reaches_the_command_and_output_and_exit_code_the_client() {
        let (session, mut command) = session();
        let (client, incoming) = futures_mpsc::unbounded::<Vec<u8>>();
        let (outgoing, sent) = futures_mpsc::unbounded::<Vec<u8>>();
        let pumped = tokio::spawn(pump(session, ALL, incoming, outgoing));

        client
            .unbounded_send(remotecommand::frame(Channel::Stdin, b"abc"))
            .unwrap();
        client
            .unbounded_send(remotecommand::frame(
                Channel::Resize,
                br#"{"Width":100,"Height":40}"#,
            ))
            .unwrap();
        client
            .unbounded_send(remotecommand::frame(Channel::Close, &[0]))
            .unwrap();
        let mut input = String::new();
        command.stdin.read_to_string(&mut input).await.unwrap();
        assert_eq!(input, "abc", "stdin, then its end");
        assert_eq!(
            command.resized.recv().await,
            Some(TerminalSize {
                width: 100,
                height: 40
            })
        );

        command.stdout.write_all(b"hi\n").await.unwrap();
        command.stderr.write_all(b"err\n").await.unwrap();
        drop((command.stdout, command.stderr));
        command.exit.send(3).unwrap();
        pumped.await.unwrap().unwrap();
        let (out, err, status) = collect(sent.collect().await);
        assert_eq!((out.as_str(), err.as_str()), ("hi\n", "err\n"));
        let status = status.expect("the exit status, last");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(remotecommand::exit_code(&status), Ok(3));
        drop(client);
    }

    #[tokio::test]
    async fn output_written_before_the_exit_is_sent_before_the_status() {
        let (session, mut command) = session();
        let (_client, incoming) = futures_mpsc::unbounded::<Vec<u8>>();
        let (outgoing, sent) = futures_mpsc::unbounded::<Vec<u8>>();
        command.exit.send(0).unwrap();
        let pumped = tokio::spawn(pump(session, ALL, incoming, outgoing));
        let big = vec![b'x'; 100_000];
        command.stdout.write_all(&big).await.unwrap();
        drop((command.stdout, command.stderr));
        pumped.await.unwrap().unwrap();
        let (out, err, status) = collect(sent.collect().await);
        assert_eq!((out.len(), err.as_str()), (big.len(), ""));
        assert_eq!(status.expect("status")["status"], "Success");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_held_open_after_the_exit_is_given_up_on() {
        let (session, mut command) = session();
        let (_client, incoming) = futures_mpsc::unbounded::<Vec<u8>>();
        let (outgoing, sent) = futures_mpsc::unbounded::<Vec<u8>>();
        let only_stdout = Outputs {
            stdout: true,
            stderr: false,
        };
        let pumped = tokio::spawn(pump(session, only_stdout, incoming, outgoing));
        command.stderr.write_all(b"not asked for\n").await.unwrap();
        command.stdout.write_all(b"out\n").await.unwrap();
        command.exit.send(0).unwrap();
        // stdout and stderr stay open (a background child holds them).
        pumped.await.unwrap().unwrap();
        let (out, err, status) = collect(sent.collect().await);
        assert_eq!((out.as_str(), err.as_str()), ("out\n", ""));
        assert_eq!(status.expect("status")["status"], "Success");
        drop(command.stdout);
    }

    #[tokio::test]
    async fn the_client_going_away_ends_the_session() {
        let (session, command) = session();
        let (client, incoming) = futures_mpsc::unbounded::<Vec<u8>>();
        let (outgoing, sent) = futures_mpsc::unbounded::<Vec<u8>>();
        let pumped = tokio::spawn(pump(session, ALL, incoming, outgoing));
        drop(client);
        pumped.await.unwrap().unwrap();
        // The session was dropped: the command's exit receiver is gone (the runtime kills it).
        assert!(command.exit.is_closed());
        assert!(sent.collect::<Vec<_>>().await.is_empty());
    }
}
