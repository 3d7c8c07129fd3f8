//! raft-rs logs through slog; this drain forwards its records into `tracing` under the
//! target `raft`, with slog's levels mapped to tracing's and its key/values (the member's
//! `raft_id` among them) appended to the message as `key=value`.

use std::fmt::{self, Write as _};

use slog::{Drain, Key, OwnedKVList, Record, Serializer, KV};
use tracing::Level;

/// The logger handed to raft-rs.
pub fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

/// Forwards slog records to the current `tracing` subscriber.
struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let level = level(record.level());
        // Formatting costs more than checking: skip what no subscriber wants.
        if !enabled(level) {
            return Ok(());
        }
        let mut fields = Fields(String::new());
        // Writing to a String cannot fail.
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let message = record.msg();
        let fields = fields.0;
        match level {
            Level::ERROR => tracing::error!(target: "raft", "{message}{fields}"),
            Level::WARN => tracing::warn!(target: "raft", "{message}{fields}"),
            Level::INFO => tracing::info!(target: "raft", "{message}{fields}"),
            Level::DEBUG => tracing::debug!(target: "raft", "{message}{fields}"),
            Level::TRACE => tracing::trace!(target: "raft", "{message}{fields}"),
        }
        Ok(())
    }
}

/// slog has six levels, tracing five: critical and error are both errors.
fn level(level: slog::Level) -> Level {
    match level {
        slog::Level::Critical | slog::Level::Error => Level::ERROR,
        slog::Level::Warning => Level::WARN,
        slog::Level::Info => Level::INFO,
        slog::Level::Debug => Level::DEBUG,
        slog::Level::Trace => Level::TRACE,
    }
}

fn enabled(level: Level) -> bool {
    match level {
        Level::ERROR => tracing::enabled!(target: "raft", Level::ERROR),
        Level::WARN => tracing::enabled!(target: "raft", Level::WARN),
        Level::INFO => tracing::enabled!(target: "raft", Level::INFO),
        Level::DEBUG => tracing::enabled!(target: "raft", Level::DEBUG),
        Level::TRACE => tracing::enabled!(target: "raft", Level::TRACE),
    }
}

/// Key/values as ` key=value` pairs.
struct Fields(String);

impl Serializer for Fields {
    fn emit_arguments(&mut self, key: Key, value: &fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what a `fmt` subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn captured(max: Level, log: impl FnOnce(&slog::Logger)) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(max)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let logger = logger().new(slog::o!("raft_id" => 7));
        tracing::subscriber::with_default(subscriber, || log(&logger));
        let bytes = out.0.lock().expect("buffer").clone();
        String::from_utf8(bytes).expect("utf8")
    }

    #[test]
    fn records_arrive_in_tracing_with_level_target_and_key_values() {
        let out = captured(Level::DEBUG, |logger| {
            slog::info!(logger, "became leader at term {}", 3; "term" => 3);
            slog::crit!(logger, "storage lost");
            slog::debug!(logger, "sent append"; "to" => 2);
            slog::trace!(logger, "not wanted");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[0].contains("INFO raft: became leader at term 3 term=3 raft_id=7"),
            "{out}"
        );
        assert!(
            lines[1].contains("ERROR raft: storage lost raft_id=7"),
            "{out}"
        );
        assert!(
            lines[2].contains("DEBUG raft: sent append to=2 raft_id=7"),
            "{out}"
        );
    }

    #[test]
    fn every_slog_level_maps_to_the_nearest_tracing_level() {
        assert_eq!(level(slog::Level::Critical), Level::ERROR);
        assert_eq!(level(slog::Level::Error), Level::ERROR);
        assert_eq!(level(slog::Level::Warning), Level::WARN);
        assert_eq!(level(slog::Level::Info), Level::INFO);
        assert_eq!(level(slog::Level::Debug), Level::DEBUG);
        assert_eq!(level(slog::Level::Trace), Level::TRACE);
    }
}
