//! Brother PT/QL drivers: model and media tables, raster encoder and strict
//! decoder, status blocks, SNMP, transports and the printer emulator.
//!
//! **Architecture invariant:** nothing in `brother` knows about HTTP, JSON
//! requests or the database. It is usable on its own (the `raster`, `decode`
//! and `emulate` subcommands are thin wrappers around it).

pub mod decode;
pub mod emulator;
pub mod encode;
pub mod lines;
pub mod media;
pub mod model;
pub mod packbits;
pub mod seq;
pub mod snmp;
pub mod status;
pub mod transport;

use std::fmt;

/// The error type of the `brother` layer: one variant per part, each carrying
/// that part's own typed error.
#[derive(Debug)]
pub enum Error {
    /// The page or options do not fit the model and medium.
    Encode(encode::EncodeError),
    /// A raster stream is malformed (names the byte offset).
    Decode(decode::DecodeError),
    /// A status reply is missing, truncated or garbage.
    Status(status::StatusError),
    /// Talking to the printer failed.
    Transport(transport::TransportError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Encode(e) => write!(f, "{e}"),
            Error::Decode(e) => write!(f, "{e}"),
            Error::Status(e) => write!(f, "{e}"),
            Error::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<encode::EncodeError> for Error {
    fn from(e: encode::EncodeError) -> Error {
        Error::Encode(e)
    }
}
impl From<decode::DecodeError> for Error {
    fn from(e: decode::DecodeError) -> Error {
        Error::Decode(e)
    }
}
impl From<status::StatusError> for Error {
    fn from(e: status::StatusError) -> Error {
        Error::Status(e)
    }
}
impl From<transport::TransportError> for Error {
    fn from(e: transport::TransportError) -> Error {
        Error::Transport(e)
    }
}
