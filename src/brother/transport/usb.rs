//! A USB printer device file (`/dev/usb/lpN`, Linux `usblp`).
//!
//! The device is opened read-write and **non-blocking** for every job and
//! every status request, and closed afterwards (usblp allows one opener at
//! a time). Non-blocking matters twice: a stalled printer makes `write`
//! return `EAGAIN` instead of hanging, so every wait has a deadline; and a
//! printer that never answers `ESC i S` cannot leave a thread stuck in
//! `read`. usblp kills unfinished transfers on close, so `finish` first
//! waits for the write path to drain (a zero-length write returns `EAGAIN`
//! until the last transfer completed, see the usblp source).
//!
//! Busy and permission errors name the usual causes: another program (a
//! CUPS queue, ipp-usb) holding the printer, or a missing udev rule / `lp`
//! group membership.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{job_timeout, Transport, TransportError};
use crate::brother::model::Model;
use crate::brother::status::{self, Status, StatusError, StatusType};

/// How long to wait for the reply to each `ESC i S`: the first request
/// gets a short wait, the second the rest (3 s in all).
///
/// Why a second request: the PT-E550W/P750W may not answer the first
/// `ESC i S` after power-on or a long idle (Brother's E550W/P750W/P710BT
/// raster reference carries a "does not support this command" note under
/// `ESC i S`, reference §2.5, while the printers do answer it over USB;
/// ptouch retries its USB transfers 3 times for the same reason). Silence
/// is retried once; a reply that is wrong is not (it would be wrong again).
const STATUS_WAITS: [Duration; 2] = [Duration::from_millis(1000), Duration::from_millis(2000)];
/// Poll interval while the device says "try again".
const POLL: Duration = Duration::from_millis(5);
/// Most bytes read to drain stale status replies before a request.
const DRAIN_LIMIT: usize = 64 * 1024;

pub(crate) struct UsbTransport {
    path: PathBuf,
    model: &'static Model,
    job: Option<Job>,
}

struct Job {
    dev: File,
    started: Instant,
    announced: usize,
    written: usize,
}

impl UsbTransport {
    pub(crate) fn new(path: PathBuf, model: &'static Model) -> UsbTransport {
        UsbTransport {
            path,
            model,
            job: None,
        }
    }

    fn target(&self) -> String {
        format!("usb://{}", self.path.display())
    }

    fn open_device(&self) -> Result<File, TransportError> {
        OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)
            .map_err(|e| open_error(&self.target(), &self.path.display().to_string(), &e))
    }
}

/// The hint for an `open` failure on a USB printer device.
fn open_error(target: &str, path: &str, e: &io::Error) -> TransportError {
    let target = target.to_string();
    let raw = e.raw_os_error();
    if raw == Some(libc::EBUSY) {
        return TransportError::Busy {
            target,
            hint: format!(
                "another program has {path} open. usblp allows one user at a time: close the \
                 other program (a CUPS queue for this printer, another labelhub, a running \
                 `cat > {path}`), or if ipp-usb is installed stop it \
                 (`systemctl disable --now ipp-usb`) so it does not fight over the printer"
            ),
        };
    }
    if e.kind() == io::ErrorKind::PermissionDenied {
        return TransportError::PermissionDenied {
            target,
            hint: format!(
                "the hub's user may not open {path}. Add the user to group `lp` \
                 (`usermod -aG lp USER`, then log in again) or install a udev rule such as \
                 SUBSYSTEM==\"usbmisc\", KERNEL==\"lp*\", ATTRS{{idVendor}}==\"04f9\", \
                 GROUP=\"lp\", MODE=\"0660\" in /etc/udev/rules.d/60-brother-label.rules \
                 and replug the printer"
            ),
        };
    }
    if e.kind() == io::ErrorKind::NotFound || raw == Some(libc::ENODEV) || raw == Some(libc::ENXIO)
    {
        return TransportError::Offline {
            target,
            detail: format!(
                "{path} does not exist: the printer is off or unplugged; or ipp-usb (or \
                 another libusb program) detached the usblp driver from it (stop ipp-usb: \
                 `systemctl disable --now ipp-usb`, then replug); or the printer is in \
                 P-Lite / Editor Lite mode (mass storage), which must be switched off on \
                 the printer"
            ),
        };
    }
    TransportError::Io {
        target,
        detail: format!("opening {path}: {e}"),
    }
}

/// Maps a write/read error on an open device.
fn io_error(target: &str, what: &'static str, e: &io::Error) -> TransportError {
    let raw = e.raw_os_error();
    if raw == Some(libc::ENOSPC) {
        return TransportError::Printer {
            target: target.to_string(),
            problem: crate::brother::status::Problem::NoMedia,
            detail: format!("{what}: the printer reports paper out"),
        };
    }
    if raw == Some(libc::ENODEV) {
        return TransportError::Offline {
            target: target.to_string(),
            detail: format!("{what}: the printer was unplugged or turned off"),
        };
    }
    if raw == Some(libc::EIO) {
        return TransportError::Io {
            target: target.to_string(),
            detail: format!(
                "{what}: I/O error from the printer (it may show an error: cover, media, jam)"
            ),
        };
    }
    TransportError::from_io(target, what, e)
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Writes all of `data` to a non-blocking device, polling on `EAGAIN`
/// until `deadline`.
fn write_all_until<D: Write>(
    dev: &mut D,
    data: &[u8],
    deadline: Instant,
    started: Instant,
    target: &str,
) -> Result<(), TransportError> {
    let mut off = 0;
    while off < data.len() {
        match dev.write(&data[off..]) {
            Ok(0) => wait_or_timeout(deadline, started, target, "sending the job")?,
            Ok(n) => off += n,
            Err(e) if would_block(&e) => {
                wait_or_timeout(deadline, started, target, "sending the job")?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(target, "write", &e)),
        }
    }
    Ok(())
}

/// Waits until the last submitted transfer completed: a zero-length write
/// returns `EAGAIN` while usblp's write path is busy.
fn drain_writes<D: Write>(
    dev: &mut D,
    deadline: Instant,
    started: Instant,
    target: &str,
) -> Result<(), TransportError> {
    loop {
        match dev.write(&[]) {
            Ok(_) => return Ok(()),
            Err(e) if would_block(&e) => wait_or_timeout(
                deadline,
                started,
                target,
                "waiting for the printer to take the job",
            )?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(target, "finishing the job", &e)),
        }
    }
}

fn wait_or_timeout(
    deadline: Instant,
    started: Instant,
    target: &str,
    what: &'static str,
) -> Result<(), TransportError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(TransportError::Timeout {
            target: target.to_string(),
            what,
            after: now - started,
        });
    }
    std::thread::sleep(POLL.min(deadline - now));
    Ok(())
}

/// What `ESC i S` is sent with: the model's invalidate NULs (flushing a
/// half-received command), `ESC @`, `ESC i S` (reference §9.7).
pub(crate) fn status_request(model: &Model) -> Vec<u8> {
    let mut res = vec![0u8; usize::from(model.invalidate_bytes)];
    res.extend_from_slice(&[0x1B, 0x40, 0x1B, 0x69, 0x53]);
    res
}

/// Reads whatever the device has ready (non-blocking), up to `limit` bytes.
fn read_available<D: Read>(
    dev: &mut D,
    out: &mut Vec<u8>,
    limit: usize,
    target: &str,
) -> Result<(), TransportError> {
    let mut buf = [0u8; 256];
    while out.len() < limit {
        match dev.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if would_block(&e) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(target, "read", &e)),
        }
    }
    Ok(())
}

/// One status exchange on an open, non-blocking device: drain stale
/// replies, send the request, read until a reply block arrives or
/// `deadline`. A block of another type (printing completed, phase change)
/// is returned if no reply comes.
pub(crate) fn exchange_status<D: Read + Write>(
    dev: &mut D,
    request: &[u8],
    deadline: Instant,
    target: &str,
) -> Result<Status, TransportError> {
    let started = Instant::now();
    let mut stale = Vec::new();
    read_available(dev, &mut stale, DRAIN_LIMIT, target)?;
    write_all_until(dev, request, deadline, started, target)?;
    let mut buf = Vec::new();
    loop {
        read_available(dev, &mut buf, DRAIN_LIMIT, target)?;
        let found = status::find_last(&buf);
        if let Some((s, _)) = &found {
            if s.status_type == StatusType::Reply {
                return Ok(s.clone());
            }
        }
        let now = Instant::now();
        if now >= deadline {
            if let Some((s, _)) = found {
                return Ok(s);
            }
            if buf.is_empty() {
                return Err(TransportError::Timeout {
                    target: target.to_string(),
                    what: "waiting for the status reply to ESC i S",
                    after: now - started,
                });
            }
            let error = if buf.len() < status::BLOCK_LEN {
                StatusError::Truncated { len: buf.len() }
            } else {
                match status::parse(&buf[..status::BLOCK_LEN]) {
                    Err(e) => e,
                    Ok(_) => StatusError::TooLong { len: buf.len() },
                }
            };
            return Err(TransportError::BadStatus {
                target: target.to_string(),
                error,
            });
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// [`exchange_status`] once per entry of `waits`, each with that long to
/// answer; only silence (a timeout with nothing read) is retried.
pub(crate) fn status_with_retry<D: Read + Write>(
    dev: &mut D,
    request: &[u8],
    waits: &[Duration],
    target: &str,
) -> Result<Status, TransportError> {
    let mut result = Err(TransportError::Timeout {
        target: target.to_string(),
        what: "waiting for the status reply to ESC i S",
        after: Duration::ZERO,
    });
    for (attempt, wait) in waits.iter().enumerate() {
        result = exchange_status(dev, request, Instant::now() + *wait, target);
        match &result {
            Err(TransportError::Timeout { .. }) if attempt + 1 < waits.len() => {
                log::debug!("{target}: no answer to ESC i S; asking again");
            }
            _ => break,
        }
    }
    result
}

impl Transport for UsbTransport {
    fn describe(&self) -> String {
        self.target()
    }

    fn status(&mut self) -> Result<Status, TransportError> {
        let target = self.target();
        if let Some(job) = self.job.as_mut() {
            // The device is ours and printing: sending ESC i S now is
            // against the manual; report what the printer pushed by itself.
            let mut buf = Vec::new();
            read_available(&mut job.dev, &mut buf, DRAIN_LIMIT, &target)?;
            return match status::find_last(&buf) {
                Some((s, _)) => Ok(s),
                None => Err(TransportError::StatusUnavailable {
                    target,
                    detail: "a job is being sent and the printer pushed no status yet".into(),
                }),
            };
        }
        let mut dev = self.open_device()?;
        status_with_retry(
            &mut dev,
            &status_request(self.model),
            &STATUS_WAITS,
            &target,
        )
    }

    fn begin(&mut self, size_hint: usize) -> Result<(), TransportError> {
        self.abort();
        let dev = self.open_device()?;
        self.job = Some(Job {
            dev,
            started: Instant::now(),
            announced: size_hint,
            written: 0,
        });
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), TransportError> {
        let target = self.target();
        let model = self.model;
        let Some(job) = self.job.as_mut() else {
            return Err(TransportError::NotStarted { target });
        };
        job.written += chunk.len();
        let deadline = job.started + job_timeout(model, job.announced.max(job.written));
        let res = write_all_until(&mut job.dev, chunk, deadline, job.started, &target);
        if res.is_err() {
            self.job = None;
        }
        res
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        let target = self.target();
        let model = self.model;
        let Some(mut job) = self.job.take() else {
            return Err(TransportError::NotStarted { target });
        };
        let deadline = job.started + job_timeout(model, job.announced.max(job.written));
        drain_writes(&mut job.dev, deadline, job.started, &target)
        // `job.dev` is closed here.
    }

    fn abort(&mut self) {
        self.job = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A fake device: reads come from `reads` (one entry per call; an
    /// `Err(WouldBlock)` entry means "nothing yet"), writes are recorded.
    /// `reply` is queued for reading once a write ending in `ESC i S` arrives.
    struct FakeDevice {
        reads: VecDeque<io::Result<Vec<u8>>>,
        reply: Option<Vec<u8>>,
        written: Vec<u8>,
        busy_writes: usize,
        /// Requests to stay silent on before the reply is queued.
        ignore_requests: usize,
    }

    impl FakeDevice {
        fn new(stale: &[u8], reply: Option<Vec<u8>>) -> FakeDevice {
            let mut reads = VecDeque::new();
            if !stale.is_empty() {
                reads.push_back(Ok(stale.to_vec()));
            }
            FakeDevice {
                reads,
                reply,
                written: Vec::new(),
                busy_writes: 0,
                ignore_requests: 0,
            }
        }
    }

    impl Read for FakeDevice {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.reads.pop_front() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(Err(e)) => Err(e),
                Some(Ok(mut data)) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    if n < data.len() {
                        self.reads.push_front(Ok(data.split_off(n)));
                    }
                    Ok(n)
                }
            }
        }
    }

    impl Write for FakeDevice {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.busy_writes > 0 {
                self.busy_writes -= 1;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // Accept at most 100 bytes per call, like a device with a small buffer.
            let n = buf.len().min(100);
            self.written.extend_from_slice(&buf[..n]);
            if self.written.ends_with(&[0x1B, 0x69, 0x53]) {
                if self.ignore_requests > 0 {
                    self.ignore_requests -= 1;
                } else if let Some(reply) = self.reply.take() {
                    self.reads.push_back(Err(io::ErrorKind::WouldBlock.into()));
                    // Delivered in two pieces, as USB reads may be.
                    self.reads.push_back(Ok(reply[..10].to_vec()));
                    self.reads.push_back(Ok(reply[10..].to_vec()));
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn model() -> &'static Model {
        crate::brother::model::by_name("PT-P750W").unwrap()
    }

    fn ready_block() -> Vec<u8> {
        let g = crate::brother::media::geometry(model(), "12").unwrap();
        Status::for_media(model(), Some(&g)).encode().to_vec()
    }

    #[test]
    fn request_is_invalidate_init_status() {
        let req = status_request(model());
        assert_eq!(req.len(), 100 + 5);
        assert!(req[..100].iter().all(|&b| b == 0));
        assert_eq!(&req[100..], &[0x1B, 0x40, 0x1B, 0x69, 0x53]);
    }

    #[test]
    fn exchange_drains_stale_bytes_and_reads_the_reply() {
        let mut stale_block = ready_block();
        stale_block[18] = 0x01; // an old "printing completed"
        let mut dev = FakeDevice::new(&stale_block, Some(ready_block()));
        dev.busy_writes = 3;
        let s = exchange_status(
            &mut dev,
            &status_request(model()),
            Instant::now() + Duration::from_secs(5),
            "usb://fake",
        )
        .unwrap();
        assert_eq!(s.status_type, StatusType::Reply);
        assert_eq!(s.media_width_mm, 12);
        assert_eq!(dev.written, status_request(model()));
    }

    #[test]
    fn exchange_reports_silence_truncation_and_garbage() {
        let deadline = || Instant::now() + Duration::from_millis(30);
        let req = status_request(model());
        let mut silent = FakeDevice::new(&[], None);
        let err = exchange_status(&mut silent, &req, deadline(), "usb://fake").unwrap_err();
        assert_eq!(err.code(), "timeout");

        let mut short = FakeDevice::new(&[], None);
        short.reply = Some(ready_block()[..20].to_vec());
        let err = exchange_status(&mut short, &req, deadline(), "usb://fake").unwrap_err();
        assert_eq!(err.code(), "status_truncated", "{err}");

        let mut garbage = FakeDevice::new(&[], None);
        garbage.reply = Some(b"this is not a status block at all".to_vec());
        let err = exchange_status(&mut garbage, &req, deadline(), "usb://fake").unwrap_err();
        assert_eq!(err.code(), "status_garbage", "{err}");
    }

    #[test]
    fn a_request_left_unanswered_is_sent_again() {
        let waits = [Duration::from_millis(30), Duration::from_secs(5)];
        let req = status_request(model());
        // E550W/P750W: silent on the first ESC i S, answers the second.
        let mut dev = FakeDevice::new(&[], Some(ready_block()));
        dev.ignore_requests = 1;
        let s = status_with_retry(&mut dev, &req, &waits, "usb://fake").unwrap();
        assert_eq!(s.status_type, StatusType::Reply);
        assert_eq!(dev.written, [req.clone(), req.clone()].concat());

        // Silent twice: a timeout after both requests, no third.
        let mut dev = FakeDevice::new(&[], Some(ready_block()));
        dev.ignore_requests = 2;
        let short = [Duration::from_millis(20), Duration::from_millis(20)];
        let err = status_with_retry(&mut dev, &req, &short, "usb://fake").unwrap_err();
        assert_eq!(err.code(), "timeout");
        assert_eq!(dev.written.len(), 2 * req.len());

        // A wrong answer is not retried.
        let mut dev = FakeDevice::new(&[], None);
        dev.reply = Some(b"this is not a status block at all".to_vec());
        let err = status_with_retry(&mut dev, &req, &short, "usb://fake").unwrap_err();
        assert_eq!(err.code(), "status_garbage", "{err}");
        assert_eq!(dev.written, req);

        // A prompt answer needs one request.
        let mut dev = FakeDevice::new(&[], Some(ready_block()));
        status_with_retry(&mut dev, &req, &waits, "usb://fake").unwrap();
        assert_eq!(dev.written, req);
    }

    #[test]
    fn stalled_device_times_out_on_write() {
        let mut dev = FakeDevice::new(&[], None);
        dev.busy_writes = usize::MAX;
        let start = Instant::now();
        let err = write_all_until(
            &mut dev,
            &[1, 2, 3],
            start + Duration::from_millis(30),
            start,
            "usb://fake",
        )
        .unwrap_err();
        assert_eq!(err.code(), "timeout");
        let err = drain_writes(
            &mut dev,
            start + Duration::from_millis(30),
            start,
            "usb://fake",
        )
        .unwrap_err();
        assert_eq!(err.code(), "timeout");
    }

    #[test]
    fn open_errors_name_the_fix() {
        let busy = open_error(
            "t",
            "/dev/usb/lp0",
            &io::Error::from_raw_os_error(libc::EBUSY),
        );
        assert_eq!(busy.code(), "printer_busy");
        assert!(busy.to_string().contains("ipp-usb"), "{busy}");
        assert!(busy.to_string().contains("CUPS"), "{busy}");
        let denied = open_error(
            "t",
            "/dev/usb/lp0",
            &io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(denied.code(), "permission_denied");
        assert!(denied.to_string().contains("udev rule"), "{denied}");
        assert!(denied.to_string().contains("group `lp`"), "{denied}");
        let missing = open_error(
            "t",
            "/dev/usb/lp0",
            &io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(missing.code(), "printer_offline");
        assert!(missing.to_string().contains("ipp-usb"), "{missing}");
        let gone = io_error("t", "write", &io::Error::from_raw_os_error(libc::ENODEV));
        assert_eq!(gone.code(), "printer_offline");
        let paper = io_error("t", "write", &io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(paper.code(), "no_media");
    }
}
