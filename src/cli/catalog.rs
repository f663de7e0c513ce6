//! `labelhub models` and `labelhub media --model M`: what this build
//! supports, from the one model table and the one media table.

use std::fmt::Write as _;
use std::path::PathBuf;

use lexopt::prelude::*;
use serde_json::{json, Value};

use super::CliError;
use crate::brother::media::{self, MediaKind};
use crate::brother::model::{self, Model};

const MODELS_USAGE: &str = "\
labelhub models [--json] [-o FILE]: the supported printer models

OPTIONS:
    --json              JSON instead of a table
    -o, --output FILE   write there instead of stdout";

const MEDIA_USAGE: &str = "\
labelhub media --model M [--json] [-o FILE]: the media a model prints on

OPTIONS:
    --model M           printer model, e.g. PT-P750W, QL-820NWB (required)
    --json              JSON instead of a table
    -o, --output FILE   write there instead of stdout";

struct Opts {
    json: bool,
    output: Option<PathBuf>,
    model: Option<String>,
}

fn parse(
    mut args: lexopt::Parser,
    usage: &str,
    takes_model: bool,
) -> Result<Option<Opts>, CliError> {
    let mut opts = Opts {
        json: false,
        output: None,
        model: None,
    };
    while let Some(arg) = args.next()? {
        match arg {
            Long("json") => opts.json = true,
            Short('o') | Long("output") => opts.output = Some(PathBuf::from(args.value()?)),
            Long("model") if takes_model => opts.model = Some(args.value()?.string()?),
            Short('h') | Long("help") => {
                println!("{usage}");
                return Ok(None);
            }
            other => return Err(CliError::Usage(other.unexpected().to_string())),
        }
    }
    Ok(Some(opts))
}

/// The model by name, or a usage error listing the known names.
pub fn model_arg(name: &str) -> Result<&'static Model, CliError> {
    model::by_name(name).ok_or_else(|| {
        let known: Vec<&str> = model::all().iter().map(|m| m.name).collect();
        CliError::Usage(format!(
            "unknown model `{name}` (known: {})",
            known.join(", ")
        ))
    })
}

fn model_json(m: &Model) -> Value {
    json!({
        "model": m.name,
        "family": m.family.as_str(),
        "dpi": m.dpi,
        "high_res_dpi": m.high_res_dpi,
        "head_pins": m.pins,
        "cutter": m.cutter,
        "half_cut": m.half_cut,
        "two_colour": m.two_colour,
        "usb_product_id": m.usb_product_id.map(|p| format!("{p:04x}")),
        "media": media::for_model(m).count(),
    })
}

/// `labelhub models`.
pub fn run_models(args: lexopt::Parser) -> Result<(), CliError> {
    let Some(opts) = parse(args, MODELS_USAGE, false)? else {
        return Ok(());
    };
    let text = if opts.json {
        let list: Vec<Value> = model::all().iter().map(model_json).collect();
        format!("{:#}\n", Value::Array(list))
    } else {
        let mut t = format!(
            "{:<12} {:<6} {:>4} {:>5} {:<6} {:<9} {:<5} {:>5}\n",
            "MODEL", "FAMILY", "DPI", "PINS", "CUTTER", "TWO-COLOR", "USB", "MEDIA"
        );
        for m in model::all() {
            let _ = writeln!(
                t,
                "{:<12} {:<6} {:>4} {:>5} {:<6} {:<9} {:<5} {:>5}",
                m.name,
                m.family.as_str(),
                m.dpi,
                m.pins,
                if m.half_cut {
                    "half"
                } else if m.cutter {
                    "yes"
                } else {
                    "no"
                },
                if m.two_colour { "yes" } else { "no" },
                m.usb_product_id
                    .map_or_else(|| "-".to_string(), |p| format!("{p:04x}")),
                media::for_model(m).count()
            );
        }
        t
    };
    super::write_output(opts.output.as_deref(), &text)
}

fn kind(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Laminated => "laminated",
        MediaKind::NonLaminated => "non_laminated",
        MediaKind::HeatShrink => "heat_shrink",
        MediaKind::Endless => "endless",
        MediaKind::DieCut => "die_cut",
    }
}

/// `labelhub media --model M`.
pub fn run_media(args: lexopt::Parser) -> Result<(), CliError> {
    let Some(opts) = parse(args, MEDIA_USAGE, true)? else {
        return Ok(());
    };
    let name = opts
        .model
        .as_deref()
        .ok_or_else(|| CliError::Usage("--model M is required".into()))?;
    let m = model_arg(name)?;
    let mut rows = Vec::new();
    for medium in media::for_model(m) {
        let Ok(g) = media::geometry_of(m, medium) else {
            continue;
        };
        rows.push((medium, g));
    }
    let text = if opts.json {
        let list: Vec<Value> = rows
            .iter()
            .map(|(medium, g)| {
                json!({
                    "id": medium.id,
                    "kind": kind(medium.kind),
                    "width_mm": medium.width_mm,
                    "length_mm": medium.length_mm,
                    "red": medium.red,
                    "printable_dots": g.printable_dots,
                    "description": medium.describe(),
                })
            })
            .collect();
        format!("{:#}\n", json!({"model": m.name, "media": list}))
    } else {
        let mut t = format!("{:<10} {:<14} {:>6}  DESCRIPTION\n", "ID", "KIND", "DOTS");
        for (medium, g) in &rows {
            let _ = writeln!(
                t,
                "{:<10} {:<14} {:>6}  {}",
                medium.id,
                kind(medium.kind),
                g.printable_dots,
                medium.describe()
            );
        }
        t
    };
    super::write_output(opts.output.as_deref(), &text)
}
