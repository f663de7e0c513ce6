//! `labelhub emulate` (being built).

use super::CliError;

pub fn run(_args: lexopt::Parser) -> Result<(), CliError> {
    Err(CliError::Failed("`emulate` is not built yet".into()))
}
