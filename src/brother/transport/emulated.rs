//! The in-process emulator as a [`Transport`] (`emulator:` URIs).
//!
//! The arrow points one way: the transport layer knows the emulator (as it
//! knows a TCP socket or a USB device file), the emulator knows nothing of
//! `Transport`. `Emulator::transport` is defined here, beside the adapter.

use std::sync::Arc;

use super::{Transport, TransportError};
use crate::brother::emulator::{Emulator, JobRun, Rejection, StartError, BUSY_WAIT};
use crate::brother::status::Status;

impl Emulator {
    /// An in-process transport to this emulator.
    pub fn transport(self: &Arc<Self>) -> Box<dyn Transport> {
        Box::new(EmulatorTransport {
            emu: Arc::clone(self),
            job: None,
        })
    }
}

/// The in-process transport (`emulator:` URIs, [`Emulator::transport`]).
struct EmulatorTransport {
    emu: Arc<Emulator>,
    job: Option<JobRun>,
}

impl EmulatorTransport {
    fn target(&self) -> String {
        format!(
            "emulator {} ({})",
            self.emu.model().name,
            self.emu.out_dir().display()
        )
    }

    fn map(&self, rejection: Rejection) -> TransportError {
        let target = self.target();
        match rejection {
            Rejection::Printer { problem, detail } => TransportError::Printer {
                target,
                problem,
                detail,
            },
            Rejection::Stream(reason) => TransportError::Rejected { target, reason },
            Rejection::Dropped { after } => TransportError::ConnectionDropped {
                target,
                detail: format!("the printer dropped the connection after {after} bytes"),
            },
            Rejection::Io(detail) => TransportError::Io { target, detail },
        }
    }
}

impl Transport for EmulatorTransport {
    fn describe(&self) -> String {
        self.target()
    }

    fn status(&mut self) -> Result<Status, TransportError> {
        self.emu.status().ok_or_else(|| TransportError::Offline {
            target: self.target(),
            detail: "the emulated printer is turned off (fault `offline`)".into(),
        })
    }

    fn begin(&mut self, _size_hint: usize) -> Result<(), TransportError> {
        self.abort();
        match self.emu.start_job() {
            Ok(run) => {
                self.job = Some(run);
                Ok(())
            }
            Err(StartError::Offline) => Err(TransportError::Offline {
                target: self.target(),
                detail: "the emulated printer is turned off (fault `offline`)".into(),
            }),
            Err(StartError::Problem(problem)) => Err(TransportError::Printer {
                target: self.target(),
                problem,
                detail: "the job was refused".into(),
            }),
            Err(StartError::Busy) => Err(TransportError::Busy {
                target: self.target(),
                hint: format!(
                    "another job has been printing for more than {} s",
                    BUSY_WAIT.as_secs()
                ),
            }),
            Err(StartError::Io(detail)) => Err(TransportError::Io {
                target: self.target(),
                detail,
            }),
        }
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), TransportError> {
        let Some(job) = self.job.as_mut() else {
            return Err(TransportError::NotStarted {
                target: self.target(),
            });
        };
        match job.feed(chunk) {
            Ok(()) => Ok(()),
            Err(rejection) => {
                if let Some(job) = self.job.take() {
                    job.end_failed(&rejection);
                }
                Err(self.map(rejection))
            }
        }
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        let Some(job) = self.job.take() else {
            return Err(TransportError::NotStarted {
                target: self.target(),
            });
        };
        job.finish().map_err(|r| self.map(r))
    }

    fn abort(&mut self) {
        if let Some(job) = self.job.take() {
            job.abort();
        }
    }
}
