//! Raw TCP (port 9100) with status over SNMP.
//!
//! One connection per job: `begin` connects, `write` sends with a deadline
//! of `job_timeout(model, bytes)` from the start of the job (growing when
//! more bytes than announced are written), `finish` half-closes the socket
//! and waits briefly for the printer to close its side (a reset there means
//! the printer dropped the job), then closes. Brother printers do not answer
//! `ESC i S` on port 9100 (reference §5.2), so `status` asks SNMP.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::{job_timeout, Transport, TransportError};
use crate::brother::model::Model;
use crate::brother::snmp::{self, SnmpError};
use crate::brother::status::{self, Phase, Status};

/// Per-address connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// SNMP status request timeout.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for the printer to close its side after our half-close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes handed to the socket per write call (each gets the remaining time).
const WRITE_PIECE: usize = 16 * 1024;

pub(crate) struct TcpTransport {
    host: String,
    port: u16,
    snmp_port: Option<u16>,
    community: String,
    model: &'static Model,
    job: Option<Job>,
}

struct Job {
    stream: TcpStream,
    started: Instant,
    announced: usize,
    written: usize,
}

impl Job {
    fn deadline(&self, model: &Model) -> Instant {
        self.started + job_timeout(model, self.announced.max(self.written))
    }
}

impl TcpTransport {
    pub(crate) fn new(
        host: String,
        port: u16,
        snmp_port: Option<u16>,
        community: String,
        model: &'static Model,
    ) -> TcpTransport {
        TcpTransport {
            host,
            port,
            snmp_port,
            community,
            model,
            job: None,
        }
    }

    fn target(&self) -> String {
        if self.host.contains(':') {
            format!("tcp://[{}]:{}", self.host, self.port)
        } else {
            format!("tcp://{}:{}", self.host, self.port)
        }
    }

    fn resolve(&self, port: u16) -> Result<Vec<SocketAddr>, TransportError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| TransportError::Offline {
                target: self.target(),
                detail: format!("cannot resolve `{}`: {e}", self.host),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(TransportError::Offline {
                target: self.target(),
                detail: format!("`{}` has no address", self.host),
            });
        }
        Ok(addrs)
    }

    fn fail(&mut self, err: TransportError) -> TransportError {
        if let Some(job) = self.job.take() {
            let _ = job.stream.shutdown(Shutdown::Both);
        }
        err
    }
}

impl Transport for TcpTransport {
    fn describe(&self) -> String {
        self.target()
    }

    fn status(&mut self) -> Result<Status, TransportError> {
        let target = self.target();
        let Some(snmp_port) = self.snmp_port else {
            return Err(TransportError::StatusUnavailable {
                target,
                detail: "SNMP is switched off for this printer (snmp_port=off)".into(),
            });
        };
        let addr = self.resolve(snmp_port)?[0];
        let answer =
            snmp::printer_status(addr, &self.community, STATUS_TIMEOUT).map_err(|e| match e {
                SnmpError::Timeout { .. } | SnmpError::Refused { .. } => TransportError::Offline {
                    target: target.clone(),
                    detail: e.to_string(),
                },
                other => TransportError::StatusUnavailable {
                    target: target.clone(),
                    detail: other.to_string(),
                },
            })?;
        let Some(block) = answer.block else {
            return Err(TransportError::StatusUnavailable {
                target,
                detail: format!(
                    "the SNMP agent at {addr} has no Brother status object ({})",
                    snmp::Oid::from(snmp::BROTHER_STATUS)
                ),
            });
        };
        let mut res =
            status::parse(&block).map_err(|error| TransportError::BadStatus { target, error })?;
        // hrPrinterStatus 4 = printing: the block of an idle-looking printer
        // that is busy with another job.
        if answer.hr_printer_status == Some(4) {
            res.phase = Phase::Printing;
        }
        Ok(res)
    }

    fn begin(&mut self, size_hint: usize) -> Result<(), TransportError> {
        self.abort();
        let target = self.target();
        let mut last_err = None;
        for addr in self.resolve(self.port)? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    self.job = Some(Job {
                        stream,
                        started: Instant::now(),
                        announced: size_hint,
                        written: 0,
                    });
                    return Ok(());
                }
                Err(e) => last_err = Some((addr, e)),
            }
        }
        Err(match last_err {
            Some((addr, e)) if e.kind() == io::ErrorKind::TimedOut => TransportError::Offline {
                target,
                detail: format!(
                    "no answer from {addr} within {} s (printer off or unreachable)",
                    CONNECT_TIMEOUT.as_secs()
                ),
            },
            Some((_, e)) => TransportError::from_io(&target, "connect", &e),
            None => TransportError::Offline {
                target,
                detail: "no address to connect to".into(),
            },
        })
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), TransportError> {
        let target = self.target();
        let model = self.model;
        let Some(job) = self.job.as_mut() else {
            return Err(TransportError::NotStarted { target });
        };
        let mut res = Ok(());
        for piece in chunk.chunks(WRITE_PIECE) {
            job.written += piece.len();
            let deadline = job.deadline(model);
            let now = Instant::now();
            if now >= deadline {
                res = Err(TransportError::Timeout {
                    target: target.clone(),
                    what: "sending the job",
                    after: now - job.started,
                });
                break;
            }
            if let Err(e) = job.stream.set_write_timeout(Some(deadline - now)) {
                res = Err(TransportError::from_io(&target, "write", &e));
                break;
            }
            if let Err(e) = job.stream.write_all(piece) {
                res = Err(match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        TransportError::Timeout {
                            target: target.clone(),
                            what: "sending the job (the printer stopped accepting data)",
                            after: job.started.elapsed(),
                        }
                    }
                    _ => TransportError::from_io(&target, "write", &e),
                });
                break;
            }
        }
        res.map_err(|e| self.fail(e))
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        let target = self.target();
        let model = self.model;
        let Some(mut job) = self.job.take() else {
            return Err(TransportError::NotStarted { target });
        };
        let res = finish_job(&mut job, model, &target);
        let _ = job.stream.shutdown(Shutdown::Both);
        res
    }

    fn abort(&mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.stream.shutdown(Shutdown::Both);
        }
    }
}

/// Half-closes and waits (bounded) for the printer's side to close.
fn finish_job(job: &mut Job, model: &Model, target: &str) -> Result<(), TransportError> {
    job.stream
        .flush()
        .map_err(|e| TransportError::from_io(target, "flush", &e))?;
    job.stream
        .shutdown(Shutdown::Write)
        .map_err(|e| TransportError::from_io(target, "close", &e))?;
    let drain_until = job
        .deadline(model)
        .min(Instant::now() + DRAIN_TIMEOUT)
        .max(Instant::now() + Duration::from_millis(50));
    let mut buf = [0u8; 512];
    loop {
        let now = Instant::now();
        if now >= drain_until {
            // The printer keeps its side open; our data is out. Close.
            return Ok(());
        }
        job.stream
            .set_read_timeout(Some(drain_until - now))
            .map_err(|e| TransportError::from_io(target, "close", &e))?;
        match job.stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {} // status bytes some models push: not needed here
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TransportError::from_io(target, "finishing the job", &e)),
        }
    }
}
