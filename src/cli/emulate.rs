//! `labelhub emulate`: a Brother printer in software on the network (raw
//! TCP and SNMP on UDP at the same address) until SIGINT/SIGTERM.
//!
//! The first line on stderr names the bound address
//! (`labelhub emulate: listening on 127.0.0.1:9100 ...`), so a caller that
//! asked for port 0 can read the port from it.

use std::net::SocketAddr;
use std::path::PathBuf;

use lexopt::prelude::*;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::CliError;
use crate::brother::emulator::{self, Emulator, EmulatorConfig, Fault, Speed};
use crate::brother::media;
use crate::brother::model;

const USAGE: &str = "\
labelhub emulate --model M -o DIR [OPTIONS]

Runs a software Brother printer: raw TCP (like port 9100) and SNMP v1/v2c on
UDP at the same address. Every printed page is written to DIR as NNNNNN.png
(label orientation), every job's stream as job-NNNNNN.bin, and a line per page
and job to DIR/events.jsonl. Faults can also be set while it runs by writing
DIR/fault (same syntax as --fault; empty = none).

OPTIONS:
    --model M           printer model, e.g. PT-P750W, QL-820NWB
    --media W           loaded medium (default: 12 mm tape / 62 mm roll)
    --listen ADDR       address to serve (default 127.0.0.1:9100; port 0 = any)
    -o, --output DIR    output directory (created if missing; --out also works)
    --speed S           instant (default), real (the model's mm/s) or a number of mm/s
    --fault F           cover_open, no_media, media=<id>, offline, drop, drop=<bytes>
    --community C       SNMP community (default public)";

/// `labelhub emulate`.
pub fn run(mut args: lexopt::Parser) -> Result<(), CliError> {
    let mut model_name = None;
    let mut media_id = None;
    let mut listen = String::from("127.0.0.1:9100");
    let mut out = None;
    let mut speed = Speed::Instant;
    let mut fault = None;
    let mut community = String::from("public");
    let usage = CliError::Usage;
    while let Some(arg) = args.next()? {
        match arg {
            Long("model") => model_name = Some(args.value()?.string()?),
            Long("media") => media_id = Some(args.value()?.string()?),
            Long("listen") => listen = args.value()?.string()?,
            Short('o') | Long("output") | Long("out") => out = Some(PathBuf::from(args.value()?)),
            Long("speed") => speed = Speed::parse(&args.value()?.string()?).map_err(usage)?,
            Long("fault") => fault = Fault::parse(&args.value()?.string()?).map_err(usage)?,
            Long("community") => community = args.value()?.string()?,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(usage(arg.unexpected().to_string())),
        }
    }
    let model_name = model_name.ok_or_else(|| usage("--model is required".into()))?;
    let model = model::by_name(&model_name).ok_or_else(|| {
        let known: Vec<&str> = model::all().iter().map(|m| m.name).collect();
        usage(format!(
            "unknown model `{model_name}` (known: {})",
            known.join(", ")
        ))
    })?;
    let out = out.ok_or_else(|| usage("-o/--output DIR is required".into()))?;
    let listen: SocketAddr = listen.parse().map_err(|_| {
        usage(format!(
            "--listen `{listen}` is not an address like 127.0.0.1:9100"
        ))
    })?;
    let media_id = media_id.unwrap_or_else(|| emulator::default_media(model).to_string());
    let geometry = media::geometry(model, &media_id).map_err(|e| usage(e.to_string()))?;

    let _ = simplelog::TermLogger::init(
        log::LevelFilter::Info,
        simplelog::Config::default(),
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
    let emu = Emulator::new(EmulatorConfig {
        model,
        media_id: geometry.media.id.to_string(),
        out_dir: out.clone(),
        speed,
        fault: fault.clone(),
    })
    .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).map_err(|e| CliError::Failed(format!("signals: {e}")))?;
    let server = emu
        .serve(listen, &community)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    eprintln!(
        "labelhub emulate: listening on {} (raw TCP + SNMP/UDP): {} with {}, speed {speed}, \
         fault {}, output in {}",
        server.addr(),
        model.name,
        geometry.media.describe(),
        fault.map_or_else(|| "none".to_string(), |f| f.to_string()),
        out.display()
    );
    if let Some(sig) = signals.forever().next() {
        eprintln!("labelhub emulate: signal {sig}, stopping");
    }
    server.shutdown();
    Ok(())
}
