//! `labelhub serve` (being built).

use super::CliError;

pub fn run(_args: lexopt::Parser) -> Result<(), CliError> {
    Err(CliError::Failed("`serve` is not built yet".into()))
}
