//! A TCP client on WASI preview 2 sockets: every second it resolves NAME (its first argument,
//! `HOST:PORT`; `TARGET` without one) through `wasi:sockets/ip-name-lookup`, which a Skiff
//! pod answers with its own resolver (the cluster DNS, its search list and `ndots`), connects,
//! sends one line (its second argument, or `hello`) and prints the reply, or the error. Run it
//! next to `tcp-echo` behind a Service to reach the Service by name.

use std::time::Duration;

use wasi::io::streams::{InputStream, OutputStream};
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::ip_name_lookup::resolve_addresses;
use wasi::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Network,
};
use wasi::sockets::tcp::TcpSocket;
use wasi::sockets::tcp_create_socket::create_tcp_socket;

fn main() {
    let target = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("TARGET").ok())
        .unwrap_or_else(|| "echo:7000".into());
    let line = std::env::args().nth(2).unwrap_or_else(|| "hello".into());
    let Some((host, port)) = target
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
    else {
        eprintln!("net-client: {target:?} is not HOST:PORT");
        std::process::exit(2);
    };
    let network = instance_network();
    loop {
        match exchange(&network, &host, port, &line) {
            Ok((address, reply)) => println!("net-client: {host} ({address}) replied {reply:?}"),
            Err(err) => println!("net-client: {host}:{port}: {err}"),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Resolves `host`, sends `line` to the first IPv4 address at `port`, and reads the reply.
fn exchange(
    network: &Network,
    host: &str,
    port: u16,
    line: &str,
) -> Result<(String, String), String> {
    let address = resolve(network, host).map_err(|e| format!("resolving: {}", e.name()))?;
    let (a, b, c, d) = address;
    let shown = format!("{a}.{b}.{c}.{d}");
    let connection =
        connect(network, address, port).map_err(|e| format!("connecting: {}", e.name()))?;
    send(&connection.output, line)?;
    let reply = receive(&connection.input)?;
    Ok((shown, reply))
}

fn resolve(network: &Network, host: &str) -> Result<(u8, u8, u8, u8), ErrorCode> {
    let stream = resolve_addresses(network, host)?;
    let ready = stream.subscribe();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4(address))) => return Ok(address),
            Ok(Some(IpAddress::Ipv6(_))) => continue,
            Ok(None) => return Err(ErrorCode::NameUnresolvable),
            Err(ErrorCode::WouldBlock) => ready.block(),
            Err(err) => return Err(err),
        }
    }
}

/// A connected socket and its streams; fields drop in order, the streams (the socket's
/// children) before the socket.
struct Connection {
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
}

fn connect(
    network: &Network,
    address: (u8, u8, u8, u8),
    port: u16,
) -> Result<Connection, ErrorCode> {
    let socket = create_tcp_socket(IpAddressFamily::Ipv4)?;
    let ready = socket.subscribe();
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address });
    socket.start_connect(network, remote)?;
    loop {
        ready.block();
        match socket.finish_connect() {
            Ok((input, output)) => {
                drop(ready);
                return Ok(Connection {
                    input,
                    output,
                    _socket: socket,
                });
            }
            Err(ErrorCode::WouldBlock) => continue,
            Err(err) => return Err(err),
        }
    }
}

fn send(output: &OutputStream, line: &str) -> Result<(), String> {
    output
        .blocking_write_and_flush(format!("{line}\n").as_bytes())
        .map_err(|e| format!("sending: {e:?}"))
}

/// Reads up to the first newline (or what the peer sent before closing).
fn receive(input: &InputStream) -> Result<String, String> {
    let mut reply = Vec::new();
    while !reply.contains(&b'\n') {
        match input.blocking_read(4096) {
            Ok(bytes) if bytes.is_empty() => continue,
            Ok(bytes) => reply.extend_from_slice(&bytes),
            Err(_) if !reply.is_empty() => break,
            Err(err) => return Err(format!("receiving: {err:?}")),
        }
    }
    Ok(String::from_utf8_lossy(&reply).trim_end().to_string())
}
