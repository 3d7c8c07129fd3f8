//! Runs until stopped: every second prints a counter and the MESSAGE variable (from a ConfigMap).

use std::thread::sleep;
use std::time::Duration;

fn main() {
    let message = std::env::var("MESSAGE").unwrap_or_else(|_| "(MESSAGE is not set)".to_string());
    let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "unknown pod".to_string());
    for tick in 0u64.. {
        println!("tick {tick} from {pod}: {message}");
        sleep(Duration::from_secs(1));
    }
}
