//! The request body: read whole — `Content-Length` or chunked — before the
//! request is forwarded, at most `max_body_bytes` (413, refused from the
//! head before any body byte is read when the length is declared), each
//! read within `body_timeout` (408), and within a memory budget shared by
//! all connections (503).
//!
//! **Invariant:** bytes after the body stay buffered on the connection, so
//! a pipelined next request is read from where this one ended.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::head::Framing;
use super::{is_timeout, Failure, FrontConfig, FrontError, Inbound};

/// Bytes of request bodies held in memory, over all connections.
pub(super) struct Budget {
    used: AtomicUsize,
    limit: usize,
}

/// Part of the budget, given back on drop.
pub(super) struct Reservation<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Budget {
    pub(super) fn new(limit: usize) -> Budget {
        Budget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    fn reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(bytes).filter(|n| *n <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Reservation {
                        budget: self,
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl Inbound {
    /// Makes at least one byte available, waiting at most `idle`.
    fn fill(&mut self, idle: Duration) -> Result<(), Failure> {
        while self.buffered().is_empty() {
            match self.read_more(idle) {
                Ok(0) => return Err(Failure::Silent),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => return Err(FrontError::BodyTimeout.into()),
                Err(_) => return Err(Failure::Silent),
            }
        }
        Ok(())
    }

    fn read_exact_into(&mut self, out: &mut [u8], idle: Duration) -> Result<(), Failure> {
        let mut done = 0;
        while done < out.len() {
            self.fill(idle)?;
            let have = self.buffered();
            let n = have.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&have[..n]);
            self.consume(n);
            done += n;
        }
        Ok(())
    }

    /// Reads a CRLF-terminated line of at most `max` bytes (without CRLF).
    fn read_line(&mut self, max: usize, idle: Duration) -> Result<String, Failure> {
        let mut line = Vec::new();
        loop {
            self.fill(idle)?;
            let have = self.buffered();
            let (take, found) = match have.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (have.len(), false),
            };
            line.extend_from_slice(&have[..take]);
            self.consume(take);
            if found {
                line.pop();
                if line.pop() != Some(b'\r') {
                    return Err(FrontError::bad("chunk lines must end with CRLF").into());
                }
                if line.len() > max {
                    return Err(FrontError::bad("chunk line too long").into());
                }
                return String::from_utf8(line)
                    .map_err(|_| FrontError::bad("chunk line is not ASCII").into());
            }
            if line.len() > max + 1 {
                return Err(FrontError::bad("chunk line too long").into());
            }
        }
    }

    /// Reads the whole body into memory (within the budget).
    pub(super) fn read_body<'a>(
        &mut self,
        framing: &Framing,
        cfg: &FrontConfig,
        budget: &'a Budget,
    ) -> Result<(Vec<u8>, Option<Reservation<'a>>), Failure> {
        let idle = cfg.body_timeout;
        match framing {
            Framing::Length(0) => Ok((Vec::new(), None)),
            Framing::Length(n) => {
                let reservation = budget.reserve(*n).ok_or(FrontError::Busy)?;
                let mut body = vec![0u8; *n];
                self.read_exact_into(&mut body, idle)?;
                Ok((body, Some(reservation)))
            }
            Framing::Chunked => {
                let mut body = Vec::new();
                let mut reservations = Vec::new();
                loop {
                    let line = self.read_line(1024, idle)?;
                    let size_hex = line.split(';').next().unwrap_or("").trim();
                    if size_hex.is_empty()
                        || size_hex.len() > 8
                        || !size_hex.bytes().all(|b| b.is_ascii_hexdigit())
                    {
                        return Err(FrontError::bad("bad chunk size").into());
                    }
                    let size = usize::from_str_radix(size_hex, 16)
                        .map_err(|_| FrontError::bad("bad chunk size"))?;
                    if size == 0 {
                        break;
                    }
                    if body.len() + size > cfg.max_body_bytes {
                        return Err(FrontError::BodyTooLarge {
                            limit: cfg.max_body_bytes,
                        }
                        .into());
                    }
                    reservations.push(budget.reserve(size).ok_or(FrontError::Busy)?);
                    let start = body.len();
                    body.resize(start + size, 0);
                    self.read_exact_into(&mut body[start..], idle)?;
                    if !self.read_line(2, idle)?.is_empty() {
                        return Err(FrontError::bad("chunk data longer than its size").into());
                    }
                }
                // Trailers: read and drop, within the head limits.
                let mut trailers = 0;
                loop {
                    let line = self.read_line(cfg.max_header_bytes, idle)?;
                    if line.is_empty() {
                        break;
                    }
                    trailers += 1;
                    if trailers > cfg.max_headers {
                        return Err(FrontError::TooManyHeaders {
                            limit: cfg.max_headers,
                        }
                        .into());
                    }
                }
                let total = body.len();
                drop(reservations);
                let reservation = budget.reserve(total).ok_or(FrontError::Busy)?;
                Ok((body, Some(reservation)))
            }
        }
    }
}
