//! Subcommands of the `labelhub` binary. Each submodule parses its own
//! arguments with `lexopt` and calls into the library; none holds logic of
//! its own beyond reading files and printing results.

pub mod emulate;
pub mod raster;
pub mod render;
pub mod serve;

/// An error that ends a subcommand: printed by `main` and mapped to exit
/// code 2 (bad usage) or 1 (the command failed).
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong; the message says how.
    Usage(String),
    /// The command ran and failed.
    Failed(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(msg) => write!(f, "usage: {msg}"),
            CliError::Failed(msg) => f.write_str(msg),
        }
    }
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> CliError {
        CliError::Usage(e.to_string())
    }
}
