//! The hub's log: [`Logger`] formats each line on the thread that logs it,
//! with no lock held, and appends the whole line to a shared buffer in one
//! step; one thread (`log-writer`) writes the buffer to the log's file or
//! stderr. Under load one `write` carries many lines, and no handler waits
//! on a pipe, a disk or another thread's formatting. (Before, simplelog
//! formatted every line piece by piece under one lock and wrote it with a
//! system call: with the access log on, a third of `GET /healthz`'s
//! throughput.)
//!
//! Lines read as simplelog wrote them: `<RFC 3339 UTC time> [LEVEL] text`
//! (`[file:line] ` before the text of trace lines), for `labelhub` targets.
//! Lines reach the sink within [`GATHER`] of being logged (at once after a
//! quiet spell). `flush` (and so `log::logger().flush()` at the end of
//! `serve`) writes what is buffered before it returns. The buffer is
//! bounded: a logging thread waits while [`MAX_BUFFERED`] bytes are not yet
//! written, as it waited on a full pipe before; no line is dropped.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use log::{LevelFilter, Log, Metadata, Record};

/// How long the writer gathers lines after a write before the next one.
pub const GATHER: Duration = Duration::from_millis(2);
/// Bytes buffered at most; loggers wait beyond it.
pub const MAX_BUFFERED: usize = 1 << 20;

/// The buffer and its writer thread.
pub struct Spool {
    shared: Arc<Shared>,
}

struct Shared {
    buf: Mutex<Buffer>,
    /// Rung when bytes arrive while the writer waits, and when the writer
    /// has taken the buffer (for loggers waiting on a full one).
    changed: Condvar,
    /// The sink; held while a taken buffer is written, so chunks reach it
    /// in the order they were logged (the writer and `flush` both write).
    sink: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    writer_waiting: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves the data consistent (bytes
    // appended or not), so a poisoned lock is used as it is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Spool {
    /// Starts the writer thread (`log-writer`) over `sink`.
    pub fn start(sink: Box<dyn Write + Send>) -> std::io::Result<Spool> {
        let shared = Arc::new(Shared {
            buf: Mutex::new(Buffer::default()),
            changed: Condvar::new(),
            sink: Mutex::new(sink),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.run())?;
        Ok(Spool { shared })
    }
}

impl Shared {
    fn run(&self) {
        loop {
            {
                let mut buf = lock(&self.buf);
                while buf.bytes.is_empty() {
                    buf.writer_waiting = true;
                    buf = self
                        .changed
                        .wait(buf)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    buf.writer_waiting = false;
                }
            }
            self.write_out();
            // Lines logged meanwhile go out together in the next write.
            std::thread::sleep(GATHER);
        }
    }

    /// Takes what is buffered and writes it to the sink.
    fn write_out(&self) {
        let mut sink = lock(&self.sink);
        let bytes = {
            let mut buf = lock(&self.buf);
            let bytes = std::mem::take(&mut buf.bytes);
            self.changed.notify_all();
            bytes
        };
        if !bytes.is_empty() {
            // Nowhere to report a failing log sink; the lines are lost, as
            // they were with a direct write.
            let _ = sink.write_all(&bytes).and_then(|()| sink.flush());
        }
    }
}

impl Spool {
    /// Appends whole lines; waits while the buffer is full.
    pub fn append(&self, lines: &[u8]) {
        let shared = &self.shared;
        let mut buf = lock(&shared.buf);
        while buf.bytes.len() >= MAX_BUFFERED {
            if buf.writer_waiting {
                shared.changed.notify_all();
            }
            buf = shared
                .changed
                .wait(buf)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        buf.bytes.extend_from_slice(lines);
        if buf.writer_waiting {
            shared.changed.notify_all();
        }
    }

    /// Writes what is buffered before it returns.
    pub fn flush(&self) {
        self.shared.write_out();
    }
}

/// The target prefix of the hub's own log lines.
const TARGET: &str = "labelhub";

/// The `log` logger of `serve`: lines of `labelhub` targets up to `level`,
/// without the access log's target when it is switched off.
pub struct Logger {
    level: LevelFilter,
    access_log: bool,
    spool: Spool,
}

thread_local! {
    /// The line being formatted, kept per thread.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Logger {
    /// Installs the logger over `sink`, unless the process has one already
    /// (as simplelog's `init` did); fails only when its thread cannot start.
    pub fn install(
        level: LevelFilter,
        access_log: bool,
        sink: Box<dyn Write + Send>,
    ) -> std::io::Result<()> {
        let logger = Logger {
            level,
            access_log,
            spool: Spool::start(sink)?,
        };
        if log::set_boxed_logger(Box::new(logger)).is_ok() {
            log::set_max_level(level);
        }
        Ok(())
    }
}

/// One log line as simplelog wrote it.
fn format_line(line: &mut Vec<u8>, record: &Record<'_>) {
    let now = time::OffsetDateTime::now_utc();
    let _ = now.format_into(line, &time::format_description::well_known::Rfc3339);
    let _ = write!(line, " [{}] ", record.level());
    if record.level() == log::Level::Trace {
        let file = record.file().unwrap_or("<unknown>");
        let _ = match record.line() {
            Some(n) => write!(line, "[{file}:{n}] "),
            None => write!(line, "[{file}:<unknown>] "),
        };
    }
    let _ = writeln!(line, "{}", record.args());
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        metadata.level() <= self.level
            && target.starts_with(TARGET)
            && (self.access_log || !target.starts_with(crate::http::server::ACCESS_LOG_TARGET))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let kept = LINE.try_with(|cell| {
            // Taken already: a value being formatted logs a line itself.
            let Ok(mut line) = cell.try_borrow_mut() else {
                return false;
            };
            line.clear();
            format_line(&mut line, record);
            self.spool.append(&line);
            // A long line's buffer is not kept.
            if line.capacity() > 4096 {
                *line = Vec::new();
            }
            true
        });
        if kept != Ok(true) {
            let mut line = Vec::new();
            format_line(&mut line, record);
            self.spool.append(&line);
        }
    }

    fn flush(&self) {
        self.spool.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// A sink that sends each write to the test.
    struct Chunks(mpsc::Sender<Vec<u8>>);

    impl Write for Chunks {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(data.to_vec());
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logger(level: LevelFilter, access_log: bool) -> (Logger, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel();
        let spool = Spool::start(Box::new(Chunks(tx))).unwrap();
        (
            Logger {
                level,
                access_log,
                spool,
            },
            rx,
        )
    }

    #[test]
    fn a_line_reaches_the_sink_without_a_flush_as_simplelog_wrote_it() {
        let (logger, rx) = logger(LevelFilter::Info, true);
        logger.log(
            &Record::builder()
                .level(log::Level::Info)
                .target("labelhub::hub")
                .args(format_args!("printer {} started", "demo"))
                .build(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while !got.ends_with(b"\n") {
            let left = deadline.saturating_duration_since(Instant::now());
            got.extend(rx.recv_timeout(left).expect("the line was not written"));
        }
        let line = String::from_utf8(got).unwrap();
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, "[INFO] printer demo started\n");
        let parsed =
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert_eq!(parsed.offset(), time::UtcOffset::UTC, "{time}");
        assert!(time.ends_with('Z'), "{time}");
    }

    #[test]
    fn levels_targets_and_the_access_log_switch_filter_lines() {
        let (quiet, _rx) = logger(LevelFilter::Info, false);
        let meta = |level, target| Metadata::builder().level(level).target(target).build();
        assert!(quiet.enabled(&meta(log::Level::Warn, "labelhub::hub")));
        assert!(!quiet.enabled(&meta(log::Level::Debug, "labelhub::hub")));
        assert!(!quiet.enabled(&meta(log::Level::Error, "tiny_http")));
        assert!(!quiet.enabled(&meta(
            log::Level::Info,
            crate::http::server::ACCESS_LOG_TARGET
        )));
        let (all, _rx) = logger(LevelFilter::Trace, true);
        assert!(all.enabled(&meta(
            log::Level::Info,
            crate::http::server::ACCESS_LOG_TARGET
        )));
        let mut line = Vec::new();
        format_line(
            &mut line,
            &Record::builder()
                .level(log::Level::Trace)
                .target("labelhub::x")
                .file(Some("src/x.rs"))
                .line(Some(7))
                .args(format_args!("t"))
                .build(),
        );
        assert!(line.ends_with(b" [TRACE] [src/x.rs:7] t\n"));
    }

    #[test]
    fn flush_writes_everything_in_order_and_lines_from_many_threads_stay_whole() {
        let (logger, rx) = logger(LevelFilter::Info, true);
        std::thread::scope(|s| {
            for t in 0..4 {
                let logger = &logger;
                s.spawn(move || {
                    for i in 0..2000 {
                        logger.log(
                            &Record::builder()
                                .level(log::Level::Info)
                                .target("labelhub::test")
                                .args(format_args!("t{t} {i}"))
                                .build(),
                        );
                    }
                });
            }
        });
        logger.flush();
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        let text = String::from_utf8(written).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8000);
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.split_once("[INFO] ").map(|(_, m)| m))
                .filter_map(|m| m.strip_prefix(&format!("t{t} ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..2000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn a_full_buffer_holds_the_logger_until_the_writer_takes_it() {
        let (tx, rx) = mpsc::channel();
        let spool = Spool::start(Box::new(Chunks(tx))).unwrap();
        let mut line = vec![b'x'; 4095];
        line.push(b'\n');
        let total = MAX_BUFFERED * 3;
        for _ in 0..total / line.len() {
            spool.append(&line);
            assert!(lock(&spool.shared.buf).bytes.len() <= MAX_BUFFERED + line.len());
        }
        spool.flush();
        let written: usize = rx.try_iter().map(|c| c.len()).sum();
        assert_eq!(written, total);
    }
}
