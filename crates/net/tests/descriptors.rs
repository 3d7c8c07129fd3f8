//! Running out of descriptors while connections wait: accepting pauses instead of failing,
//! and resumes once descriptors are free. Alone in its test binary: it lowers the process's
//! descriptor limit.

use std::fs::File;
use std::time::Duration;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use skiff_net::accept::Acceptor;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(start_paused = true)]
async fn out_of_descriptors_accepting_pauses_and_resumes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut acceptor = Acceptor::new(listener, 16);
    let _client = TcpStream::connect(addr).await.unwrap();

    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(Resource::RLIMIT_NOFILE, open + 16, hard).unwrap();
    let mut filler = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => filler.push(file),
            Err(err) => {
                assert!(skiff_net::accept::is_descriptor_exhaustion(&err), "{err}");
                break;
            }
        }
    }
    let waiting = tokio::time::timeout(Duration::from_secs(5), acceptor.accept()).await;
    assert!(
        waiting.is_err(),
        "a connection was accepted without a descriptor"
    );

    drop(filler);
    let accepted = tokio::time::timeout(Duration::from_secs(5), acceptor.accept()).await;
    assert!(
        accepted.is_ok(),
        "accepting did not resume once descriptors were free"
    );
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}
