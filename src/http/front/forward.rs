//! Forwarding: one complete request at a time over a kept-alive Unix socket
//! connection to tiny_http, and the answer streamed back to the client.
//!
//! [`Pool`] keeps idle backend connections (at most `max_idle`); a request
//! takes one (or opens one when none is idle) and gives it back once the
//! whole answer has been read from it. No connection is opened and no
//! thread is started per request in steady state.
//!
//! The answer is framed by its `Content-Length` (the server never chunks,
//! see `http::server::respond`) or has no body (HEAD, 1xx, 204, 304).
//! The front writes it to the client as it arrives; while the answer is
//! still arriving, client writes never block (what the client has not
//! taken yet is held, up to [`HOLD_LIMIT`]), so a slow reader does not hold
//! a handler thread: the backend is drained at socket speed and the
//! connection goes back to the pool before the front waits on the client.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::head::Head;
use super::{Failure, FrontError, Shared};

/// Bytes of an answer held for a client that reads slower than the backend
/// writes; past this the front waits on the client (bounded by the write
/// timeout) before reading more.
pub const HOLD_LIMIT: usize = 16 * 1024 * 1024;

/// The longest answer head accepted from the backend.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Kept-alive connections to the backend's Unix socket.
pub(super) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<UnixStream>>,
    /// Held while a connection is opened (see [`Pool::open`]).
    opening: Mutex<()>,
    max_idle: usize,
    response_timeout: Duration,
    /// Requests sent and not yet answered (long-polls aside).
    in_flight: AtomicUsize,
    max_in_flight: usize,
}

/// One request counted in [`Pool::in_flight`] until its answer's head is in.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub(super) fn new(
        path: PathBuf,
        max_idle: usize,
        response_timeout: Duration,
        max_in_flight: usize,
    ) -> Pool {
        Pool {
            path,
            idle: Mutex::new(Vec::new()),
            opening: Mutex::new(()),
            max_idle,
            response_timeout,
            in_flight: AtomicUsize::new(0),
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// Counts one more request waiting for an answer, or refuses it (503)
    /// when `max_in_flight` already wait.
    fn admit(&self) -> Result<InFlight<'_>, FrontError> {
        let guard = InFlight(&self.in_flight);
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= self.max_in_flight {
            return Err(FrontError::Busy);
        }
        Ok(guard)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<UnixStream>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection (`true`: reused) or a new one.
    fn take(&self) -> io::Result<(UnixStream, bool)> {
        if let Some(s) = self.lock().pop() {
            return Ok((s, true));
        }
        self.open().map(|s| (s, false))
    }

    /// Opens a connection, one at a time, and returns it only once the
    /// server has answered a handshake (`OPTIONS *`, answered by the first
    /// free `http::server` handler thread) on it.
    ///
    /// Why: tiny_http 0.12 hands each accepted connection to its task pool,
    /// which loses a wake-up when two connections arrive before a woken
    /// thread takes the first: the second then waits until some connection
    /// closes. With kept-alive connections that can be never. Once the
    /// handshake is answered a pool thread is serving this connection, so
    /// the next connection (opened after it) finds an accurate count of
    /// waiting threads.
    fn open(&self) -> io::Result<UnixStream> {
        let _one_at_a_time = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = UnixStream::connect(&self.path)?;
        s.set_write_timeout(Some(Duration::from_secs(30)))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"OPTIONS * HTTP/1.1\r\nContent-Length: 0\r\n\r\n")?;
        let mut answer = Vec::with_capacity(256);
        let mut byte = [0u8; 256];
        loop {
            let n = s.read(&mut byte)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            answer.extend_from_slice(&byte[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&answer) {
                Ok(httparse::Status::Complete(len)) => {
                    let body = content_length(resp.headers).unwrap_or(0);
                    if answer.len() >= len + body {
                        break;
                    }
                }
                Ok(httparse::Status::Partial) if answer.len() < 4096 => {}
                _ => return Err(io::ErrorKind::InvalidData.into()),
            }
        }
        s.set_read_timeout(Some(self.response_timeout))?;
        Ok(s)
    }

    /// Gives a connection back after a complete exchange.
    fn give_back(&self, s: UnixStream) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(s);
        }
    }

    /// Idle connections now (tests, benchmark).
    pub(super) fn idle(&self) -> usize {
        self.lock().len()
    }

    /// Closes every idle connection (stopping).
    pub(super) fn clear(&self) {
        self.lock().clear();
    }
}

/// The `Content-Length` among `headers`, if there is a valid one.
fn content_length(headers: &[httparse::Header<'_>]) -> Option<usize> {
    let h = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))?;
    std::str::from_utf8(h.value).ok()?.trim().parse().ok()
}

/// How the client connection goes on after an answer.
pub(super) enum Next {
    KeepAlive,
    Close,
}

/// Sends one request (head + whole body) to the backend and relays the
/// answer to `client`. `keep_alive`: whether the client connection may stay
/// open (the answer then says so; otherwise it carries `Connection: close`).
///
/// A long-poll gets a connection of its own, sent with `Connection: close`:
/// tiny_http then frees its connection thread once the request is read, so
/// a parked long-poll holds no thread but the front's (a pooled connection
/// would hold a tiny_http thread for as long as the poll waits).
pub(super) fn exchange(
    client: &mut TcpStream,
    chunk: &mut [u8],
    head: &Head,
    body: &[u8],
    peer: SocketAddr,
    keep_alive: bool,
    shared: &Shared,
) -> Result<Next, Failure> {
    let long_poll = head.is_long_poll();
    let mut request = head.forwarded(body.len(), peer, long_poll);
    let big_body = body.len() > 64 * 1024;
    if !big_body {
        request.extend_from_slice(body);
    }
    let send = |s: &mut UnixStream| -> io::Result<()> {
        s.write_all(&request)?;
        if big_body {
            s.write_all(body)?;
        }
        Ok(())
    };
    // A long-poll parks without a handler: not counted.
    let in_flight = if long_poll {
        None
    } else {
        Some(shared.pool.admit()?)
    };
    let taken = if long_poll {
        shared.pool.open().map(|s| (s, false))
    } else {
        shared.pool.take()
    };
    let (mut backend, reused) = taken.map_err(|_| FrontError::BackendUnavailable)?;
    if let Err(e) = send(&mut backend) {
        // A pooled connection the backend closed meanwhile (it was
        // stopping): one more try on a new connection.
        if !reused {
            log::debug!("front: backend write failed: {e}");
            return Err(FrontError::BackendUnavailable.into());
        }
        backend = shared
            .pool
            .open()
            .map_err(|_| FrontError::BackendUnavailable)?;
        send(&mut backend).map_err(|_| FrontError::BackendUnavailable)?;
    }
    drop(request);

    // The answer's head.
    let mut buf: Vec<u8> = Vec::with_capacity(4 * 1024);
    let (head_len, status, content_length, backend_close) = loop {
        match backend.read(chunk) {
            Ok(0) => return Err(FrontError::BackendUnavailable.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("front: no answer from the server: {e}");
                return Err(FrontError::BackendUnavailable.into());
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                let mut length = None;
                let mut close = false;
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = content_length(std::slice::from_ref(h));
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        close = h.value.eq_ignore_ascii_case(b"close");
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        // Never sent by http::server; not relayed blindly.
                        return Err(FrontError::BackendUnavailable.into());
                    }
                }
                break (len, status, length, close);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => {}
            _ => return Err(FrontError::BackendUnavailable.into()),
        }
    };
    // Answered: the handler is free (a stream goes on without it).
    drop(in_flight);
    let no_body =
        head.is_head_method() || (100..200).contains(&status) || matches!(status, 204 | 304);
    if !no_body && content_length.is_none() {
        // A stream (console's Server-Sent Events): no length, ends when the
        // backend closes. Relayed as it comes, then the client connection
        // closes too.
        if !backend_close {
            return Err(FrontError::BackendUnavailable.into());
        }
        let mut out = rewrite_head(&buf[..head_len], false);
        out.extend_from_slice(&buf[head_len..]);
        client.write_all(&out).map_err(|_| Failure::Silent)?;
        loop {
            match backend.read(chunk) {
                Ok(0) => break,
                Ok(n) => client.write_all(&chunk[..n]).map_err(|_| Failure::Silent)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        return Ok(Next::Close);
    }
    let body_len = if no_body {
        0
    } else {
        content_length.ok_or(FrontError::BackendUnavailable)?
    };
    let keep_alive = keep_alive && !shared.stopping();
    let mut out = rewrite_head(&buf[..head_len], keep_alive);
    let have = buf.len() - head_len;
    let reusable = !long_poll && !backend_close && have <= body_len;
    if have >= body_len {
        // The whole answer is here: free the backend connection first, then
        // write (the usual case, and every long-poll).
        if reusable {
            shared.pool.give_back(backend);
        }
        out.extend_from_slice(&buf[head_len..head_len + body_len]);
        drop(buf);
        client.write_all(&out).map_err(|_| Failure::Silent)?;
    } else {
        out.extend_from_slice(&buf[head_len..]);
        drop(buf);
        let (pending, sent) = stream_rest(client, &mut backend, out, body_len - have, chunk)?;
        if reusable {
            shared.pool.give_back(backend);
        }
        client
            .write_all(&pending[sent..])
            .map_err(|_| Failure::Silent)?;
    }
    Ok(if keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    })
}

/// Relays `left` more body bytes from `backend`, writing to the client
/// without blocking while they arrive. Returns what the client has not
/// taken yet (`pending[sent..]`), for the caller to write (blocking, within
/// the write timeout) once the backend connection is back in the pool.
fn stream_rest(
    client: &mut TcpStream,
    backend: &mut UnixStream,
    mut pending: Vec<u8>,
    mut left: usize,
    chunk: &mut [u8],
) -> Result<(Vec<u8>, usize), Failure> {
    client.set_nonblocking(true).map_err(|_| Failure::Silent)?;
    let result = (|| {
        let mut sent = 0;
        while left > 0 {
            sent += write_some(client, &pending[sent..])?;
            if sent > 0 && sent * 2 >= pending.len() {
                pending.drain(..sent);
                sent = 0;
            }
            if pending.len() - sent > HOLD_LIMIT {
                client.set_nonblocking(false).map_err(|_| Failure::Silent)?;
                client
                    .write_all(&pending[sent..])
                    .map_err(|_| Failure::Silent)?;
                pending.clear();
                sent = 0;
                client.set_nonblocking(true).map_err(|_| Failure::Silent)?;
            }
            let want = left.min(chunk.len());
            match backend.read(&mut chunk[..want]) {
                Ok(0) => return Err(Failure::Silent),
                Ok(n) => {
                    pending.extend_from_slice(&chunk[..n]);
                    left -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Failure::Silent),
            }
        }
        Ok(sent)
    })();
    client.set_nonblocking(false).map_err(|_| Failure::Silent)?;
    let sent = result?;
    Ok((pending, sent))
}

/// Writes what the client takes now without waiting.
fn write_some(client: &mut TcpStream, bytes: &[u8]) -> Result<usize, Failure> {
    let mut done = 0;
    while done < bytes.len() {
        match client.write(&bytes[done..]) {
            Ok(0) => return Err(Failure::Silent),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Failure::Silent),
        }
    }
    Ok(done)
}

/// The answer's head for the client: the backend's status line and headers
/// minus `Connection` / `Keep-Alive`, plus `Connection: close` when the
/// client connection ends after it.
fn rewrite_head(head: &[u8], keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 24);
    // `head` ends with CRLF CRLF; each line ends with CRLF.
    let body = head.strip_suffix(b"\r\n").unwrap_or(head);
    for line in body.split_inclusive(|&b| b == b'\n') {
        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
        if name.eq_ignore_ascii_case(b"connection") || name.eq_ignore_ascii_case(b"keep-alive") {
            continue;
        }
        out.extend_from_slice(line);
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_heads_lose_hop_by_hop_headers_and_say_when_they_are_the_last() {
        let head = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            String::from_utf8(rewrite_head(head, false)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            String::from_utf8(rewrite_head(head, true)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
        );
    }
}
