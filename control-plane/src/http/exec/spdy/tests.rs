//! Exec sessions driven by the SPDY test client against a stand-in for the agent's exec
//! socket (an in-memory WebSocket): it echoes stdin on stdout and terminal sizes on stderr
//! (or, `size` first, on stdout when the session has a terminal),
//! and at stdin's close signal sends exit code 3 and closes.

use skiff_api::remotecommand::{exit_status, split, Channel};
use tokio::io::duplex;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::*;
use crate::http::agent_socket::AgentIo;
use crate::http::spdy::frame::{Frame, REFUSED_STREAM};
use crate::http::spdy::test_client::{self, data, reply, Client};

const STDIO: Streams = Streams {
    stdin: true,
    stdout: true,
    stderr: true,
    tty: false,
};

/// The agent's socket, served by the stand-in.
async fn agent(tty: bool) -> AgentSocket {
    let (ours, theirs) = duplex(64 << 10);
    tokio::spawn(async move {
        let mut agent = WebSocketStream::from_raw_socket(theirs, Role::Server, None).await;
        while let Some(Ok(Message::Binary(message))) = agent.next().await {
            let reply = match split(&message).expect("a remotecommand message") {
                (Channel::Stdin, data) => remotecommand::frame(Channel::Stdout, data),
                (Channel::Resize, size) if tty => {
                    remotecommand::frame(Channel::Stdout, &[b"size ", size].concat())
                }
                (Channel::Resize, size) => remotecommand::frame(Channel::Stderr, size),
                (Channel::Close, [0]) => {
                    let status = exit_status(3).to_string();
                    let status = remotecommand::frame(Channel::Error, status.as_bytes());
                    let _ = agent.send(Message::Binary(status.into())).await;
                    let _ = agent.close(None).await;
                    return;
                }
                other => panic!("unexpected {other:?}"),
            };
            if agent.send(Message::Binary(reply.into())).await.is_err() {
                return;
            }
        }
    });
    let io: Box<dyn AgentIo> = Box::new(ours);
    WebSocketStream::from_raw_socket(io, Role::Client, None).await
}

async fn start(wanted: Streams) -> Client {
    let agent = agent(wanted.tty).await;
    test_client::start(accept, move |opening, sender| {
        relay(opening, sender, agent, wanted)
    })
}

/// Opens `streams` in order, as (id, streamType), and reads their replies.
async fn open(client: &mut Client, streams: &[(u32, &str)]) {
    for (id, kind) in streams {
        client.open(*id, &[(STREAM_TYPE_HEADER, kind)]);
        assert_eq!(reply(&client.next().await), Some(*id));
    }
}

#[tokio::test]
async fn stdin_reaches_the_command_and_its_output_and_status_come_back_on_their_streams() {
    let mut client = start(STDIO).await;
    open(
        &mut client,
        &[(1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")],
    )
    .await;
    client.data(3, b"hello", false);
    assert_eq!(client.next().await, data(5, b"hello", false));
    // The end of the stdin stream is stdin's end of file; the status follows, and every
    // stream the server writes ends.
    client.data(3, b"", true);
    let Frame::Data {
        stream: 1,
        fin: false,
        data: status,
    } = client.next().await
    else {
        panic!("the status on the error stream");
    };
    let status: serde_json::Value = serde_json::from_slice(&status).expect("a Status");
    assert_eq!(remotecommand::exit_code(&status), Ok(3));
    let mut ends = Vec::new();
    while let Some(frame) = client.next_or_end().await {
        match frame {
            Frame::Data {
                stream, fin: true, ..
            } => ends.push(stream),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ends, vec![5, 7, 1]);
}

#[tokio::test]
async fn terminal_sizes_split_across_frames_reach_the_command_one_by_one() {
    let tty = Streams {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let mut client = start(tty).await;
    open(
        &mut client,
        &[(1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")],
    )
    .await;
    client.data(7, b"{\"Width\":80,\"Height\":24}\n{\"Width\":1", false);
    client.data(7, b"32,\"Height\":50}\n", false);
    assert_eq!(
        client.next().await,
        data(5, b"size {\"Width\":80,\"Height\":24}", false)
    );
    assert_eq!(
        client.next().await,
        data(5, b"size {\"Width\":132,\"Height\":50}", false)
    );
    client.data(3, b"after", false);
    assert_eq!(client.next().await, data(5, b"after", false));
}

#[tokio::test]
async fn terminal_sizes_are_whole_json_values() {
    let mut buf = BytesMut::from(&b"{\"Width\":80,\"Height\":24}\n{\"Width\":1"[..]);
    assert_eq!(
        terminal_sizes(&mut buf),
        vec![b"{\"Width\":80,\"Height\":24}".to_vec()]
    );
    assert_eq!(&buf[..], b"\n{\"Width\":1");
    buf.extend_from_slice(b"32,\"Height\":50}");
    assert_eq!(
        terminal_sizes(&mut buf),
        vec![b"{\"Width\":132,\"Height\":50}".to_vec()]
    );
    assert!(buf.is_empty());
    buf.extend_from_slice(b"not json");
    assert!(terminal_sizes(&mut buf).is_empty());
    assert!(buf.is_empty());
}

#[tokio::test]
async fn an_unknown_stream_type_is_refused() {
    let mut client = start(STDIO).await;
    client.open(1, &[(STREAM_TYPE_HEADER, "data")]);
    assert_eq!(
        client.next().await,
        Frame::RstStream {
            stream: 1,
            status: REFUSED_STREAM
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_open_its_streams_is_dropped_after_the_timeout() {
    let mut client = start(STDIO).await;
    open(&mut client, &[(1, "error"), (3, "stdin")]).await;
    // Paused time runs on while everything waits: the session stays until the timeout, then
    // the server closes it.
    let early = tokio::time::timeout(Duration::from_secs(29), client.next_or_end()).await;
    assert!(early.is_err(), "closed before the timeout: {early:?}");
    assert_eq!(client.next_or_end().await, None);
}
