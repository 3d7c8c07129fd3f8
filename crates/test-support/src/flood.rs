//! A guest that floods its log, and the disk use it leaves: shared by the runtime's log
//! rotation test, the end-to-end log flood test and `skiff bench logs`.

use std::path::Path;

/// A WAT guest that writes `writes` × 64 KiB of `x` to stdout, in lines of `line` bytes
/// (the last byte of each a newline; `line` divides 65536).
pub fn log_flood_wat(writes: u32, line: u32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (memory.fill (i32.const 1024) (i32.const 120) (i32.const 65536))
    (local.set $i (i32.const {first_newline}))
    (block $done (loop $lines
      (br_if $done (i32.ge_u (local.get $i) (i32.const 66560)))
      (i32.store8 (local.get $i) (i32.const 10))
      (local.set $i (i32.add (local.get $i) (i32.const {line})))
      (br $lines)))
    (local.set $i (i32.const 0))
    (block $end (loop $flood
      (br_if $end (i32.ge_u (local.get $i) (i32.const {writes})))
      (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $flood)))))"#,
        first_newline = 1024 + line - 1,
    )
}

/// Bytes in the files under `dir` (0 if it cannot be read).
pub fn disk_use(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => disk_use(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
