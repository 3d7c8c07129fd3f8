//! Keeps a counter in its volume: every tick reads the number in `$COUNTER_FILE` (default
//! `/data/count`, a preopened directory), adds one, writes it back (by a rename, so never half
//! written) and prints it. A pod that is deleted and made again with the same claim carries on
//! where it stopped.

use std::fs;
use std::io::ErrorKind;
use std::thread::sleep;
use std::time::Duration;

fn main() {
    let path = std::env::var("COUNTER_FILE").unwrap_or_else(|_| "/data/count".to_string());
    let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "unknown pod".to_string());
    let ticks: Option<u64> = std::env::var("TICKS").ok().and_then(|t| t.parse().ok());
    let mut done = 0;
    loop {
        let count = match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().unwrap_or(0),
            Err(err) if err.kind() == ErrorKind::NotFound => 0,
            Err(err) => {
                eprintln!("cannot read {path}: {err}");
                std::process::exit(1);
            }
        } + 1;
        // Written beside and renamed over, so a pod killed mid-write leaves the old count
        // whole rather than an empty file that would start the count over.
        let next = format!("{path}.next");
        if let Err(err) =
            fs::write(&next, format!("{count}\n")).and_then(|()| fs::rename(&next, &path))
        {
            eprintln!("cannot write {path}: {err}");
            std::process::exit(1);
        }
        println!("{pod}: count {count}");
        done += 1;
        if ticks.is_some_and(|t| done >= t) {
            return;
        }
        sleep(Duration::from_secs(1));
    }
}
