//! The `labelhub` binary: parses the subcommand and dispatches to
//! `labelhub::cli`. Errors become one line on stderr (plus a hint for usage
//! errors) and a non-zero exit: 2 for bad usage, 1 when the command failed.

use std::process::ExitCode;

use labelhub::cli::{self, CliError};

const USAGE: &str = "\
labelhub: print hub for Brother PT and QL label printers

USAGE:
    labelhub serve [-o LOG]             run the hub (configured by PRINTER_HUB_* variables)
    labelhub discover [OPTIONS]         find USB printers and, with --cidr, network printers
    labelhub backup -o FILE             consistent copy of the database, also while the hub runs
    labelhub restore FILE               put a backup in place (the hub must be stopped)
    labelhub models [-o FILE]           the supported printer models
    labelhub media --model M [-o FILE]  the media a model prints on
    labelhub emulate [OPTIONS] -o DIR   run a software Brother printer on TCP 9100 + SNMP
    labelhub raster [OPTIONS] IN.png... -o OUT.bin
                                        encode PNG pages into a raster stream
    labelhub decode IN.bin -o DIR       decode a raster stream into PNG pages and JSON
    labelhub render [OPTIONS] -o label.png
                                        render one label to PNG
    labelhub help                       this text
    labelhub --version                  version, git revision and build date

Every command writes its result where -o/--output says (stdout when a listing
has no -o). Run `labelhub <command> --help` for the options of a command.";

fn main() -> ExitCode {
    let mut args = lexopt::Parser::from_env();
    let cmd = match args.next() {
        Ok(Some(lexopt::Arg::Value(cmd))) => cmd.to_string_lossy().into_owned(),
        Ok(Some(lexopt::Arg::Long("help") | lexopt::Arg::Short('h'))) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Some(lexopt::Arg::Long("version") | lexopt::Arg::Short('V'))) => {
            println!("{}", labelhub::build_info::version_line());
            return ExitCode::SUCCESS;
        }
        Ok(None) => {
            // No command: the help, on stderr, and the usage exit code.
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        Ok(Some(other)) => {
            return fail(None, CliError::Usage(other.unexpected().to_string()));
        }
        Err(e) => return fail(None, e.into()),
    };
    let res = match cmd.as_str() {
        "serve" => cli::serve::run(args),
        "discover" => cli::discover::run(args),
        "backup" => cli::backup::run_backup(args),
        "restore" => cli::backup::run_restore(args),
        "models" => cli::catalog::run_models(args),
        "media" => cli::catalog::run_media(args),
        "emulate" => cli::emulate::run(args),
        "raster" => cli::raster::run(args),
        "decode" => cli::raster::run_decode(args),
        "render" => cli::render::run(args),
        "version" => {
            println!("{}", labelhub::build_info::version_line());
            Ok(())
        }
        "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => return fail(None, CliError::Usage(format!("unknown command `{other}`"))),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(Some(&cmd), e),
    }
}

/// One line for the error; a usage error gets a second line saying where
/// the full help is.
fn fail(cmd: Option<&str>, err: CliError) -> ExitCode {
    match (&err, cmd) {
        (CliError::Usage(msg), Some(cmd)) => {
            eprintln!("labelhub {cmd}: {}", first_line(msg));
            eprintln!("hint: run `labelhub {cmd} --help` for the options");
        }
        (CliError::Usage(msg), None) => {
            eprintln!("labelhub: {}", first_line(msg));
            eprintln!("hint: run `labelhub help` for the commands");
        }
        (CliError::Failed(msg), Some(cmd)) => eprintln!("labelhub {cmd}: {msg}"),
        (CliError::Failed(msg), None) => eprintln!("labelhub: {msg}"),
    }
    match err {
        CliError::Usage(_) => ExitCode::from(2),
        CliError::Failed(_) => ExitCode::FAILURE,
    }
}

/// A usage message is one line; a configuration error lists each bad
/// variable on its own line, which is kept.
fn first_line(msg: &str) -> &str {
    if msg.starts_with("bad configuration") {
        return msg;
    }
    msg.lines().next().unwrap_or(msg)
}
