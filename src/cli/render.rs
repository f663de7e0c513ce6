//! `labelhub render` (being built).

use super::CliError;

pub fn run(_args: lexopt::Parser) -> Result<(), CliError> {
    Err(CliError::Failed("`render` is not built yet".into()))
}
