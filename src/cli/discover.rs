//! `labelhub discover`: USB printers from sysfs and, with `--cidr`,
//! network printers by SNMP. Prints a table (or JSON) of what it found;
//! each supported printer's `add` body is what `POST
//! /api/v1/admin/printers` takes to add it in one call.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;
use serde_json::json;

use super::CliError;
use crate::discover::{net, usb, Found};

const USAGE: &str = "\
labelhub discover [OPTIONS]: find printers

Lists Brother USB printers (from sysfs), Brother devices stuck in mass-storage
mode (P-Lite / Editor Lite) with the fix, and with --cidr the network printers
that answer SNMP. Every supported printer comes with the JSON body that adds
it (POST /api/v1/admin/printers); --json prints those bodies.

OPTIONS:
    --cidr NET          sweep this IPv4 range by SNMP, e.g. 192.168.1.0/24 (at most a /20)
    --community C       SNMP community (default public)
    --snmp-port P       SNMP port (default 161)
    --raw-port P        raw print port for the suggested URI (default 9100)
    --rate N            SNMP requests per second (default 100, at most 1000)
    --timeout-ms N      wait per address (default 1000)
    --deadline-s N      bound on the whole sweep (default 20, at most 60)
    --no-usb            skip the USB scan
    --sysfs-root DIR    read sys/ and dev/ under DIR (default: PRINTER_HUB_SYSFS_ROOT, else /)
    --json              JSON instead of a table
    -o, --output FILE   write there instead of stdout";

fn num<T: std::str::FromStr>(args: &mut lexopt::Parser, what: &str) -> Result<T, CliError> {
    let v = args.value()?.string()?;
    v.parse()
        .map_err(|_| CliError::Usage(format!("{what} `{v}` is not a whole number")))
}

/// `labelhub discover`.
pub fn run(mut args: lexopt::Parser) -> Result<(), CliError> {
    let mut cidr = None;
    let mut community = None;
    let (mut snmp_port, mut raw_port, mut rate) = (None, None, None);
    let (mut timeout_ms, mut deadline_s) = (None::<u64>, None::<u64>);
    let (mut no_usb, mut json_out, mut output) = (false, false, None);
    let mut root = std::env::var_os("PRINTER_HUB_SYSFS_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    while let Some(arg) = args.next()? {
        match arg {
            Long("cidr") => cidr = Some(args.value()?.string()?),
            Long("community") => community = Some(args.value()?.string()?),
            Long("snmp-port") => snmp_port = Some(num::<u16>(&mut args, "--snmp-port")?),
            Long("raw-port") => raw_port = Some(num::<u16>(&mut args, "--raw-port")?),
            Long("rate") => rate = Some(num::<u32>(&mut args, "--rate")?),
            Long("timeout-ms") => timeout_ms = Some(num(&mut args, "--timeout-ms")?),
            Long("deadline-s") => deadline_s = Some(num(&mut args, "--deadline-s")?),
            Long("no-usb") => no_usb = true,
            Long("sysfs-root") => root = PathBuf::from(args.value()?),
            Long("json") => json_out = true,
            Short('o') | Long("output") => output = Some(PathBuf::from(args.value()?)),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(CliError::Usage(other.unexpected().to_string())),
        }
    }
    let mut found: Vec<Found> = if no_usb { Vec::new() } else { usb::scan(&root) };
    let mut sweep = None;
    if let Some(cidr) = &cidr {
        let mut o = net::ScanOptions::new(cidr).map_err(CliError::Usage)?;
        if let Some(c) = community {
            o.community = c;
        }
        o.snmp_port = snmp_port.unwrap_or(o.snmp_port);
        o.raw_port = raw_port.unwrap_or(o.raw_port);
        o.rate = rate.unwrap_or(o.rate);
        if let Some(ms) = timeout_ms {
            o.timeout = Duration::from_millis(ms);
        }
        if let Some(s) = deadline_s {
            o.deadline = Duration::from_secs(s);
        }
        o.check().map_err(CliError::Usage)?;
        let report = net::scan(&o).map_err(CliError::Failed)?;
        found.extend(report.found.iter().cloned());
        sweep = Some(report);
    } else if snmp_port.is_some() || rate.is_some() || timeout_ms.is_some() || deadline_s.is_some()
    {
        return Err(CliError::Usage("the SNMP options need --cidr NET".into()));
    }
    let text = if json_out {
        let mut doc = json!({ "found": found });
        if let Some(r) = &sweep {
            doc["network"] = json!({
                "cidr": r.cidr, "probed": r.probed, "answered": r.answered,
                "requests_sent": r.requests_sent, "elapsed_ms": r.elapsed_ms,
            });
        }
        format!("{doc:#}\n")
    } else {
        table(&found, sweep.as_ref(), no_usb)
    };
    super::write_output(output.as_deref(), &text)
}

fn table(found: &[Found], sweep: Option<&net::ScanReport>, no_usb: bool) -> String {
    let mut t = String::new();
    if found.is_empty() {
        t.push_str("no printers found");
        if no_usb && sweep.is_none() {
            t.push_str(" (nothing was scanned)");
        }
        t.push('\n');
    } else {
        let _ = writeln!(
            t,
            "{:<17} {:<11} {:<14} {:<40} STATUS",
            "KIND", "MODEL", "SERIAL", "URI / ADDRESS"
        );
    }
    for f in found {
        let status = match (&f.problem, f.supported) {
            (Some(p), _) => p.clone(),
            (None, true) => "ready to add".to_string(),
            (None, false) => "not supported".to_string(),
        };
        let _ = writeln!(
            t,
            "{:<17} {:<11} {:<14} {:<40} {}",
            f.kind,
            f.model.as_deref().unwrap_or("-"),
            f.serial.as_deref().unwrap_or("-"),
            f.uri.as_deref().unwrap_or(&f.address),
            status
        );
        if let Some(fix) = &f.fix {
            let _ = writeln!(t, "    fix: {fix}");
        }
        if let Some(add) = &f.add {
            let _ = writeln!(t, "    add: POST /api/v1/admin/printers {add}");
        }
    }
    if let Some(r) = sweep {
        let _ = writeln!(
            t,
            "SNMP sweep of {}: {} addresses, {} answered, {} requests in {} ms",
            r.cidr, r.probed, r.answered, r.requests_sent, r.elapsed_ms
        );
    }
    t
}
