//! Reads and writes files in its volumes (WASI preopened directories) and prints what it finds:
//! `volumes cat PATH...` prints each file once; `volumes write PATH TEXT` writes one, then
//! exits; `volumes watch PATH...` runs until stopped and prints a file again each time its
//! content changes (how a guest sees a ConfigMap update). Lines read `PATH: CONTENT`, with
//! the content's newlines shown as `|`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

fn show(path: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => format!("{path}: {}", text.trim_end().replace('\n', "|")),
        Err(err) => format!("{path}: error: {err}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((mode, paths)) if mode == "cat" => {
            for path in paths {
                println!("{}", show(path));
            }
            ExitCode::SUCCESS
        }
        Some((mode, rest)) if mode == "write" && rest.len() == 2 => {
            match std::fs::write(&rest[0], &rest[1]) {
                Ok(()) => {
                    println!("wrote {}", rest[0]);
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("writing {}: {err}", rest[0]);
                    ExitCode::FAILURE
                }
            }
        }
        Some((mode, paths)) if mode == "watch" => {
            let mut seen: HashMap<&str, String> = HashMap::new();
            loop {
                for path in paths {
                    let line = show(path);
                    if seen.get(path.as_str()) != Some(&line) {
                        println!("{line}");
                        seen.insert(path, line);
                    }
                }
                sleep(Duration::from_millis(200));
            }
        }
        _ => {
            eprintln!("usage: volumes cat PATH... | write PATH TEXT | watch PATH...");
            ExitCode::from(2)
        }
    }
}
