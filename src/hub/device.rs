//! The printer seam: what a printer thread needs from a printer. A
//! [`Device`] reports live status and prints a stream of pages; [`Devices`]
//! opens one from a printer row. The production implementation sits on
//! `brother::transport` and `brother::encode`; unit tests use a fake.

use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use super::labels::RenderedPage;

/// A printer's live status, reduced to what the hub decides on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceStatus {
    /// The first blocking problem (cover open, no media, ...), if any.
    pub problem: Option<Problem>,
    /// The loaded medium id ("12", "62", "29x90"), when the printer reports it.
    pub media: Option<String>,
    /// The parsed status for display (`GET /api/printers/{id}/status`).
    pub details: Value,
}

/// A condition that stops a printer until it is fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Stable code: `cover_open`, `no_media`, `printer_offline`, ...
    pub code: String,
    pub message: String,
}

/// A failure talking to a printer or encoding for it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceError {
    pub code: String,
    pub message: String,
    /// `true` when the printer itself is the problem (offline, dropped
    /// connection): the printer is paused so its other jobs wait instead of
    /// failing one after another. `false` when only this job is at fault.
    pub printer_problem: bool,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Options of one print stream (one or more pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    pub auto_cut: bool,
    pub half_cut: bool,
    pub high_res: bool,
}

/// One printer, opened.
pub trait Device: Send {
    fn describe(&self) -> String;
    /// Live status (a status request to the printer).
    fn status(&mut self) -> Result<DeviceStatus, DeviceError>;
    /// Starts a stream of pages on `media`.
    fn begin(&mut self, media: &str, opts: StreamOptions) -> Result<(), DeviceError>;
    /// Sends one page; returns when the printer has taken it. `last` ends
    /// the stream's page sequence (feed and final cut).
    fn page(&mut self, page: &RenderedPage, last: bool) -> Result<(), DeviceError>;
    /// Flushes and closes the stream.
    fn finish(&mut self) -> Result<(), DeviceError>;
    /// Closes the stream without finishing it.
    fn abort(&mut self);
}

/// What a printer thread needs to open its device.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub printer_key: String,
    pub model: &'static crate::brother::model::Model,
    pub uri: String,
    pub data_dir: PathBuf,
}

/// Opens devices and validates connection URIs.
pub trait Devices: Send + Sync {
    fn open(&self, spec: &DeviceSpec) -> Result<Box<dyn Device>, DeviceError>;
    /// Checks a URI without opening it (admin API validation).
    fn validate_uri(&self, uri: &str) -> Result<(), DeviceError>;
}
