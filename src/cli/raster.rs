//! `labelhub raster` (PNG pages -> raster stream) and `labelhub decode`
//! (raster stream -> PNG pages + `commands.json`).
//!
//! Image conventions: an input PNG is taken in label orientation (height =
//! printable dots across the media, width = length along the feed). For QL
//! an image whose *width* is the printable dots (and whose height is not) is
//! taken in brother_ql's portrait orientation and turned. Grey is
//! thresholded the way the reference libraries do it, so the reference
//! vectors are reproduced from their PNGs: PT (ptouch) prints luma < 128,
//! QL (brother_ql) prints luma <= 179 (70 % threshold). With `--red`, red
//! pixels (brother_ql's HSV rule) go to the red layer and dark pixels (value
//! < 80) to the black one.

use std::fs;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use lexopt::prelude::*;
use serde::Serialize;

use super::CliError;
use crate::bitmap::Bitmap;
use crate::brother::decode::{self, Command, DecodedPage, PageSummary, Stream};
use crate::brother::encode::{self, Compat, JobEncoder, Options, Page};
use crate::brother::lines;
use crate::brother::media::{self, Geometry};
use crate::brother::model::{self, Family, Model};

const RASTER_USAGE: &str = "\
labelhub raster --model M --media W [OPTIONS] IN.png [IN2.png ...] -o OUT.bin

Encodes each PNG as one page of one job.

OPTIONS:
    --model M              printer model, e.g. PT-P750W, QL-820NWB
    --media W              media id: PT tape width (3.5 6 9 12 18 24 36, 12-nl, 12-hs ...),
                           QL label (62, 62red, 29x90, d24 ...)
    --cut | --no-cut       auto cut (default: cut if the model has a cutter)
    --cut-every N          cut after every N labels (default 1)
    --half-cut             half cut between labels (PT)
    --chain                chain printing: no feed/cut after the last label (PT)
    --high-res             double resolution along the feed
    --compress | --no-compress
                           PackBits raster lines (default: on if the model takes it)
    --margin DOTS          feed margin in dots (default: the medium's)
    --red                  black/red printing: red pixels go to the red layer (62red)
    --compat MODE          driver (default), ptouch or brother-ql wire details
    -o, --output OUT.bin   output file (--out also works)";

const DECODE_USAGE: &str = "\
labelhub decode IN.bin -o DIR [--model M] [--media W]

Strictly decodes a raster stream. Writes DIR/page-NNN.wire.png (x = raster line,
y = head bit), DIR/page-NNN.png (label orientation, when the medium is known from
--media or the stream's print information) and DIR/commands.json.

OPTIONS:
    -o, --output DIR    output directory (--out also works)
    --model M           printer model (default: from the stream)
    --media W           medium id (default: from the stream's print information)";

/// `labelhub raster`.
pub fn run(mut args: lexopt::Parser) -> Result<(), CliError> {
    let mut model_name = None;
    let mut media_id = None;
    let mut inputs: Vec<PathBuf> = Vec::new();
    let mut out = None;
    let mut cut = None;
    let mut red = false;
    let mut opts = Options::default();
    while let Some(arg) = args.next()? {
        match arg {
            Long("model") => model_name = Some(args.value()?.string()?),
            Long("media") => media_id = Some(args.value()?.string()?),
            Long("cut") => cut = Some(true),
            Long("no-cut") => cut = Some(false),
            Long("cut-every") => opts.cut_every = args.value()?.parse()?,
            Long("half-cut") => opts.half_cut = true,
            Long("chain") => opts.chain = true,
            Long("high-res") => opts.high_res = true,
            Long("compress") => opts.compress = Some(true),
            Long("no-compress") => opts.compress = Some(false),
            Long("margin") => opts.margin_dots = Some(args.value()?.parse()?),
            Long("red") => red = true,
            Long("compat") => opts.compat = parse_compat(&args.value()?.string()?)?,
            Short('o') | Long("output") | Long("out") => out = Some(PathBuf::from(args.value()?)),
            Short('h') | Long("help") => {
                print_help(RASTER_USAGE);
                return Ok(());
            }
            Value(v) => inputs.push(PathBuf::from(v)),
            _ => return Err(CliError::Usage(arg.unexpected().to_string())),
        }
    }
    let usage = |what: &str| CliError::Usage(what.to_string());
    let model = lookup_model(&model_name.ok_or_else(|| usage("--model is required"))?)?;
    let media_id = media_id.ok_or_else(|| usage("--media is required"))?;
    let out = out.ok_or_else(|| usage("-o OUT.bin is required"))?;
    if inputs.is_empty() {
        return Err(usage("at least one input PNG is required"));
    }
    opts.auto_cut = cut.unwrap_or(model.cutter);
    let mut encoder = JobEncoder::new(model, &media_id, opts).map_err(failed)?;
    let geometry = encoder.geometry().clone();
    let mut pages = Vec::with_capacity(inputs.len());
    for path in &inputs {
        let img =
            image::open(path).map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
        let page = page_from_image(&img, &geometry, model.family, red);
        encode::check_page(&geometry, model, &page).map_err(|e| {
            CliError::Failed(format!(
                "{}: {e}{}",
                path.display(),
                hint(&img, &geometry, model)
            ))
        })?;
        pages.push(page);
    }
    let mut bytes = encoder.header();
    for (i, page) in pages.iter().enumerate() {
        let chunk = encoder.page(page, i + 1 == pages.len()).map_err(failed)?;
        bytes.extend_from_slice(&chunk);
    }
    fs::write(&out, &bytes)
        .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", out.display())))?;
    eprintln!(
        "{}: {} page(s), {} bytes for {} on {}",
        out.display(),
        pages.len(),
        bytes.len(),
        geometry.media.describe(),
        model.name
    );
    Ok(())
}

/// Prints help text; a closed stdout (`| head`) is not an error.
fn print_help(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

fn hint(img: &DynamicImage, g: &Geometry, model: &Model) -> String {
    if model.family == Family::Ql {
        format!(
            " (the image is {}x{}; QL images may also be portrait, {} dots wide)",
            img.width(),
            img.height(),
            g.printable_dots
        )
    } else {
        format!(" (the image is {}x{})", img.width(), img.height())
    }
}

fn parse_compat(s: &str) -> Result<Compat, CliError> {
    match s.to_ascii_lowercase().as_str() {
        "driver" => Ok(Compat::Driver),
        "ptouch" => Ok(Compat::Ptouch),
        "brother-ql" | "brother_ql" | "brotherql" => Ok(Compat::BrotherQl),
        other => Err(CliError::Usage(format!(
            "--compat takes driver, ptouch or brother-ql, not `{other}`"
        ))),
    }
}

fn lookup_model(name: &str) -> Result<&'static Model, CliError> {
    model::by_name(name).ok_or_else(|| {
        let known: Vec<&str> = model::all().iter().map(|m| m.name).collect();
        CliError::Usage(format!(
            "unknown model `{name}` (known: {})",
            known.join(", ")
        ))
    })
}

/// PIL's RGB -> L conversion (ITU-R 601-2 luma, rounded), so thresholds
/// match the Python libraries exactly.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// PIL's RGB -> HSV conversion, each channel 0..=255.
fn hsv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    if maxc == minc {
        return (0, 0, maxc);
    }
    let cr = f32::from(maxc - minc);
    let s = cr / f32::from(maxc);
    let rc = f32::from(maxc - r) / cr;
    let gc = f32::from(maxc - g) / cr;
    let bc = f32::from(maxc - b) / cr;
    let h = if r == maxc {
        bc - gc
    } else if g == maxc {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    let h = (h / 6.0 + 1.0) % 1.0;
    let clip = |v: f32| (v as i32).clamp(0, 255) as u8;
    (clip(h * 255.0), clip(s * 255.0), maxc)
}

/// Turns an image into a page for `g` (see the module docs for orientation
/// and thresholds). The size is not checked here; `encode::check_page` says
/// what fits.
pub fn page_from_image(img: &DynamicImage, g: &Geometry, family: Family, red: bool) -> Page {
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut black = Bitmap::new(w, h);
    let mut red_layer = Bitmap::new(w, h);
    for (x, y, p) in rgba.enumerate_pixels() {
        // Composite over white paper.
        let a = u32::from(p.0[3]);
        let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        let (r, gr, b) = (over(p.0[0]), over(p.0[1]), over(p.0[2]));
        let l = luma(r, gr, b);
        if red {
            let (hue, sat, val) = hsv(r, gr, b);
            // brother_ql: hue < 40 or > 210, saturation > 100, value > 80.
            let is_red = !(40..=210).contains(&hue) && sat > 100 && val > 80 && l <= 179;
            if is_red {
                red_layer.set(x, y, true);
            } else if val < 80 {
                black.set(x, y, true);
            }
        } else {
            let ink = match family {
                Family::Pt => l < 128,
                Family::Ql => l <= 179,
            };
            black.set(x, y, ink);
        }
    }
    let portrait = family == Family::Ql && h != g.printable_dots && w == g.printable_dots;
    let orient = |bmp: Bitmap| {
        if portrait {
            // brother_ql column x goes to bit first + (width - 1 - x), row y
            // is raster line y: mirror, then swap the axes.
            lines::transpose(&bmp.flip_horizontal())
        } else {
            bmp
        }
    };
    Page {
        black: orient(black),
        red: red.then(|| orient(red_layer)),
    }
}

#[derive(Serialize)]
struct DecodeReport<'a> {
    family: Option<Family>,
    head_bytes: usize,
    media: Option<&'static str>,
    pages: Vec<PageSummary>,
    warnings: &'a [String],
    commands: &'a [Command],
}

/// `labelhub decode`.
pub fn run_decode(mut args: lexopt::Parser) -> Result<(), CliError> {
    let mut input = None;
    let mut out_dir = None;
    let mut model_name = None;
    let mut media_id = None;
    while let Some(arg) = args.next()? {
        match arg {
            Long("out") | Long("output") | Short('o') => {
                out_dir = Some(PathBuf::from(args.value()?))
            }
            Long("model") => model_name = Some(args.value()?.string()?),
            Long("media") => media_id = Some(args.value()?.string()?),
            Short('h') | Long("help") => {
                print_help(DECODE_USAGE);
                return Ok(());
            }
            Value(v) if input.is_none() => input = Some(PathBuf::from(v)),
            _ => return Err(CliError::Usage(arg.unexpected().to_string())),
        }
    }
    let usage = |what: &str| CliError::Usage(what.to_string());
    let input = input.ok_or_else(|| usage("IN.bin is required"))?;
    let out_dir = out_dir.ok_or_else(|| usage("-o/--output DIR is required"))?;
    let model = model_name.as_deref().map(lookup_model).transpose()?;
    let bytes = fs::read(&input)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", input.display())))?;
    let stream = match model {
        Some(m) => decode::decode_for(&bytes, m),
        None => decode::decode(&bytes),
    }
    .map_err(|e| CliError::Failed(format!("{}: {e} [{}]", input.display(), e.code())))?;
    let geometry = find_geometry(&stream, model, media_id.as_deref())?;
    fs::create_dir_all(&out_dir)
        .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", out_dir.display())))?;
    for (i, page) in stream.pages.iter().enumerate() {
        write_png(
            &out_dir.join(format!("page-{i:03}.wire.png")),
            &page.wire,
            page.red.as_ref(),
        )?;
        if let Some(g) = &geometry {
            let label = page.label(g);
            write_png(
                &out_dir.join(format!("page-{i:03}.png")),
                &label.black,
                label.red.as_ref(),
            )?;
        }
    }
    let report = DecodeReport {
        family: stream.family,
        head_bytes: stream.head_bytes,
        media: geometry.as_ref().map(|g| g.media.id),
        pages: stream
            .pages
            .iter()
            .enumerate()
            .map(|(i, p)| p.summary(i))
            .collect(),
        warnings: &stream.warnings,
        commands: &stream.commands,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(failed)?;
    let json_path = out_dir.join("commands.json");
    fs::write(&json_path, json)
        .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", json_path.display())))?;
    for w in &stream.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "{}: {} page(s), {} commands -> {}",
        input.display(),
        stream.pages.len(),
        stream.commands.len(),
        out_dir.display()
    );
    Ok(())
}

/// Geometry for cropping: from `--media` (with `--model` or any model of
/// the stream's head), else from the first page's `ESC i z`.
fn find_geometry(
    stream: &Stream,
    model: Option<&'static Model>,
    media_id: Option<&str>,
) -> Result<Option<Geometry>, CliError> {
    let Some(family) = stream.family.or(model.map(|m| m.family)) else {
        return Ok(None);
    };
    let pins = (stream.head_bytes * 8) as u16;
    let model = match model {
        Some(m) => m,
        None => match model::all()
            .iter()
            .find(|m| m.family == family && m.pins == pins)
        {
            Some(m) => m,
            None => return Ok(None),
        },
    };
    if let Some(id) = media_id {
        return media::geometry(model, id).map(Some).map_err(failed);
    }
    let two_colour = stream.pages.iter().any(|p| p.red.is_some());
    let info = stream.pages.iter().find_map(|p: &DecodedPage| p.info);
    let found = info
        .and_then(|i| media::by_status(family, i.width_mm, i.media_type, i.length_mm, two_colour));
    // Red media on a model table entry without two-colour: pick a model
    // that has it (any QL-8xx shares the head).
    let model = if two_colour && !model.two_colour {
        model::all().iter().find(|m| m.two_colour).unwrap_or(model)
    } else {
        model
    };
    Ok(found.and_then(|m| media::geometry_of(model, m).ok()))
}

/// A page as PNG (`bitmap::to_png`: black ink black, red ink red, paper
/// white).
fn write_png(path: &Path, black: &Bitmap, red: Option<&Bitmap>) -> Result<(), CliError> {
    let failed = |e: String| CliError::Failed(format!("cannot write {}: {e}", path.display()));
    let png = crate::bitmap::to_png(black, red).map_err(|e| failed(e.to_string()))?;
    fs::write(path, png).map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pil_colour_conversions() {
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(200, 200, 200), 200);
        assert_eq!(hsv(255, 0, 0), (0, 255, 255));
        assert_eq!(hsv(0, 0, 0), (0, 0, 0));
        let (h, s, v) = hsv(0, 0, 255);
        assert_eq!((h, s, v), (170, 255, 255));
    }

    #[test]
    fn ql_portrait_images_are_turned() {
        let m = model::by_name("QL-820NWB").unwrap();
        let g = media::geometry(m, "62").unwrap();
        // Portrait 696 wide, 3 lines; ink at the left edge of line 0.
        let mut img = image::GrayImage::from_pixel(696, 3, image::Luma([255]));
        img.put_pixel(0, 0, image::Luma([0]));
        let page = page_from_image(&DynamicImage::ImageLuma8(img), &g, Family::Ql, false);
        assert_eq!((page.black.width(), page.black.height()), (3, 696));
        // Column 0 goes to bit first + 695, i.e. label row 695.
        assert!(page.black.get(0, 695));
        assert_eq!(page.black.count_ink(), 1);
    }
}
