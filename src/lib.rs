//! labelhub: a self-hosted print hub for Brother PT and QL label printers.
//!
//! The crate is one library plus the `labelhub` binary (`src/main.rs`), which
//! only parses the command line and dispatches to `cli`. See ARCHITECTURE.md
//! for the codemap and the invariants of each module.

pub mod api;
pub mod auth;
pub mod base64;
pub mod bitmap;
pub mod brother;
pub mod build_info;
pub mod cli;
pub mod discover;
pub mod http;
pub mod hub;
pub mod integrations;
pub mod metrics;
pub mod render;
