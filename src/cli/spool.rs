//! The log's writer thread. A logging thread only copies its formatted line
//! into a shared buffer; one thread writes the buffer to the log's file or
//! stderr. Under load one `write` carries many lines, and no handler waits
//! on a pipe or a disk (before, each line was a system call made under the
//! logger's lock, which the handler threads queued on).
//!
//! Lines reach the sink within [`GATHER`] of being logged (at once after a
//! quiet spell). `flush` (and so `log::logger().flush()` at the end of
//! `serve`) writes what is buffered before it returns. The buffer is
//! bounded: a logging thread waits while [`MAX_BUFFERED`] bytes are not yet
//! written, as it waited on the full pipe before; no line is dropped.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long the writer gathers lines after a write before the next one.
pub const GATHER: Duration = Duration::from_millis(2);
/// Bytes buffered at most; loggers wait beyond it.
pub const MAX_BUFFERED: usize = 1 << 20;

/// The `Write` given to the logger; clones share one buffer and writer.
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

impl Write for Spool {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buf = lock(&self.shared.buf);
        while buf.bytes.len() >= MAX_BUFFERED {
            if buf.writer_waiting {
                self.shared.changed.notify_all();
            }
            buf = self
                .shared
                .changed
                .wait(buf)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        buf.bytes.extend_from_slice(data);
        // A line is written whole (the logger writes it in pieces).
        if buf.writer_waiting && data.ends_with(b"\n") {
            self.shared.changed.notify_all();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.shared.write_out();
        Ok(())
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

    #[test]
    fn a_line_reaches_the_sink_without_a_flush() {
        let (tx, rx) = mpsc::channel();
        let mut spool = Spool::start(Box::new(Chunks(tx))).unwrap();
        spool.write_all(b"first ").unwrap();
        spool.write_all(b"line\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got != b"first line\n" {
            let left = deadline.saturating_duration_since(Instant::now());
            got.extend(rx.recv_timeout(left).expect("the line was not written"));
        }
    }

    #[test]
    fn flush_writes_everything_in_order_and_lines_from_many_threads_stay_whole() {
        let (tx, rx) = mpsc::channel();
        let spool = Spool::start(Box::new(Chunks(tx))).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let mut spool = Spool {
                    shared: spool.shared.clone(),
                };
                s.spawn(move || {
                    for i in 0..2000 {
                        spool.write_all(format!("t{t} {i}\n").as_bytes()).unwrap();
                    }
                });
            }
        });
        let mut spool = spool;
        spool.flush().unwrap();
        let written: Vec<u8> = rx.try_iter().flatten().collect();
        let text = String::from_utf8(written).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8000);
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("t{t} ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..2000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn a_full_buffer_holds_the_logger_until_the_writer_takes_it() {
        let (tx, rx) = mpsc::channel();
        let mut spool = Spool::start(Box::new(Chunks(tx))).unwrap();
        let line = vec![b'x'; 4096];
        let total = MAX_BUFFERED * 3;
        for _ in 0..total / line.len() {
            spool.write_all(&line).unwrap();
            assert!(lock(&spool.shared.buf).bytes.len() <= MAX_BUFFERED + line.len());
        }
        spool.flush().unwrap();
        let written: usize = rx.try_iter().map(|c| c.len()).sum();
        assert_eq!(written, total);
    }
}
