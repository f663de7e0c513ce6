//! `labelhub raster` (being built).

use super::CliError;

pub fn run(_args: lexopt::Parser) -> Result<(), CliError> {
    Err(CliError::Failed("`raster` is not built yet".into()))
}

pub fn run_decode(_args: lexopt::Parser) -> Result<(), CliError> {
    Err(CliError::Failed("`decode` is not built yet".into()))
}
