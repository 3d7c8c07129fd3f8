//! Prints a greeting with its arguments and the GREETING_TARGET variable (and, in an Indexed
//! Job, the work item JOB_COMPLETION_INDEX names), then exits 0.

fn main() {
    let target = std::env::var("GREETING_TARGET").unwrap_or_else(|_| "world".to_string());
    println!("Hello, {target}! This is a WebAssembly guest run by Skiff.");
    if let Ok(index) = std::env::var("JOB_COMPLETION_INDEX") {
        println!("processing work item {index}");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        println!("args: {}", args.join(" "));
    }
    eprintln!("hello: done");
}
