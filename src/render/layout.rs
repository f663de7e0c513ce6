//! The layout engine: turns a content type and its data into black (and red)
//! layers for one `Dims`.
//!
//! Every content type is a row along the feed: an optional code cell (QR,
//! Data Matrix or 1D barcode) followed by a text column, or an image alone.
//!
//! **Invariants.**
//! - Nothing is clipped: text boxes come from measured glyph extents and
//!   must fit inside the printable height minus padding; text that does not
//!   fit shrinks to `Dims::min_text_scale`, else `text_does_not_fit` names
//!   the field.
//! - Endless media: the label is as long as its content (at least the
//!   medium's minimum, content centred), never longer than its maximum.
//!   Die-cut media: exactly the die-cut length, content centred.
//! - Die-cut labels shorter than they are wide (62x29, 52x29 ...) are laid
//!   out across their long side and turned a quarter clockwise, so text runs
//!   along the long edge.
//! - Red and black never overlap (red wins); on two-colour media the red
//!   layer is always present (possibly blank), elsewhere never.

use super::barcode;
use super::content::ContentType;
use super::data::LabelData;
use super::dims::Dims;
use super::error::RenderError;
use super::font::{Shaped, Text, Weight};
use super::matrix::{self, Matrix};
use super::picture;
use crate::bitmap::Bitmap;

/// Largest text scale (ascent to descent), so a 62 mm label does not get
/// 6 cm letters.
const MAX_TEXT_MM: f32 = 20.0;
/// Padding inside the printable area and between code and text.
const PAD_MM: f32 = 0.25;
/// Scale of each text role relative to the primary line.
const RATIO_PRIMARY: f32 = 1.0;
const RATIO_TITLE: f32 = 0.75;
const RATIO_SECONDARY: f32 = 0.6;

/// The rendered layers, label orientation.
#[derive(Debug)]
pub struct Layers {
    pub black: Bitmap,
    pub red: Option<Bitmap>,
}

/// One line of a text column.
struct LineSpec {
    field: String,
    text: String,
    weight: Weight,
    ratio: f32,
    red: bool,
}

impl LineSpec {
    fn new(field: &str, text: &str, weight: Weight, ratio: f32, red: bool) -> LineSpec {
        LineSpec {
            field: field.to_string(),
            text: text.to_string(),
            weight,
            ratio,
            red,
        }
    }
}

/// A fitted text column: shaped lines with their y offsets.
struct Column {
    lines: Vec<(Text, u32, bool)>,
    width: u32,
    height: u32,
}

/// Renders `ct` with `data` for `dims` (data already validated).
pub fn render(ct: ContentType, data: &LabelData, dims: &Dims) -> Result<Layers, RenderError> {
    let rotate = dims.fixed_length.is_some_and(|len| len < dims.height);
    let work = if rotate {
        Dims {
            height: dims.fixed_length.unwrap_or(dims.height),
            fixed_length: Some(dims.height),
            dpi_across: dims.dpi_feed,
            dpi_feed: dims.dpi_across,
            ..*dims
        }
    } else {
        *dims
    };
    let mut layers = render_frame(ct, data, &work)?;
    if rotate {
        layers.black = layers.black.rotate_cw();
        layers.red = layers.red.map(|r| r.rotate_cw());
    }
    Ok(layers)
}

/// A drawn element placed along the feed.
enum Element {
    /// A ready canvas (1D barcode), drawn black or red.
    Cell { canvas: Bitmap, red: bool },
    /// A square 2D symbol, drawn straight onto the label in a cell `width`
    /// dots long and `side` dots across.
    Matrix {
        matrix: Matrix,
        width: u32,
        side: u32,
        module: u32,
        module_x: u32,
        red: bool,
    },
    /// A text column.
    Text(Column),
}

impl Element {
    fn width(&self) -> u32 {
        match self {
            Element::Cell { canvas, .. } => canvas.width(),
            Element::Matrix { width, .. } => *width,
            Element::Text(col) => col.width,
        }
    }
}

fn render_frame(ct: ContentType, data: &LabelData, dims: &Dims) -> Result<Layers, RenderError> {
    let pad_y = dims.across(PAD_MM);
    let pad_x = dims.along(PAD_MM);
    let limit = dims.length_limit();
    let text_h = dims.height.saturating_sub(2 * pad_y);
    let primary = data.primary_id.as_deref().unwrap_or("");
    let title = data.title.as_deref().unwrap_or("");
    let line = |field: &str, text: &str, weight, ratio| {
        LineSpec::new(field, text, weight, ratio, data.is_red(field))
    };
    let mut elements = Vec::new();

    // The code cell, if any: QR / Data Matrix square, or a 1D barcode.
    let with_text = !matches!(ct, ContentType::QrOnly);
    let cell_side = if with_text && dims.fixed_length.is_some() {
        dims.height.min(limit / 2)
    } else {
        dims.height.min(limit)
    };
    match ct {
        ContentType::QrOnly
        | ContentType::QrOneLine
        | ContentType::QrTwoLines
        | ContentType::QrThreeLines
        | ContentType::QrWithListing => {
            let payload = data.qr_payload.as_deref().unwrap_or("");
            let m = matrix::qr(payload, cell_side / dims.min_module_across())?;
            elements.push(matrix_cell(m, cell_side, dims, data.is_red("qr_payload")));
        }
        ContentType::DatamatrixTwoLines => {
            let payload = data.barcode.as_deref().unwrap_or("");
            let m = matrix::datamatrix(payload, cell_side / dims.min_module_across())?;
            elements.push(matrix_cell(m, cell_side, dims, data.is_red("barcode")));
        }
        ContentType::BarcodeOneLine | ContentType::BarcodeTwoLines => {
            let payload = data.barcode.as_deref().unwrap_or("");
            let sym = barcode::encode(data.barcode_type, payload)?;
            // Die-cut: the bars get two thirds of the label if that is
            // enough, else all but the room the text needs at its minimum.
            let canvas = match dims.fixed_length {
                None => barcode::draw(&sym, text_h, limit, dims)?,
                Some(_) => match barcode::draw(&sym, text_h, limit - limit / 3, dims) {
                    Err(RenderError::CodeDoesNotFit { .. }) => {
                        let text_min = min_text_width(ct, data, dims)?;
                        let max_w = limit.saturating_sub(text_min + 3 * pad_x);
                        barcode::draw(&sym, text_h, max_w, dims)?
                    }
                    res => res?,
                },
            };
            elements.push(Element::Cell {
                canvas,
                red: data.is_red("barcode"),
            });
        }
        ContentType::Image => return render_image(data, dims),
        ContentType::TextOneLine | ContentType::TextTwoLines => {}
    }

    // The text column.
    let specs: Vec<LineSpec> = match ct {
        ContentType::QrOnly | ContentType::Image => Vec::new(),
        ContentType::QrOneLine | ContentType::TextOneLine | ContentType::BarcodeOneLine => {
            vec![line("primary_id", primary, Weight::Bold, RATIO_PRIMARY)]
        }
        ContentType::QrTwoLines
        | ContentType::TextTwoLines
        | ContentType::BarcodeTwoLines
        | ContentType::DatamatrixTwoLines => vec![
            line("primary_id", primary, Weight::Bold, RATIO_PRIMARY),
            line("title", title, Weight::Regular, RATIO_TITLE),
        ],
        ContentType::QrThreeLines => {
            let mut secondary = line(
                "secondary",
                data.secondary.first().map_or("", String::as_str),
                Weight::Regular,
                RATIO_SECONDARY,
            );
            secondary.field = "secondary[0]".into();
            vec![
                line("primary_id", primary, Weight::Bold, RATIO_PRIMARY),
                line("title", title, Weight::Regular, RATIO_TITLE),
                secondary,
            ]
        }
        ContentType::QrWithListing => Vec::new(),
    };
    let used: u32 = elements.iter().map(Element::width).sum();
    let text_x = if used == 0 { pad_x } else { used + pad_x };
    let avail_w = limit.saturating_sub(text_x + pad_x);
    let specs: Vec<LineSpec> = specs.into_iter().filter(|s| !s.text.is_empty()).collect();
    if ct == ContentType::QrWithListing {
        let col = fit_listing(data, avail_w, text_h, dims)?;
        elements.push(Element::Text(col));
    } else if !specs.is_empty() {
        let cap = dims.across(MAX_TEXT_MM) as f32;
        let col = fit_column(&specs, avail_w, text_h, cap, false, dims)?;
        elements.push(Element::Text(col));
    }
    compose(elements, dims, pad_x)
}

/// Width of the widest text line of `ct` at the minimum legible size.
fn min_text_width(ct: ContentType, data: &LabelData, dims: &Dims) -> Result<u32, RenderError> {
    let mut lines = vec![(data.primary_id.as_deref(), Weight::Bold)];
    if ct != ContentType::BarcodeOneLine {
        lines.push((data.title.as_deref(), Weight::Regular));
    }
    let mut widest = 0;
    for (text, weight) in lines {
        let shaped = Shaped::new(text.unwrap_or(""), weight)?;
        widest = widest.max(
            shaped
                .measure(dims.min_text_scale(), dims.x_ratio())
                .width(),
        );
    }
    Ok(widest)
}

/// A square code cell, `side` dots across, module size the largest whole
/// number of dots.
fn matrix_cell(matrix: Matrix, side: u32, dims: &Dims, red: bool) -> Element {
    let module = matrix.module_dots(side).max(1);
    let module_x = ((module as f32 * dims.x_ratio()).round() as u32).max(1);
    let quiet = 2 * matrix::QUIET_MODULES;
    let width =
        ((side as f32 * dims.x_ratio()).round() as u32).max((matrix.side + quiet) * module_x);
    Element::Matrix {
        matrix,
        width,
        side,
        module,
        module_x,
        red,
    }
}

/// Places the elements one after the other along the feed, text columns
/// centred across, and sizes the label for the medium.
fn compose(elements: Vec<Element>, dims: &Dims, pad_x: u32) -> Result<Layers, RenderError> {
    let mut content_w = 0;
    for (i, el) in elements.iter().enumerate() {
        if i > 0 || matches!(el, Element::Text(_)) {
            content_w += pad_x;
        }
        content_w += el.width();
    }
    if matches!(elements.last(), Some(Element::Text(_))) {
        content_w += pad_x;
    }
    let width = match dims.fixed_length {
        Some(len) => len,
        None => content_w.max(dims.min_length),
    };
    if content_w > width || width > dims.length_limit() {
        return Err(RenderError::LabelTooLong {
            length_dots: content_w.max(width),
            max_dots: dims.length_limit(),
        });
    }
    let mut black = Bitmap::new(width, dims.height);
    let mut red = dims.two_colour.then(|| Bitmap::new(width, dims.height));
    let mut x = (width - content_w) / 2;
    for (i, el) in elements.iter().enumerate() {
        if i > 0 || matches!(el, Element::Text(_)) {
            x += pad_x;
        }
        match el {
            Element::Cell {
                canvas,
                red: is_red,
            } => {
                let layer = match red.as_mut() {
                    Some(r) if *is_red => r,
                    _ => &mut black,
                };
                layer.draw(
                    canvas,
                    x,
                    (dims.height - canvas.height().min(dims.height)) / 2,
                );
            }
            Element::Matrix {
                matrix,
                width,
                side,
                module,
                module_x,
                red: is_red,
            } => {
                let layer = match red.as_mut() {
                    Some(r) if *is_red => r,
                    _ => &mut black,
                };
                let y = (dims.height - (*side).min(dims.height)) / 2;
                matrix.draw(layer, (x, y, *width, *side), *module, *module_x);
            }
            Element::Text(col) => {
                let y0 = (dims.height - col.height) / 2;
                for (text, dy, is_red) in &col.lines {
                    let layer = match red.as_mut() {
                        Some(r) if *is_red => r,
                        _ => &mut black,
                    };
                    text.draw(layer, x, y0 + dy);
                }
            }
        }
        x += el.width();
    }
    if let Some(r) = &red {
        black.subtract(r);
    }
    Ok(Layers { black, red })
}

/// Line gap below a line of scale `s`.
fn gap_for(scale: f32) -> u32 {
    ((scale * 0.12).round() as u32).max(1)
}

/// Fits lines into `avail_w × avail_h`: the largest common scale (each line
/// at `ratio` of it, none below the legible minimum, none above `cap`) whose
/// stacked boxes fit the height, then each too-wide line shrunk on its own.
/// `uniform` gives every line the same box (tallest top to deepest bottom),
/// for evenly spaced lists.
fn fit_column(
    specs: &[LineSpec],
    avail_w: u32,
    avail_h: u32,
    cap: f32,
    uniform: bool,
    dims: &Dims,
) -> Result<Column, RenderError> {
    let min = dims.min_text_scale();
    let mut lines: Vec<Text> = specs
        .iter()
        .map(|sp| {
            Ok(Text::new(
                Shaped::new(&sp.text, sp.weight)?,
                min,
                dims.x_ratio(),
            ))
        })
        .collect::<Result<_, RenderError>>()?;
    let size_at = |s: f32, sp: &LineSpec| (s * sp.ratio).floor().max(min);
    let fits_at = |lines: Vec<Text>, s: f32| -> (Vec<Text>, Option<String>) {
        let lines: Vec<Text> = lines
            .into_iter()
            .zip(specs)
            .map(|(t, sp)| t.at(size_at(s, sp)))
            .collect();
        let overflow = stack(&lines, uniform, avail_h)
            .err()
            .map(|i| specs[i].field.clone());
        (lines, overflow)
    };
    // Largest primary scale whose stack fits the height.
    let (mut lo, mut hi) = (
        min as u32,
        (cap.max(min) as u32).min(avail_h.max(min as u32)),
    );
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let (back, overflow) = fits_at(lines, mid as f32);
        lines = back;
        if overflow.is_none() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let (back, overflow) = fits_at(lines, lo as f32);
    lines = back;
    if let Some(field) = overflow {
        return Err(RenderError::TextDoesNotFit {
            field,
            min_px: min as u32,
        });
    }
    // Shrink each too-wide line on its own (heights only get smaller).
    let mut fitted = Vec::with_capacity(lines.len());
    for (t, sp) in lines.into_iter().zip(specs) {
        fitted.push(if t.width() > avail_w {
            shrink_to_width(t, min, avail_w).ok_or_else(|| RenderError::TextDoesNotFit {
                field: sp.field.clone(),
                min_px: min as u32,
            })?
        } else {
            t
        });
    }
    let ys = stack(&fitted, uniform, avail_h).map_err(|i| RenderError::TextDoesNotFit {
        field: specs[i].field.clone(),
        min_px: min as u32,
    })?;
    let height = ys.last().map_or(0, |&(_, bottom)| bottom);
    let width = fitted.iter().map(Text::width).max().unwrap_or(0);
    let lines = fitted
        .into_iter()
        .zip(ys)
        .zip(specs)
        .map(|((t, (y, _)), sp)| (t, y, sp.red))
        .collect();
    Ok(Column {
        lines,
        width,
        height,
    })
}

/// Stacks line boxes from the top with scale-dependent gaps: for each line
/// the y of its box top and the bottom so far. `Err(i)` names the first line
/// that ends below `avail_h`.
fn stack(lines: &[Text], uniform: bool, avail_h: u32) -> Result<Vec<(u32, u32)>, usize> {
    let common_top = lines.iter().map(Text::box_top).min().unwrap_or(0);
    let common_bottom = lines.iter().map(Text::box_bottom).max().unwrap_or(0);
    let mut y = 0;
    let mut res = Vec::with_capacity(lines.len());
    for (i, t) in lines.iter().enumerate() {
        if i > 0 {
            y += gap_for(t.scale);
        }
        let (dy, h) = if uniform {
            (
                (t.box_top() - common_top) as u32,
                (common_bottom - common_top) as u32,
            )
        } else {
            (0, t.box_height())
        };
        if y + h > avail_h {
            return Err(i);
        }
        res.push((y + dy, y + h));
        y += h;
    }
    Ok(res)
}

/// The line at the largest scale from its current one down to `min` that
/// is at most `avail_w` wide; `None` when even `min` is too wide.
fn shrink_to_width(t: Text, min: f32, avail_w: u32) -> Option<Text> {
    let (mut lo, mut hi) = (min as u32, t.scale.max(min) as u32);
    let mut t = t.at(min);
    if t.width() > avail_w {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        t = t.at(mid as f32);
        if t.width() <= avail_w {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(t.at(lo as f32))
}

/// The `qr_with_listing` column: every item if they fit at a legible size
/// (no larger than a third of the height each), else as many as fit
/// followed by `+N more` (N = hidden items), as upstream.
fn fit_listing(
    data: &LabelData,
    avail_w: u32,
    avail_h: u32,
    dims: &Dims,
) -> Result<Column, RenderError> {
    let red = data.is_red("items");
    let item = |i: usize, text: &str| {
        LineSpec::new(&format!("items[{i}]"), text, Weight::Regular, 1.0, red)
    };
    let cap = (avail_h as f32 / 3.0)
        .floor()
        .min(dims.across(MAX_TEXT_MM) as f32);
    let all: Vec<LineSpec> = data
        .items
        .iter()
        .enumerate()
        .map(|(i, t)| item(i, t))
        .collect();
    // Cheap upper bound: lines of at least the minimum cap height each.
    let min = dims.min_text_scale();
    let min_line = (min * 0.6) as u32 + gap_for(min);
    if all.len() as u32 <= avail_h / min_line.max(1) {
        match fit_column(&all, avail_w, avail_h, cap, true, dims) {
            Ok(col) => return Ok(col),
            Err(RenderError::TextDoesNotFit { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // Not all fit: find the most items k that fit with a `+N more` line.
    let n = all.len();
    let mut k = (avail_h / min_line.max(1)) as usize;
    k = k.min(n.saturating_sub(1));
    loop {
        let mut specs: Vec<LineSpec> = data.items[..k]
            .iter()
            .enumerate()
            .map(|(i, t)| item(i, t))
            .collect();
        specs.push(LineSpec::new(
            "items",
            &format!("+{} more", n - k),
            Weight::Regular,
            1.0,
            red,
        ));
        match fit_column(&specs, avail_w, avail_h, cap, true, dims) {
            Ok(col) => return Ok(col),
            Err(RenderError::TextDoesNotFit { field, min_px }) => {
                if k == 0 {
                    return Err(RenderError::TextDoesNotFit { field, min_px });
                }
                k -= 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The `image` content type: the upload scaled to the printable height (or
/// to fit the die-cut label), thresholded or dithered.
fn render_image(data: &LabelData, dims: &Dims) -> Result<Layers, RenderError> {
    let bytes = picture::decode_base64(data.image.as_deref().unwrap_or(""))?;
    let img = picture::load(&bytes)?;
    let (w, h) = picture::fit_size(
        img.width(),
        img.height(),
        dims.length_limit(),
        dims.height,
        dims.x_ratio(),
    );
    let threshold = data.threshold.unwrap_or(128);
    let (mut img_black, mut img_red) =
        picture::to_layers(&img, (w, h), data.image_mode, threshold, data.split_red);
    drop(img);
    if data.is_red("image") {
        let merged = match img_red.take() {
            Some(mut r) => {
                r.draw(&img_black, 0, 0);
                r
            }
            None => img_black,
        };
        img_black = Bitmap::new(w, h);
        img_red = Some(merged);
    }
    let width = match dims.fixed_length {
        Some(len) => len,
        None => w.max(dims.min_length),
    };
    let (x, y) = (
        (width - w.min(width)) / 2,
        (dims.height - h.min(dims.height)) / 2,
    );
    let mut black = Bitmap::new(width, dims.height);
    black.draw(&img_black, x, y);
    let red = if dims.two_colour {
        let mut red = Bitmap::new(width, dims.height);
        if let Some(r) = &img_red {
            red.draw(r, x, y);
        }
        black.subtract(&red);
        Some(red)
    } else {
        None
    };
    Ok(Layers { black, red })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::dims::tests::pt12;

    fn data(primary: &str, title: &str) -> LabelData {
        LabelData {
            qr_payload: Some("https://example.org/a/1".into()),
            primary_id: Some(primary.into()),
            title: Some(title.into()),
            secondary: vec!["third line".into()],
            ..LabelData::default()
        }
    }

    #[test]
    fn endless_length_follows_content() {
        let short = render(ContentType::QrTwoLines, &data("A1", "Box"), &pt12()).unwrap();
        let long = render(
            ContentType::QrTwoLines,
            &data("A1", "A much longer title line"),
            &pt12(),
        )
        .unwrap();
        assert_eq!(short.black.height(), 70);
        assert!(long.black.width() > short.black.width() + 100);
        assert!(short.red.is_none());
    }

    #[test]
    fn die_cut_is_fixed_length_and_wide_labels_turn() {
        let die = Dims {
            fixed_length: Some(400),
            ..pt12()
        };
        let l = render(ContentType::TextOneLine, &data("X", ""), &die).unwrap();
        assert_eq!(l.black.width(), 400);
        let wide = Dims {
            height: 696,
            dpi_across: 300,
            dpi_feed: 300,
            fixed_length: Some(271),
            ..pt12()
        };
        let l = render(ContentType::TextTwoLines, &data("X-1", "Shelf"), &wide).unwrap();
        assert_eq!((l.black.width(), l.black.height()), (271, 696));
    }

    #[test]
    fn too_much_text_on_narrow_tape_is_refused_by_name() {
        let tiny = Dims {
            height: 16,
            ..pt12()
        };
        let err = render(ContentType::TextTwoLines, &data("A", "B"), &tiny).unwrap_err();
        assert_eq!(err.code(), "text_does_not_fit");
        assert_eq!(err.field(), Some("title"));
    }

    #[test]
    fn listing_shows_plus_n_more() {
        let mut d = data("P", "");
        d.items = (0..30).map(|i| format!("item {i}")).collect();
        let col = fit_listing(&d, 10_000, 66, &pt12()).unwrap();
        assert!(col.lines.len() < 30 && col.lines.len() >= 2);
        d.items.truncate(2);
        let col = fit_listing(&d, 10_000, 66, &pt12()).unwrap();
        assert_eq!(col.lines.len(), 2);
    }
}
