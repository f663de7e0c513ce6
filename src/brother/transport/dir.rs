//! A directory sink: every job becomes one file `<seq:06>.bin` holding the
//! exact byte stream.
//!
//! **Invariant:** a `.bin` file appears complete or not at all. The job is
//! written to a hidden `.job-*.part` file, synced, and hard-linked to the
//! next free sequence number (`link` fails instead of overwriting, so two
//! hubs sharing a directory cannot clobber each other), then the part file
//! is removed. An aborted job leaves nothing behind.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;

use super::{Transport, TransportError};
use crate::brother::media;
use crate::brother::model::Model;
use crate::brother::seq::max_seq;
use crate::brother::status::Status;

pub(crate) struct DirTransport {
    dir: PathBuf,
    media: Option<String>,
    model: &'static Model,
    job: Option<(File, PathBuf)>,
}

impl DirTransport {
    pub(crate) fn new(dir: PathBuf, media: Option<String>, model: &'static Model) -> DirTransport {
        DirTransport {
            dir,
            media,
            model,
            job: None,
        }
    }

    fn target(&self) -> String {
        format!("dir://{}", self.dir.display())
    }

    fn io_err(&self, what: &'static str, e: &io::Error) -> TransportError {
        if e.kind() == io::ErrorKind::PermissionDenied {
            return TransportError::PermissionDenied {
                target: self.target(),
                hint: format!(
                    "{what}: the hub's user may not write to {}; fix the directory's owner or mode",
                    self.dir.display()
                ),
            };
        }
        TransportError::Io {
            target: self.target(),
            detail: format!("{what}: {e}"),
        }
    }

    fn discard(&mut self) {
        if let Some((file, part)) = self.job.take() {
            drop(file);
            let _ = fs::remove_file(part);
        }
    }
}

impl Transport for DirTransport {
    fn describe(&self) -> String {
        self.target()
    }

    fn status(&mut self) -> Result<Status, TransportError> {
        let Some(id) = &self.media else {
            return Err(TransportError::StatusUnavailable {
                target: self.target(),
                detail: "a directory sink has no printer; add `?media=ID` to the URI to have it \
                         report that medium as loaded"
                    .into(),
            });
        };
        let g = media::geometry(self.model, id).map_err(|e| TransportError::InvalidUri {
            uri: self.target(),
            reason: e.to_string(),
        })?;
        Ok(Status::for_media(self.model, Some(&g)))
    }

    fn begin(&mut self, _size_hint: usize) -> Result<(), TransportError> {
        self.discard();
        fs::create_dir_all(&self.dir).map_err(|e| self.io_err("creating the directory", &e))?;
        let part = self
            .dir
            .join(format!(".job-{}.part", uuid::Uuid::new_v4().simple()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| self.io_err("creating the job file", &e))?;
        self.job = Some((file, part));
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), TransportError> {
        let Some((file, _)) = self.job.as_mut() else {
            return Err(TransportError::NotStarted {
                target: self.target(),
            });
        };
        if let Err(e) = file.write_all(chunk) {
            let err = self.io_err("writing the job file", &e);
            self.discard();
            return Err(err);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        let Some((file, part)) = self.job.take() else {
            return Err(TransportError::NotStarted {
                target: self.target(),
            });
        };
        let res = (|| {
            file.sync_all()
                .map_err(|e| self.io_err("syncing the job file", &e))?;
            drop(file);
            let mut seq = max_seq(&self.dir, "", ".bin") + 1;
            loop {
                let dest = self.dir.join(format!("{seq:06}.bin"));
                match fs::hard_link(&part, &dest) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => seq += 1,
                    Err(e) => return Err(self.io_err("naming the job file", &e)),
                }
            }
        })();
        let _ = fs::remove_file(&part);
        res
    }

    fn abort(&mut self) {
        self.discard();
    }
}
