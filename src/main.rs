//! The `labelhub` binary: parses the subcommand and dispatches to
//! `labelhub::cli`. Errors become a message on stderr and a non-zero exit.

use std::process::ExitCode;

use labelhub::cli::{self, CliError};

const USAGE: &str = "\
labelhub: print hub for Brother PT and QL label printers

USAGE:
    labelhub serve                      run the hub (configured by PRINTER_HUB_* variables)
    labelhub emulate [OPTIONS]          run a software Brother printer on TCP 9100 + SNMP
    labelhub raster [OPTIONS] IN.png... -o OUT.bin
                                        encode PNG pages into a raster stream
    labelhub decode IN.bin --out DIR    decode a raster stream into PNG pages and JSON
    labelhub render [OPTIONS] -o label.png
                                        render one label to PNG
    labelhub help                       this text

Run `labelhub <command> --help` for the options of a command.";

fn main() -> ExitCode {
    let mut args = lexopt::Parser::from_env();
    let cmd = match args.next() {
        Ok(Some(lexopt::Arg::Value(cmd))) => cmd.to_string_lossy().into_owned(),
        Ok(Some(lexopt::Arg::Long("help")) | Some(lexopt::Arg::Short('h')) | None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Some(other)) => {
            return fail(CliError::Usage(format!("unexpected {other:?}\n\n{USAGE}")))
        }
        Err(e) => return fail(e.into()),
    };
    let res = match cmd.as_str() {
        "serve" => cli::serve::run(args),
        "emulate" => cli::emulate::run(args),
        "raster" => cli::raster::run(args),
        "decode" => cli::raster::run_decode(args),
        "render" => cli::render::run(args),
        "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(CliError::Usage(format!(
            "unknown command `{other}`\n\n{USAGE}"
        ))),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(err: CliError) -> ExitCode {
    eprintln!("labelhub: {err}");
    match err {
        CliError::Usage(_) => ExitCode::from(2),
        CliError::Failed(_) => ExitCode::FAILURE,
    }
}
