//! `cargo bench --bench raster`: encode (and decode) time per label.
//!
//! Labels: PT-P750W on 12 mm tape, 100 mm long (709 lines x 70 dots), and
//! QL-820NWB on 62x100 die-cut labels (1109 lines x 696 dots), both in
//! Driver mode with compression (the model default). The content is the
//! reference vectors' text images tiled to the label length, so PackBits and
//! `Z` lines see realistic data. Prints the median of many runs in µs.
//!
//! Baseline: with `RASTER_BENCH_PYTHON=/path/to/python` (the oracle venv,
//! `~/.cache/brother-oracle-venv/bin/python`, from
//! `../shared/tools/oracle-setup.sh`) the same labels are encoded by ptouch
//! 1.1.0 and brother_ql 0.9.4 in the same run and the ratio is printed. CI
//! has no Python, so without the variable only our figures are printed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use labelhub::bitmap::Bitmap;
use labelhub::brother::decode;
use labelhub::brother::encode::{self, Options, Page};
use labelhub::brother::media::{self, Geometry};
use labelhub::brother::model::{self, Family, Model};
use labelhub::cli::raster::page_from_image;

const RUNS: usize = 2000;
const PY_RUNS: usize = 50;

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vectors")
        .join(name)
}

/// Tiles `src` along x until the bitmap is `len` wide.
fn tile(src: &Bitmap, len: u32) -> Bitmap {
    let mut res = Bitmap::new(len, src.height());
    let mut x = 0;
    while x < len {
        res.draw(src, x, 0);
        x += src.width();
    }
    res
}

fn label(
    model: &Model,
    media: &str,
    input: &str,
    len_mm: Option<u32>,
) -> Result<(Geometry, Page), String> {
    let g = media::geometry(model, media).map_err(|e| e.to_string())?;
    let img = image::open(vector(input)).map_err(|e| format!("{input}: {e}"))?;
    let src = page_from_image(&img, &g, model.family, false).black;
    let len = match (g.fixed_length_dots, len_mm) {
        (Some(len), _) => len,
        (None, Some(mm)) => (f64::from(mm) * f64::from(g.dpi_feed) / 25.4).round() as u32,
        (None, None) => src.width(),
    };
    Ok((g, Page::new(tile(&src, len))))
}

fn median_us(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn time_us(runs: usize, mut f: impl FnMut() -> usize) -> f64 {
    let mut sink = 0usize;
    for _ in 0..runs / 10 + 1 {
        sink = sink.wrapping_add(f()); // warm-up
    }
    let samples = (0..runs)
        .map(|_| {
            let t = Instant::now();
            sink = sink.wrapping_add(f());
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    std::hint::black_box(sink);
    median_us(samples)
}

/// Saves the label as the Python libraries want it: PT landscape, QL
/// portrait (brother_ql's orientation: mirrored and turned back).
fn save_for_python(page: &Page, family: Family, path: &Path) -> Result<(), String> {
    let bmp = match family {
        Family::Pt => page.black.clone(),
        Family::Ql => page.black.transpose().flip_horizontal(),
    };
    bmp.to_gray_image().save(path).map_err(|e| e.to_string())
}

const PY_SCRIPT: &str = r#"
import sys, time, statistics
from PIL import Image
from brother_ql.conversion import convert
from brother_ql.raster import BrotherQLRaster
import ptouch
pt_png, ql_png, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
pt_img, ql_img = Image.open(pt_png), Image.open(ql_png)
pt_img.load(); ql_img.load()
class Capture(ptouch.Connection):
    def __init__(self): self.n = 0
    def connect(self, printer): return None
    def write(self, payload): self.n += len(payload)
    def close(self): return None
def pt():
    conn = Capture()
    printer = ptouch.PTP750W(conn)
    printer.print(ptouch.Label(image=pt_img, tape=ptouch.Tape12mm), auto_cut=True, half_cut=False)
def ql():
    convert(BrotherQLRaster('QL-820NWB'), [ql_img], '62x100', cut=True, compress=True)
for name, f in (("pt", pt), ("ql", ql)):
    f()
    samples = []
    for _ in range(runs):
        t = time.perf_counter(); f(); samples.append((time.perf_counter() - t) * 1e6)
    print(name, statistics.median(samples))
"#;

fn python_baseline(pt: &Page, ql: &Page) -> Option<(f64, f64)> {
    let python = std::env::var_os("RASTER_BENCH_PYTHON")?;
    let dir = std::env::temp_dir().join(format!("labelhub-raster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let (pt_png, ql_png) = (dir.join("pt.png"), dir.join("ql.png"));
    let saved = save_for_python(pt, Family::Pt, &pt_png)
        .and_then(|()| save_for_python(ql, Family::Ql, &ql_png));
    if let Err(e) = saved {
        eprintln!("python baseline skipped: {e}");
        return None;
    }
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(PY_SCRIPT)
        .arg(&pt_png)
        .arg(&ql_png)
        .arg(PY_RUNS.to_string())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = match out {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!(
                "python baseline failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Err(e) => {
            eprintln!("python baseline failed: {e}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok())
    };
    Some((value("pt ")?, value("ql ")?))
}

fn main() -> Result<(), String> {
    let p750w = model::by_name("PT-P750W").ok_or("no PT-P750W")?;
    let ql820 = model::by_name("QL-820NWB").ok_or("no QL-820NWB")?;
    let (pt_g, pt_page) = label(p750w, "12", "in_pt12_text.png", Some(100))?;
    let (ql_g, ql_page) = label(ql820, "62x100", "in_ql62_text.png", None)?;
    let opts = Options::default();
    println!("raster benchmark: median of {RUNS} runs, Driver mode, compression on");

    let mut ours = Vec::new();
    for (name, model, media, g, page) in [
        ("PT-P750W 12 mm x 100 mm", p750w, "12", &pt_g, &pt_page),
        ("QL-820NWB 62x100", ql820, "62x100", &ql_g, &ql_page),
    ] {
        let pages = std::slice::from_ref(page);
        let bytes = encode::encode(model, media, pages, &opts).map_err(|e| e.to_string())?;
        let enc = time_us(RUNS, || {
            encode::encode(model, media, pages, &opts).map_or(0, |b| b.len())
        });
        let dec = time_us(RUNS, || {
            decode::decode_for(&bytes, model).map_or(0, |s| s.pages.len())
        });
        let label_us = time_us(RUNS, || {
            decode::decode_for(&bytes, model)
                .map_or(0, |s| s.pages[0].label(g).black.width() as usize)
        });
        println!(
            "  {name:<26} {}x{} dots, {:>6} bytes: encode {enc:>8.1} µs   decode {dec:>8.1} µs   decode+label {label_us:>8.1} µs",
            page.black.width(),
            page.black.height(),
            bytes.len()
        );
        ours.push(enc);
    }
    match python_baseline(&pt_page, &ql_page) {
        Some((pt_py, ql_py)) => {
            println!("python baseline (median of {PY_RUNS} runs, same labels):");
            println!(
                "  ptouch 1.1.0    PT-P750W 12 mm x 100 mm: {:>10.1} µs  -> ours {:.0}x faster",
                pt_py,
                pt_py / ours[0]
            );
            println!(
                "  brother_ql 0.9.4 QL-820NWB 62x100:        {:>10.1} µs  -> ours {:.0}x faster",
                ql_py,
                ql_py / ours[1]
            );
        }
        None => println!(
            "python baseline: set RASTER_BENCH_PYTHON to the oracle venv's python to compare"
        ),
    }
    Ok(())
}
