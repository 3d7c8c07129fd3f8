//! Prints, works for a few seconds, then exits with code 3, to show restarts and CrashLoopBackOff.

use std::thread::sleep;
use std::time::Duration;

fn main() {
    let seconds: u64 = std::env::var("CRASH_AFTER_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!("crasher: starting, will exit with code 3 in {seconds}s");
    sleep(Duration::from_secs(seconds));
    eprintln!("crasher: giving up");
    std::process::exit(3);
}
