//! A TCP echo server on WASI preview 2 sockets (`wasi:sockets`, through the `wasi` crate):
//! it listens on 0.0.0.0 at the port its first argument or `PORT` names (8080 without
//! either) and sends every connection's bytes back, one connection at a time. A port the pod
//! did not declare is refused by the runtime: the guest logs the error and exits 1.
//!
//! Not `std::net`: Rust's std reaches WASI sockets through wasi-libc's preview 2 build, which
//! the Debian toolchain the guests are built with does not ship.

use wasi::io::streams::{InputStream, OutputStream, StreamError};
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasi::sockets::tcp::TcpSocket;
use wasi::sockets::tcp_create_socket::create_tcp_socket;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .map(|p| p.parse().expect("the port must be a number"))
        .unwrap_or(8080);
    let listener = match listen(port) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("tcp-echo: cannot listen on port {port}: {}", err.name());
            std::process::exit(1);
        }
    };
    println!("tcp-echo: listening on 0.0.0.0:{port}");
    let ready = listener.subscribe();
    loop {
        ready.block();
        match listener.accept() {
            Ok((connection, input, output)) => {
                echo(&input, &output);
                drop((input, output));
                drop(connection);
            }
            Err(ErrorCode::WouldBlock) => {}
            Err(err) => eprintln!("tcp-echo: accept failed: {}", err.name()),
        }
    }
}

/// A socket listening on 0.0.0.0:`port`.
fn listen(port: u16) -> Result<TcpSocket, ErrorCode> {
    let socket = create_tcp_socket(IpAddressFamily::Ipv4)?;
    let address = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port,
        address: (0, 0, 0, 0),
    });
    let ready = socket.subscribe();
    socket.start_bind(&instance_network(), address)?;
    ready.block();
    socket.finish_bind()?;
    socket.start_listen()?;
    ready.block();
    socket.finish_listen()?;
    Ok(socket)
}

/// Sends back what the peer sends until it closes its side.
fn echo(input: &InputStream, output: &OutputStream) {
    loop {
        let bytes = match input.blocking_read(4096) {
            Ok(bytes) => bytes,
            Err(StreamError::Closed) => return,
            Err(err) => {
                eprintln!("tcp-echo: reading: {err:?}");
                return;
            }
        };
        if let Err(err) = output.blocking_write_and_flush(&bytes) {
            eprintln!("tcp-echo: writing: {err:?}");
            return;
        }
    }
}
