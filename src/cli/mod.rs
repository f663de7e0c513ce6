//! Subcommands of the `labelhub` binary. Each submodule parses its own
//! arguments with `lexopt` and calls into the library; none holds logic of
//! its own beyond reading files and printing results.
//!
//! Conventions every subcommand keeps: `-o/--output` names where the result
//! goes (a file or directory; listings default to stdout, `-` = stdout);
//! `-h/--help` prints the command's help on stdout and exits 0; a usage
//! error is one line, printed by `main` with a hint to `--help`.

pub mod backup;
pub mod catalog;
pub mod discover;
pub mod emulate;
pub mod raster;
pub mod render;
pub mod serve;
pub mod spool;
pub mod watchdog;

use std::io::Write;
use std::path::{Path, PathBuf};

/// An error that ends a subcommand: printed by `main` and mapped to exit
/// code 2 (bad usage) or 1 (the command failed).
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong; the message (one line) says how.
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

/// Every `PRINTER_HUB_*` variable `serve` reads, `(name, default,
/// meaning)`: the tables of the hub, auth and the integrations, which each
/// read only their own. Assembled here, at the top, so no layer needs to
/// know another's variables.
pub fn variables() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    crate::hub::config::VARIABLES
        .iter()
        .chain(crate::auth::config::VARIABLES)
        .chain(crate::integrations::config::VARIABLES)
}

/// Logs a warning for every `PRINTER_HUB_*` variable of the environment
/// that no table knows (a typo would otherwise be ignored in silence).
pub fn warn_unknown_variables() {
    for name in crate::hub::config::env_vars().keys() {
        if !variables().any(|(known, _, _)| known == name) {
            log::warn!("ignoring unknown variable {name}");
        }
    }
}

/// Writes a listing's text to `-o FILE` (atomically: a temporary file
/// renamed over it) or to stdout when there is no `-o` or it is `-`.
pub fn write_output(output: Option<&Path>, text: &str) -> Result<(), CliError> {
    match output {
        None => print_stdout(text),
        Some(p) if p == Path::new("-") => print_stdout(text),
        Some(path) => write_file_atomic(path, text.as_bytes())
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display()))),
    }
}

fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Failed(format!("cannot write to stdout: {e}")))
}

/// Writes `bytes` to `path.part`, syncs it and renames it over `path`.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let part = part_path(path);
    let res = (|| {
        let mut f = std::fs::File::create(&part)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&part, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    res
}

/// `FILE` -> `FILE.part` (same directory, so a rename is atomic).
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_variable_is_documented_once() {
        let mut names: Vec<&str> = super::variables().map(|v| v.0).collect();
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all);
    }
}
