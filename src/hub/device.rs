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
    pub problem: Option<DeviceProblem>,
    /// The loaded medium id ("12", "62", "29x90"), when the printer reports it.
    pub media: Option<String>,
    /// The parsed status for display (`GET /api/printers/{id}/status`).
    pub details: Value,
}

/// A condition that stops a printer until it is fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProblem {
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
    /// Starts a stream of pages on `media`; `size_hint` is about how many
    /// bytes will follow (transports size their timeouts with it).
    fn begin(
        &mut self,
        media: &str,
        opts: StreamOptions,
        size_hint: usize,
    ) -> Result<(), DeviceError>;
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
    /// The connection URI, with the SNMP community (a secret: never log it).
    pub uri: String,
    pub data_dir: PathBuf,
    /// Where connections may point ([`Config::reach`](super::Config::reach)),
    /// checked again at every open.
    pub reach: transport::Reach,
}

/// Opens devices and validates connection URIs.
pub trait Devices: Send + Sync {
    fn open(&self, spec: &DeviceSpec) -> Result<Box<dyn Device>, DeviceError>;
    /// Checks a URI without opening it (admin API validation).
    fn validate_uri(&self, uri: &str) -> Result<(), DeviceError>;
}

/// The production devices: `brother::transport` for the bytes,
/// `brother::encode::JobEncoder` for the raster stream.
pub struct BrotherDevices;

impl Devices for BrotherDevices {
    fn open(&self, spec: &DeviceSpec) -> Result<Box<dyn Device>, DeviceError> {
        let ctx = transport::OpenCtx {
            data_dir: spec.data_dir.clone(),
            printer_key: spec.printer_key.clone(),
        };
        let endpoint = transport::parse_uri(&spec.uri).map_err(transport_error)?;
        transport::check_reach(&spec.uri, &endpoint, &spec.reach).map_err(transport_error)?;
        let t = transport::open(&spec.uri, spec.model, &ctx).map_err(transport_error)?;
        Ok(Box::new(BrotherDevice {
            transport: t,
            model: spec.model,
            encoder: None,
        }))
    }

    fn validate_uri(&self, uri: &str) -> Result<(), DeviceError> {
        transport::parse_uri(uri)
            .map(|_| ())
            .map_err(transport_error)
    }
}

use crate::brother::{encode, transport};

/// Job-level failures (the stream itself was refused); everything else is
/// the printer's condition and pauses it.
fn transport_error(e: transport::TransportError) -> DeviceError {
    let printer_problem = !matches!(
        e,
        transport::TransportError::Rejected { .. } | transport::TransportError::InvalidUri { .. }
    );
    DeviceError {
        code: e.code().to_string(),
        message: e.to_string(),
        printer_problem,
    }
}

fn encode_error(e: encode::EncodeError) -> DeviceError {
    DeviceError {
        code: e.code().to_string(),
        message: e.to_string(),
        printer_problem: false,
    }
}

struct BrotherDevice {
    transport: Box<dyn transport::Transport>,
    model: &'static crate::brother::model::Model,
    encoder: Option<encode::JobEncoder>,
}

impl Device for BrotherDevice {
    fn describe(&self) -> String {
        self.transport.describe()
    }

    fn status(&mut self) -> Result<DeviceStatus, DeviceError> {
        match self.transport.status() {
            Ok(st) => Ok(DeviceStatus {
                problem: st.problem().map(|p| DeviceProblem {
                    code: p.code().to_string(),
                    message: p.to_string(),
                }),
                media: st.loaded_media_id(self.model.family),
                details: serde_json::to_value(&st).unwrap_or(Value::Null),
            }),
            // The printer cannot report a status (TCP without SNMP, a
            // directory): go by the configured medium.
            Err(transport::TransportError::StatusUnavailable { detail, .. }) => Ok(DeviceStatus {
                problem: None,
                media: None,
                details: serde_json::json!({"status": "unavailable", "detail": detail}),
            }),
            Err(e) => Err(transport_error(e)),
        }
    }

    fn begin(
        &mut self,
        media: &str,
        opts: StreamOptions,
        size_hint: usize,
    ) -> Result<(), DeviceError> {
        let options = encode::Options {
            auto_cut: opts.auto_cut,
            half_cut: opts.half_cut && self.model.half_cut,
            // High resolution is a quality wish: where the model or the
            // medium has none (the encoder refuses it on heat-shrink tube)
            // the label prints at normal resolution.
            high_res: opts.high_res
                && self.model.high_res_dpi.is_some()
                && crate::brother::media::by_id(self.model.family, media)
                    .is_none_or(|m| m.kind != crate::brother::media::MediaKind::HeatShrink),
            ..encode::Options::default()
        };
        let encoder = encode::JobEncoder::new(self.model, media, options).map_err(encode_error)?;
        self.transport.begin(size_hint).map_err(transport_error)?;
        if let Err(e) = self.transport.write(&encoder.header()) {
            self.transport.abort();
            return Err(transport_error(e));
        }
        self.encoder = Some(encoder);
        Ok(())
    }

    fn page(&mut self, page: &RenderedPage, last: bool) -> Result<(), DeviceError> {
        let Some(encoder) = self.encoder.as_mut() else {
            return Err(DeviceError {
                code: "job_not_started".into(),
                message: "page before begin".into(),
                printer_problem: false,
            });
        };
        let bytes = encoder.page(page, last).map_err(encode_error)?;
        self.transport.write(&bytes).map_err(transport_error)
    }

    fn finish(&mut self) -> Result<(), DeviceError> {
        self.encoder = None;
        self.transport.finish().map_err(transport_error)
    }

    fn abort(&mut self) {
        self.encoder = None;
        self.transport.abort();
    }
}
