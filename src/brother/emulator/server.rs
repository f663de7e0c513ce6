//! The emulator on the network: raw TCP (like port 9100) and SNMP on UDP at
//! the same address and port.
//!
//! * TCP: one connection at a time, like the hardware (later ones wait in
//!   the listen backlog). Bytes are fed to a job as they arrive; while a page
//!   prints at real speed nothing is read, so the sender is slowed down by
//!   TCP flow control exactly as by a real printer. When the job is refused
//!   (cover open, no media) or rejected (bad stream, wrong media) the rest is
//!   read and discarded and the error shows in the next status. The `drop`
//!   fault stops reading after N bytes and closes the socket with data
//!   unread, which makes the kernel send a reset. The `offline` fault closes
//!   the listening socket (connections are refused) until it is cleared.
//! * UDP: SNMP v1/v2c Get/GetNext/GetBulk from [`Emulator::snmp_table`];
//!   silent while offline.
//!
//! Threads poll a stop flag every few milliseconds; [`Server::shutdown`] (or
//! dropping the server) stops and joins them.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::job::Rejection;
use super::{Emulator, EmulatorError, Fault, StartError};
use crate::brother::snmp;

/// Poll interval of the accept and SNMP loops.
const POLL: Duration = Duration::from_millis(10);
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(30);
/// Attempts to find a port free for both TCP and UDP when port 0 is asked.
const BIND_ATTEMPTS: usize = 20;

/// A running network emulator. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// The bound address (TCP and UDP), with the real port when 0 was asked.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops both loops and waits for them (a job in progress ends first).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl Emulator {
    /// Serves this emulator on `listen` (TCP and UDP, same port; port 0
    /// picks one free for both). `community` is the SNMP community.
    pub fn serve(
        self: &Arc<Self>,
        listen: SocketAddr,
        community: &str,
    ) -> Result<Server, EmulatorError> {
        let bind_err = |e: io::Error| EmulatorError::Bind {
            addr: listen.to_string(),
            detail: e.to_string(),
        };
        let mut attempt = 0;
        let (tcp, udp) = loop {
            attempt += 1;
            let tcp = TcpListener::bind(listen).map_err(bind_err)?;
            let addr = tcp.local_addr().map_err(bind_err)?;
            match UdpSocket::bind(addr) {
                Ok(udp) => break (tcp, udp),
                Err(e) if listen.port() == 0 && attempt < BIND_ATTEMPTS => {
                    log::debug!("UDP port {} taken ({e}), trying another", addr.port());
                }
                Err(e) => return Err(bind_err(e)),
            }
        };
        let addr = tcp.local_addr().map_err(bind_err)?;
        tcp.set_nonblocking(true).map_err(bind_err)?;
        udp.set_read_timeout(Some(POLL * 5)).map_err(bind_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let emu = Arc::clone(self);
            let stop = Arc::clone(&stop);
            threads.push(
                thread::Builder::new()
                    .name("emulator-tcp".into())
                    .spawn(move || tcp_loop(&emu, Some(tcp), addr, &stop))
                    .map_err(bind_err)?,
            );
        }
        {
            let emu = Arc::clone(self);
            let stop_flag = Arc::clone(&stop);
            let community = community.as_bytes().to_vec();
            let spawned = thread::Builder::new()
                .name("emulator-snmp".into())
                .spawn(move || udp_loop(&emu, &udp, &community, &stop_flag));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(bind_err(e));
                }
            }
        }
        Ok(Server {
            addr,
            stop,
            threads,
        })
    }
}

fn tcp_loop(
    emu: &Arc<Emulator>,
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        if emu.fault() == Some(Fault::Offline) {
            if listener.take().is_some() {
                log::info!(
                    "emulator {}: offline, {addr} refuses connections",
                    emu.model.name
                );
            }
            thread::sleep(POLL * 5);
            continue;
        }
        let Some(l) = listener.as_ref() else {
            match TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
                Ok(l) => {
                    log::info!("emulator {}: back online on {addr}", emu.model.name);
                    listener = Some(l);
                }
                Err(e) => {
                    log::warn!("emulator: cannot listen on {addr} again: {e}");
                    thread::sleep(POLL * 10);
                }
            }
            continue;
        };
        match l.accept() {
            Ok((stream, peer)) => {
                log::debug!("emulator: connection from {peer}");
                if let Err(e) = serve_connection(emu, stream, stop) {
                    log::warn!("emulator: connection from {peer}: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(e) => {
                log::warn!("emulator: accept on {addr}: {e}");
                thread::sleep(POLL);
            }
        }
    }
}

/// Reads one connection's job.
fn serve_connection(
    emu: &Arc<Emulator>,
    mut stream: TcpStream,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE))?;
    let mut job = match emu.start_job() {
        Ok(job) => job,
        Err(StartError::Offline) => return Ok(()), // dropped: connection closes
        Err(StartError::Problem(problem)) => {
            emu.record_refused(problem);
            return discard(&mut stream, stop);
        }
        Err(StartError::Busy) => return Ok(()),
        Err(StartError::Io(e)) => return Err(io::Error::other(e)),
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if stop.load(Ordering::SeqCst) {
            job.abort();
            return Ok(());
        }
        // With the drop fault, read no further than the drop point so the
        // rest stays unread in the socket.
        let want = job
            .bytes_until_drop()
            .map_or(buf.len(), |n| n.min(buf.len()));
        let res = if want == 0 {
            Ok(None)
        } else {
            stream.read(&mut buf[..want]).map(Some)
        };
        let fed = match res {
            Ok(Some(0)) => {
                let _ = job.finish();
                return Ok(());
            }
            Ok(Some(n)) => job.feed(&buf[..n]),
            Ok(None) => job.feed(&[]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                log::warn!(
                    "emulator: connection idle for {} s, job aborted",
                    IDLE.as_secs()
                );
                job.abort();
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                job.abort();
                return Err(e);
            }
        };
        match fed {
            Ok(()) => {}
            Err(Rejection::Dropped { after }) => {
                job.end_failed(&Rejection::Dropped { after });
                // Wait (briefly) until more of the job is queued, then close
                // with it unread: the kernel answers with a reset, which is
                // what the sender sees when a printer drops a connection.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.peek(&mut [0u8; 1]);
                return Ok(());
            }
            Err(rejection) => {
                job.end_failed(&rejection);
                return discard(&mut stream, stop);
            }
        }
    }
}

/// Reads and throws away the rest of a refused job, then closes.
fn discard(stream: &mut TcpStream, stop: &AtomicBool) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

fn udp_loop(emu: &Emulator, socket: &UdpSocket, community: &[u8], stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_535];
    while !stop.load(Ordering::SeqCst) {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                log::debug!("emulator snmp: {e}");
                continue;
            }
        };
        if snmp::decode(&buf[..n]).is_err() {
            continue; // garbage: agents drop it without a word
        }
        let Some(table) = emu.snmp_table() else {
            continue; // offline: silent
        };
        if let Some(reply) = snmp::respond(&buf[..n], community, &table) {
            if let Err(e) = socket.send_to(&reply, peer) {
                log::debug!("emulator snmp: reply to {peer}: {e}");
            }
        }
    }
}
