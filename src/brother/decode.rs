//! Strict raster-stream decoder: bytes -> pages (bitmaps and settings) and
//! the list of commands.
//!
//! **Invariants:**
//! - Strict: an unknown command, a truncated command, a raster line whose
//!   length the head does not have, bad PackBits data, `Z` without
//!   compression, or a page without a print command (`0x0C`/`0x1A`) is a
//!   [`DecodeError`] naming the byte offset of the offending command.
//! - A page's `wire` bitmap is the raster lines as sent: `x` = line index (in
//!   feed order, after high-resolution doubling), `y` = head bit index (bit 0 =
//!   MSB of the line's first byte). [`DecodedPage::label`] crops it back to
//!   the label orientation the encoder takes, so
//!   `decode(encode(page)).pages[0].label(g) == page`.
//! - The head width comes from the model when one is given; otherwise from
//!   the first uncompressed line, else from the longest unpacked line (each
//!   rounded to a width the family has: PT 16/70, QL 90/162 bytes).
//!
//! Besides Brother's commands this reads the extra bytes seen in Windows
//! driver captures (reference §2.14: job id, `ESC i k`, `ESC i X`, `ESC i U`
//! media info, density, legacy print info) and records them as `ignored`.

use std::fmt;

use serde::Serialize;

use super::encode::Page;
use super::lines;
use super::media::Geometry;
use super::model::{Family, Model};
use super::packbits::{self, PackbitsError};
use crate::bitmap::Bitmap;

/// Where and why a stream was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the offending command in the stream.
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

/// What is wrong with a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// A byte (or escape sequence) that starts no known command.
    UnknownCommand { bytes: Vec<u8> },
    /// A command runs past the end of the stream.
    Truncated {
        command: &'static str,
        needed: usize,
    },
    /// A raster line the head does not have.
    WrongLineLength {
        command: char,
        length: usize,
        expected: String,
    },
    /// A compressed raster line is not valid PackBits.
    BadPackbits { command: char, error: PackbitsError },
    /// `Z` while compression is off.
    ZeroWithoutCompression,
    /// `M n` with n other than 0 or 2.
    BadCompressionMode(u8),
    /// A malformed raster header (`g` second byte not 0, `w` colour not 1/2,
    /// `w` rows not in black/red pairs).
    BadRasterHeader(String),
    /// PT (`G`) and QL (`g`/`w`) raster lines in one stream.
    MixedFamilies,
    /// The stream ends inside a page: raster lines or page settings with no
    /// `0x0C`/`0x1A` after them, or the last page ends with `0x0C`.
    MissingPrintCommand { page_start: usize },
    /// No page at all (empty stream, only NULs and initialisation).
    NoPages,
}

impl DecodeError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match &self.kind {
            DecodeErrorKind::UnknownCommand { .. } => "unknown_command",
            DecodeErrorKind::Truncated { .. } => "truncated_command",
            DecodeErrorKind::WrongLineLength { .. } => "wrong_line_length",
            DecodeErrorKind::BadPackbits { .. } => "bad_packbits",
            DecodeErrorKind::ZeroWithoutCompression => "zero_line_without_compression",
            DecodeErrorKind::BadCompressionMode(_) => "bad_compression_mode",
            DecodeErrorKind::BadRasterHeader(_) => "bad_raster_header",
            DecodeErrorKind::MixedFamilies => "mixed_families",
            DecodeErrorKind::MissingPrintCommand { .. } => "missing_print_command",
            DecodeErrorKind::NoPages => "no_pages",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.kind {
            DecodeErrorKind::UnknownCommand { bytes } => {
                write!(f, "unknown command at byte {at}: {}", hex(bytes))
            }
            DecodeErrorKind::Truncated { command, needed } => write!(
                f,
                "{command} at byte {at} needs {needed} bytes but the stream ends"
            ),
            DecodeErrorKind::WrongLineLength {
                command,
                length,
                expected,
            } => write!(
                f,
                "raster line `{command}` at byte {at} is {length} bytes, expected {expected}"
            ),
            DecodeErrorKind::BadPackbits { command, error } => {
                write!(f, "raster line `{command}` at byte {at}: {error}")
            }
            DecodeErrorKind::ZeroWithoutCompression => {
                write!(f, "`Z` at byte {at} while compression is off")
            }
            DecodeErrorKind::BadCompressionMode(n) => {
                write!(
                    f,
                    "compression mode `M {n:02X}` at byte {at} (only 00 and 02 exist)"
                )
            }
            DecodeErrorKind::BadRasterHeader(what) => write!(f, "at byte {at}: {what}"),
            DecodeErrorKind::MixedFamilies => write!(
                f,
                "raster line at byte {at} mixes PT (`G`) and QL (`g`/`w`) commands"
            ),
            DecodeErrorKind::MissingPrintCommand { page_start } => write!(
                f,
                "missing print command: the page starting at byte {page_start} is not \
                 ended by 0x1A (stream ends at byte {at})"
            ),
            DecodeErrorKind::NoPages => write!(f, "no page in the stream ({at} bytes)"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ESC i z` fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PrintInfo {
    /// n1: 0x02 type, 0x04 width, 0x08 length valid, 0x40 quality, 0x80 recover.
    pub valid_flags: u8,
    /// n2: media type.
    pub media_type: u8,
    /// n3: media width in mm.
    pub width_mm: u8,
    /// n4: media length in mm (die-cut).
    pub length_mm: u8,
    /// n5..n8: declared raster lines.
    pub raster_count: u32,
    /// n9: 0 first page, 1 others, 2 last (P900 family).
    pub page: u8,
    /// n10.
    pub n10: u8,
}

/// One command as it appeared on the wire. Consecutive raster lines of one
/// kind are collapsed into one `raster_run`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Command {
    pub offset: usize,
    #[serde(flatten)]
    pub cmd: Cmd,
}

/// The commands the decoder knows. Serialises as
/// `{"name": "...", "args": {...}}` (flattened into [`Command`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "name", content = "args", rename_all = "snake_case")]
pub enum Cmd {
    /// A run of NULs.
    Invalidate { count: usize },
    /// `ESC @`.
    Initialize,
    /// `ESC i a n` (1 = raster).
    SwitchMode { mode: u8 },
    /// `ESC i ! n` (0 notify, 1 do not).
    StatusNotification { n: u8 },
    /// `ESC i S`.
    StatusRequest,
    /// `ESC i z`.
    PrintInfo(PrintInfo),
    /// `ESC i M n`.
    VariousMode {
        value: u8,
        auto_cut: bool,
        mirror: bool,
    },
    /// `ESC i A n`.
    CutEvery { n: u8 },
    /// `ESC i K n` (PT advanced / QL expanded mode).
    AdvancedMode { value: u8 },
    /// `ESC i d n1 n2`.
    Margin { dots: u16 },
    /// `M n` (0 none, 2 PackBits).
    Compression { mode: u8 },
    /// `count` raster commands of one kind (`G`, `g`, `w`, `Z`).
    RasterRun {
        kind: char,
        count: usize,
        compressed: bool,
    },
    /// `0x0C` (print, more pages follow).
    Print,
    /// `0x1A` (print the last page, feed and cut).
    PrintLast,
    /// A command that changes nothing for decoding (job id, media info ...).
    Ignored { what: &'static str, raw: String },
}

/// One printed page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedPage {
    /// Raster lines as sent: width = dot-rows, height = head pins.
    pub wire: Bitmap,
    /// Second colour (`w 02` lines), same size as `wire`.
    pub red: Option<Bitmap>,
    /// This page's `ESC i z`, if it had one.
    pub info: Option<PrintInfo>,
    pub auto_cut: bool,
    /// PT only (`ESC i K` bit 2).
    pub half_cut: bool,
    /// PT only: `ESC i K` was sent with bit 3 ("no chain") cleared.
    pub chain: bool,
    /// `ESC i K` bit 6.
    pub high_res: bool,
    /// Compression was on when the page was printed.
    pub compressed: bool,
    /// `ESC i d` value as sent.
    pub margin: u16,
    /// `ESC i A` value in force, if any was sent.
    pub cut_every: Option<u8>,
    /// Ended with `0x1A`.
    pub last: bool,
    /// Offset of the page's first command and of its print command.
    pub start: usize,
    pub end: usize,
}

/// JSON-friendly summary of a page (settings, no bitmaps).
#[derive(Clone, Debug, Serialize)]
pub struct PageSummary {
    pub index: usize,
    pub raster_lines: u32,
    pub pins: u32,
    pub two_colour: bool,
    pub info: Option<PrintInfo>,
    pub auto_cut: bool,
    pub half_cut: bool,
    pub chain: bool,
    pub high_res: bool,
    pub compressed: bool,
    pub margin: u16,
    pub cut_every: Option<u8>,
    pub last: bool,
    /// First and last head bit with ink (black or red), if any.
    pub ink_bits: Option<(u32, u32)>,
    pub start: usize,
    pub end: usize,
}

impl DecodedPage {
    /// Crops the page back to label orientation for `g`: head bits
    /// `first_margin..first_margin + printable_dots` become rows; in high
    /// resolution every second line (the first of each pair) is kept.
    pub fn label(&self, g: &Geometry) -> Page {
        Page {
            black: crop(&self.wire, g, self.high_res),
            red: self.red.as_ref().map(|red| crop(red, g, self.high_res)),
        }
    }

    /// First and last head bit with ink in either layer.
    pub fn ink_bits(&self) -> Option<(u32, u32)> {
        let mut range: Option<(u32, u32)> = None;
        for layer in std::iter::once(&self.wire).chain(self.red.as_ref()) {
            for y in 0..layer.height() {
                if layer.row(y).iter().any(|&b| b != 0) {
                    range = Some(match range {
                        None => (y, y),
                        Some((lo, hi)) => (lo.min(y), hi.max(y)),
                    });
                }
            }
        }
        range
    }

    /// `true` when ink lies outside `g`'s print window (the encoder never
    /// produces that; a printer would print it at the tape edge or not at all).
    pub fn ink_outside(&self, g: &Geometry) -> bool {
        match self.ink_bits() {
            None => false,
            Some((lo, hi)) => lo < g.first_margin || hi >= g.first_margin + g.printable_dots,
        }
    }

    /// Settings without bitmaps, for JSON output.
    pub fn summary(&self, index: usize) -> PageSummary {
        PageSummary {
            index,
            raster_lines: self.wire.width(),
            pins: self.wire.height(),
            two_colour: self.red.is_some(),
            info: self.info,
            auto_cut: self.auto_cut,
            half_cut: self.half_cut,
            chain: self.chain,
            high_res: self.high_res,
            compressed: self.compressed,
            margin: self.margin,
            cut_every: self.cut_every,
            last: self.last,
            ink_bits: self.ink_bits(),
            start: self.start,
            end: self.end,
        }
    }
}

fn crop(wire: &Bitmap, g: &Geometry, high_res: bool) -> Bitmap {
    let printable = g.printable_dots;
    let first = g.first_margin;
    // Rows of the wire bitmap are head bits: cropping is copying rows.
    let mut cropped = Bitmap::new(wire.width(), printable);
    let stride = cropped.stride();
    let mut data = Vec::with_capacity(stride * printable as usize);
    for y in 0..printable {
        let src = first + y;
        if src < wire.height() {
            data.extend_from_slice(wire.row(src));
        } else {
            data.resize(data.len() + stride, 0);
        }
    }
    if let Some(bmp) = Bitmap::from_packed(wire.width(), printable, data) {
        cropped = bmp;
    }
    if !high_res {
        return cropped;
    }
    // Keep lines 0, 2, 4 ...: transpose so lines are rows, pick, transpose back.
    let by_line = lines::transpose(&cropped);
    let kept = by_line.height().div_ceil(2);
    let mut data = Vec::with_capacity(by_line.stride() * kept as usize);
    for x in (0..by_line.height()).step_by(2) {
        data.extend_from_slice(by_line.row(x));
    }
    match Bitmap::from_packed(by_line.width(), kept, data) {
        Some(halved) => lines::transpose(&halved),
        None => cropped,
    }
}

/// A decoded stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    /// PT or QL, from the raster commands (`None` if there were none).
    pub family: Option<Family>,
    /// Bytes per raster line (head pins / 8), as used for the pages.
    pub head_bytes: usize,
    pub pages: Vec<DecodedPage>,
    pub commands: Vec<Command>,
    /// Things a printer tolerates but the encoder never does (declared raster
    /// number differs from the lines sent, guessed head width ...).
    pub warnings: Vec<String>,
    /// Bytes up to and including the last complete page's print command.
    pub consumed: usize,
    /// `false` only from [`decode_partial`] when the stream ends mid-page.
    pub complete: bool,
}

/// How to decode.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeOptions {
    /// The printer the stream is for: fixes the head width, so a line the
    /// head does not have is an error.
    pub model: Option<&'static Model>,
    /// Stop quietly at an unfinished page or a truncated command at the end
    /// (for data still arriving); earlier errors are still errors.
    pub allow_incomplete: bool,
}

/// Decodes a complete stream, strictly, inferring the head width.
pub fn decode(bytes: &[u8]) -> Result<Stream, DecodeError> {
    decode_with(bytes, &DecodeOptions::default())
}

/// Decodes a complete stream for a known model.
pub fn decode_for(bytes: &[u8], model: &'static Model) -> Result<Stream, DecodeError> {
    decode_with(
        bytes,
        &DecodeOptions {
            model: Some(model),
            allow_incomplete: false,
        },
    )
}

/// Decodes the complete pages of a stream that may still be arriving.
pub fn decode_partial(bytes: &[u8], model: Option<&'static Model>) -> Result<Stream, DecodeError> {
    decode_with(
        bytes,
        &DecodeOptions {
            model,
            allow_incomplete: true,
        },
    )
}

/// Decodes with explicit options.
pub fn decode_with(bytes: &[u8], opts: &DecodeOptions) -> Result<Stream, DecodeError> {
    let mut parser = Parser::new(bytes, opts);
    parser.run()?;
    parser.finish()
}

/// One raster dot-row as parsed (data unpacked, not yet widened to the head).
#[derive(Clone, Copy)]
enum Colour {
    Mono,
    Black,
    Red,
}

struct RawRow {
    /// Range in `Parser::row_data`; empty for `Z`.
    start: usize,
    len: usize,
    colour: Colour,
    zero: bool,
}

#[derive(Default)]
struct Settings {
    compression: bool,
    various: u8,
    expanded: Option<u8>,
    margin: u16,
    cut_every: Option<u8>,
}

struct PendingPage {
    start: Option<usize>,
    rows: Vec<RawRow>,
    info: Option<PrintInfo>,
    info_offset: usize,
    two_colour: bool,
    /// A `w 01` row waits for its `w 02`.
    open_pair: Option<usize>,
    any_compressed: bool,
}

impl PendingPage {
    fn new() -> PendingPage {
        PendingPage {
            start: None,
            rows: Vec::new(),
            info: None,
            info_offset: 0,
            two_colour: false,
            open_pair: None,
            any_compressed: false,
        }
    }
}

struct FinishedPage {
    rows: Vec<RawRow>,
    info: Option<PrintInfo>,
    info_offset: usize,
    two_colour: bool,
    compressed: bool,
    auto_cut: bool,
    expanded: Option<u8>,
    margin: u16,
    cut_every: Option<u8>,
    last: bool,
    start: usize,
    end: usize,
}

struct Parser<'a> {
    bytes: &'a [u8],
    opts: DecodeOptions,
    pos: usize,
    /// Offset of the command being parsed (errors name it).
    cmd_start: usize,
    family: Option<Family>,
    /// Head width fixed by the model or an uncompressed line.
    head: Option<usize>,
    /// Longest line seen so far (for inference).
    longest: usize,
    settings: Settings,
    page: PendingPage,
    row_data: Vec<u8>,
    done: Vec<FinishedPage>,
    commands: Vec<Command>,
    warnings: Vec<String>,
    consumed: usize,
    complete: bool,
}

/// Fixed argument lengths of the `ESC i` commands (after `ESC i c`).
fn esc_i_args(c: u8) -> Option<(&'static str, usize)> {
    Some(match c {
        b'a' => ("ESC i a", 1),
        b'!' => ("ESC i !", 1),
        b'S' => ("ESC i S", 0),
        b'z' => ("ESC i z", 10),
        b'M' => ("ESC i M", 1),
        b'A' => ("ESC i A", 1),
        b'K' => ("ESC i K", 1),
        b'd' => ("ESC i d", 2),
        b'k' => ("ESC i k", 3),
        b'X' => ("ESC i X", 1),
        b'D' => ("ESC i D", 1),
        b'c' => ("ESC i c", 5),
        b'R' => ("ESC i R", 1),
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], opts: &DecodeOptions) -> Parser<'a> {
        Parser {
            bytes,
            opts: *opts,
            pos: 0,
            cmd_start: 0,
            family: opts.model.map(|m| m.family),
            head: opts.model.map(|m| m.head_bytes()),
            longest: 0,
            settings: Settings::default(),
            page: PendingPage::new(),
            row_data: Vec::new(),
            done: Vec::new(),
            commands: Vec::new(),
            warnings: Vec::new(),
            consumed: 0,
            complete: true,
        }
    }

    fn err(&self, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { offset, kind }
    }

    /// `n` bytes starting at `at`, or a truncation error for `command`
    /// (naming the command's start).
    fn need(&self, at: usize, n: usize, command: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.bytes.get(at..at + n) {
            Some(s) => Ok(s),
            None => Err(self.err(
                self.cmd_start,
                DecodeErrorKind::Truncated { command, needed: n },
            )),
        }
    }

    fn push(&mut self, offset: usize, cmd: Cmd) {
        // Collapse consecutive raster lines of one kind.
        if let Cmd::RasterRun {
            kind, compressed, ..
        } = &cmd
        {
            if let Some(Command {
                cmd:
                    Cmd::RasterRun {
                        kind: k,
                        count,
                        compressed: c,
                    },
                ..
            }) = self.commands.last_mut()
            {
                if k == kind && c == compressed {
                    *count += 1;
                    return;
                }
            }
        }
        self.commands.push(Command { offset, cmd });
    }

    fn touch_page(&mut self, at: usize) {
        if self.page.start.is_none() {
            self.page.start = Some(at);
        }
    }

    fn run(&mut self) -> Result<(), DecodeError> {
        while self.pos < self.bytes.len() {
            let at = self.pos;
            self.cmd_start = at;
            match self.step(at) {
                Ok(()) => {}
                Err(e)
                    if self.opts.allow_incomplete
                        && matches!(e.kind, DecodeErrorKind::Truncated { .. }) =>
                {
                    self.complete = false;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn step(&mut self, at: usize) -> Result<(), DecodeError> {
        let b = self.bytes[at];
        match b {
            0x00 => {
                let count = self.bytes[at..].iter().take_while(|&&b| b == 0).count();
                self.pos = at + count;
                self.push(at, Cmd::Invalidate { count });
            }
            0x1B => self.escape(at)?,
            b'M' => {
                let n = self.need(at + 1, 1, "M (compression)")?[0];
                if n != 0 && n != 2 {
                    return Err(self.err(at, DecodeErrorKind::BadCompressionMode(n)));
                }
                self.settings.compression = n == 2;
                self.touch_page(at);
                self.pos = at + 2;
                self.push(at, Cmd::Compression { mode: n });
            }
            b'G' | b'g' | b'w' | b'Z' => self.raster(at, b)?,
            0x0C | 0x1A => {
                self.pos = at + 1;
                let last = b == 0x1A;
                self.push(at, if last { Cmd::PrintLast } else { Cmd::Print });
                self.end_page(at, last)?;
            }
            _ => {
                return Err(self.err(
                    at,
                    DecodeErrorKind::UnknownCommand {
                        bytes: self.bytes[at..(at + 3).min(self.bytes.len())].to_vec(),
                    },
                ))
            }
        }
        Ok(())
    }

    fn escape(&mut self, at: usize) -> Result<(), DecodeError> {
        let c1 = self.need(at + 1, 1, "ESC")?[0];
        if c1 == b'@' {
            self.pos = at + 2;
            self.push(at, Cmd::Initialize);
            if !self.page.rows.is_empty() {
                self.warnings.push(format!(
                    "ESC @ at byte {at} discards {} raster lines of an unprinted page",
                    self.page.rows.len()
                ));
            }
            self.settings = Settings::default();
            self.page = PendingPage::new();
            return Ok(());
        }
        if c1 != b'i' {
            return Err(self.err(
                at,
                DecodeErrorKind::UnknownCommand {
                    bytes: vec![0x1B, c1],
                },
            ));
        }
        let c = self.need(at + 2, 1, "ESC i")?[0];
        if c == b'U' {
            // ESC i U J + 14 bytes (job id); ESC i U w 01 + 127 (media info).
            let sub = self.need(at + 3, 1, "ESC i U")?[0];
            let (what, n) = match sub {
                b'J' => ("job id (ESC i U J)", 14),
                b'w' => ("media information (ESC i U w)", 128),
                _ => {
                    return Err(self.err(
                        at,
                        DecodeErrorKind::UnknownCommand {
                            bytes: vec![0x1B, b'i', b'U', sub],
                        },
                    ))
                }
            };
            let args = self.need(at + 4, n, "ESC i U")?;
            self.pos = at + 4 + n;
            self.push(
                at,
                Cmd::Ignored {
                    what,
                    raw: hex(args),
                },
            );
            return Ok(());
        }
        let Some((name, n)) = esc_i_args(c) else {
            return Err(self.err(
                at,
                DecodeErrorKind::UnknownCommand {
                    bytes: vec![0x1B, b'i', c],
                },
            ));
        };
        let args = self.need(at + 3, n, name)?;
        self.pos = at + 3 + n;
        let cmd = match c {
            b'a' => Cmd::SwitchMode { mode: args[0] },
            b'!' => Cmd::StatusNotification { n: args[0] },
            b'S' => Cmd::StatusRequest,
            b'z' => {
                let info = PrintInfo {
                    valid_flags: args[0],
                    media_type: args[1],
                    width_mm: args[2],
                    length_mm: args[3],
                    raster_count: u32::from_le_bytes([args[4], args[5], args[6], args[7]]),
                    page: args[8],
                    n10: args[9],
                };
                self.touch_page(at);
                self.page.info = Some(info);
                self.page.info_offset = at;
                Cmd::PrintInfo(info)
            }
            b'M' => {
                self.touch_page(at);
                self.settings.various = args[0];
                Cmd::VariousMode {
                    value: args[0],
                    auto_cut: args[0] & 0x40 != 0,
                    mirror: args[0] & 0x80 != 0,
                }
            }
            b'A' => {
                self.touch_page(at);
                self.settings.cut_every = Some(args[0]);
                Cmd::CutEvery { n: args[0] }
            }
            b'K' => {
                self.touch_page(at);
                self.settings.expanded = Some(args[0]);
                Cmd::AdvancedMode { value: args[0] }
            }
            b'd' => {
                self.touch_page(at);
                self.settings.margin = u16::from_le_bytes([args[0], args[1]]);
                Cmd::Margin {
                    dots: self.settings.margin,
                }
            }
            _ => Cmd::Ignored {
                what: name,
                raw: hex(args),
            },
        };
        self.push(at, cmd);
        Ok(())
    }

    fn set_family(&mut self, at: usize, family: Family) -> Result<(), DecodeError> {
        match self.family {
            Some(f) if f != family => Err(self.err(at, DecodeErrorKind::MixedFamilies)),
            _ => {
                self.family = Some(family);
                Ok(())
            }
        }
    }

    fn widths(family: Family) -> &'static [usize] {
        match family {
            Family::Pt => &[16, 70],
            Family::Ql => &[90, 162],
        }
    }

    fn expected(&self, family: Family) -> String {
        match self.head {
            Some(h) => format!("{h} (the head's line)"),
            None => {
                let w = Self::widths(family);
                format!("{} or {}", w[0], w[1])
            }
        }
    }

    fn raster(&mut self, at: usize, b: u8) -> Result<(), DecodeError> {
        self.touch_page(at);
        if b == b'Z' {
            if !self.settings.compression {
                return Err(self.err(at, DecodeErrorKind::ZeroWithoutCompression));
            }
            self.pos = at + 1;
            self.push(
                at,
                Cmd::RasterRun {
                    kind: 'Z',
                    count: 1,
                    compressed: true,
                },
            );
            if let Some(open) = self.page.open_pair {
                return Err(self.err(
                    at,
                    DecodeErrorKind::BadRasterHeader(format!(
                        "`Z` between the black (`w 01` at byte {open}) and red line of a pair"
                    )),
                ));
            }
            self.page.rows.push(RawRow {
                start: 0,
                len: 0,
                colour: Colour::Mono,
                zero: true,
            });
            return Ok(());
        }
        let (family, kind, colour, data_at, len) = match b {
            b'G' => {
                let h = self.need(at + 1, 2, "G (raster line)")?;
                (
                    Family::Pt,
                    'G',
                    Colour::Mono,
                    at + 3,
                    usize::from(u16::from_le_bytes([h[0], h[1]])),
                )
            }
            b'g' => {
                let h = self.need(at + 1, 2, "g (raster line)")?;
                if h[0] != 0 {
                    return Err(self.err(
                        at,
                        DecodeErrorKind::BadRasterHeader(format!(
                            "`g` second byte is {:02X}, must be 00",
                            h[0]
                        )),
                    ));
                }
                (Family::Ql, 'g', Colour::Mono, at + 3, usize::from(h[1]))
            }
            _ => {
                let h = self.need(at + 1, 2, "w (two-colour raster line)")?;
                let colour = match h[0] {
                    1 => Colour::Black,
                    2 => Colour::Red,
                    c => {
                        return Err(self.err(
                            at,
                            DecodeErrorKind::BadRasterHeader(format!(
                                "`w` colour {c:02X}, must be 01 (black) or 02 (red)"
                            )),
                        ))
                    }
                };
                (Family::Ql, 'w', colour, at + 3, usize::from(h[1]))
            }
        };
        self.set_family(at, family)?;
        let payload = self.need(data_at, len, "raster line")?;
        self.pos = data_at + len;
        let compressed = self.settings.compression;
        self.push(
            at,
            Cmd::RasterRun {
                kind,
                count: 1,
                compressed,
            },
        );
        let start = self.row_data.len();
        let widest = *Self::widths(family).last().unwrap_or(&0);
        if compressed {
            let limit = self.head.unwrap_or(widest);
            if let Err(error) = packbits::decode_into(payload, limit, &mut self.row_data) {
                self.row_data.truncate(start);
                if let PackbitsError::Overflow { .. } = error {
                    return Err(self.err(
                        at,
                        DecodeErrorKind::WrongLineLength {
                            command: kind,
                            length: packbits_len(payload),
                            expected: self.expected(family),
                        },
                    ));
                }
                return Err(self.err(
                    at,
                    DecodeErrorKind::BadPackbits {
                        command: kind,
                        error,
                    },
                ));
            }
            self.page.any_compressed = true;
        } else {
            let ok = match self.head {
                Some(h) => len == h,
                None => Self::widths(family).contains(&len) && len >= self.longest,
            };
            if !ok {
                return Err(self.err(
                    at,
                    DecodeErrorKind::WrongLineLength {
                        command: kind,
                        length: len,
                        expected: self.expected(family),
                    },
                ));
            }
            self.head = Some(len);
            self.row_data.extend_from_slice(payload);
        }
        let row_len = self.row_data.len() - start;
        self.longest = self.longest.max(row_len);
        let zero = self.row_data[start..].iter().all(|&b| b == 0);
        // Two-colour pairing: w 01 then w 02, never g in the same page.
        match colour {
            Colour::Mono if self.page.two_colour => {
                return Err(self.err(
                    at,
                    DecodeErrorKind::BadRasterHeader(
                        "`g` line in a two-colour (`w`) page".to_string(),
                    ),
                ))
            }
            Colour::Mono => {}
            Colour::Black | Colour::Red => {
                let mono_before = !self.page.two_colour
                    && self
                        .page
                        .rows
                        .iter()
                        .any(|r| matches!(r.colour, Colour::Mono) && !r.zero);
                if mono_before {
                    return Err(self.err(
                        at,
                        DecodeErrorKind::BadRasterHeader(
                            "`w` line in a page that has `g` lines".to_string(),
                        ),
                    ));
                }
                self.page.two_colour = true;
                match (colour, self.page.open_pair) {
                    (Colour::Black, None) => self.page.open_pair = Some(at),
                    (Colour::Red, Some(_)) => self.page.open_pair = None,
                    (Colour::Black, Some(open)) => {
                        return Err(self.err(
                            at,
                            DecodeErrorKind::BadRasterHeader(format!(
                                "second `w 01` in a row (the one at byte {open} has no `w 02`)"
                            )),
                        ))
                    }
                    _ => {
                        return Err(self.err(
                            at,
                            DecodeErrorKind::BadRasterHeader(
                                "`w 02` (red) without a `w 01` (black) line before it".to_string(),
                            ),
                        ))
                    }
                }
            }
        }
        self.page.rows.push(RawRow {
            start,
            len: row_len,
            colour,
            zero,
        });
        Ok(())
    }

    fn end_page(&mut self, at: usize, last: bool) -> Result<(), DecodeError> {
        if let Some(open) = self.page.open_pair {
            return Err(self.err(
                open,
                DecodeErrorKind::BadRasterHeader(
                    "`w 01` (black) line without its `w 02` (red) line".to_string(),
                ),
            ));
        }
        let page = std::mem::replace(&mut self.page, PendingPage::new());
        self.done.push(FinishedPage {
            start: page.start.unwrap_or(at),
            end: at,
            rows: page.rows,
            info: page.info,
            info_offset: page.info_offset,
            two_colour: page.two_colour,
            compressed: self.settings.compression || page.any_compressed,
            auto_cut: self.settings.various & 0x40 != 0,
            expanded: self.settings.expanded,
            margin: self.settings.margin,
            cut_every: self.settings.cut_every,
            last,
        });
        self.consumed = at + 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Stream, DecodeError> {
        let end = self.bytes.len();
        if let Some(start) = self.page.start {
            if !self.opts.allow_incomplete {
                return Err(self.err(
                    end,
                    DecodeErrorKind::MissingPrintCommand { page_start: start },
                ));
            }
            self.complete = false;
        }
        if self.done.is_empty() {
            if self.opts.allow_incomplete {
                return Ok(self.into_stream(0, Vec::new()));
            }
            return Err(self.err(end, DecodeErrorKind::NoPages));
        }
        if let Some(page) = self.done.last() {
            if !page.last && !self.opts.allow_incomplete {
                return Err(self.err(
                    page.end,
                    DecodeErrorKind::MissingPrintCommand {
                        page_start: page.start,
                    },
                ));
            }
        }
        let head = self.head_bytes();
        let done = std::mem::take(&mut self.done);
        let mut pages = Vec::with_capacity(done.len());
        for (index, page) in done.into_iter().enumerate() {
            pages.push(self.build_page(index, page, head));
        }
        Ok(self.into_stream(head, pages))
    }

    fn head_bytes(&mut self) -> usize {
        if let Some(h) = self.head {
            return h;
        }
        let family = self.family.unwrap_or(Family::Pt);
        if self.longest > 0 {
            let widths = Self::widths(family);
            let h = widths
                .iter()
                .copied()
                .find(|&w| w >= self.longest)
                .unwrap_or(widths[widths.len() - 1]);
            if h != self.longest {
                self.warnings.push(format!(
                    "compressed lines unpack to at most {} bytes; assuming a {h}-byte head",
                    self.longest
                ));
            }
            return h;
        }
        // Only blank (`Z`) lines or no lines at all: guess from ESC i z width.
        let width = self
            .done
            .iter()
            .find_map(|p| p.info.map(|i| i.width_mm))
            .unwrap_or(0);
        let h = match family {
            Family::Pt if width > 24 => 70,
            Family::Pt => 16,
            Family::Ql if width > 62 => 162,
            Family::Ql => 90,
        };
        self.warnings
            .push(format!("no line shows the head width; assuming {h} bytes"));
        h
    }

    fn build_page(&mut self, index: usize, page: FinishedPage, head: usize) -> DecodedPage {
        let pins = head * 8;
        let dot_rows = if page.two_colour {
            page.rows
                .iter()
                .filter(|r| !matches!(r.colour, Colour::Red))
                .count()
        } else {
            page.rows.len()
        };
        // Lines as rows (width = pins), then transpose to wire orientation.
        let mut black = vec![0u8; dot_rows * head];
        let mut red = if page.two_colour {
            vec![0u8; dot_rows * head]
        } else {
            Vec::new()
        };
        let mut line = 0usize;
        for row in &page.rows {
            let data = &self.row_data[row.start..row.start + row.len];
            match row.colour {
                Colour::Mono | Colour::Black => {
                    if !row.zero {
                        black[line * head..line * head + data.len()].copy_from_slice(data);
                    }
                    if matches!(row.colour, Colour::Mono) {
                        line += 1;
                    }
                }
                Colour::Red => {
                    if !row.zero {
                        red[line * head..line * head + data.len()].copy_from_slice(data);
                    }
                    line += 1;
                }
            }
        }
        let to_wire = |rows: Vec<u8>| {
            Bitmap::from_packed(pins as u32, dot_rows as u32, rows)
                .map(|b| lines::transpose(&b))
                .unwrap_or_else(|| Bitmap::new(dot_rows as u32, pins as u32))
        };
        if let Some(info) = page.info {
            if info.raster_count as usize != dot_rows {
                self.warnings.push(format!(
                    "page {index}: ESC i z at byte {} declares {} raster lines, {} were sent",
                    page.info_offset, info.raster_count, dot_rows
                ));
            }
        }
        let pt = self.family == Some(Family::Pt);
        let expanded = page.expanded.unwrap_or(0);
        DecodedPage {
            wire: to_wire(black),
            red: page.two_colour.then(|| to_wire(red)),
            info: page.info,
            auto_cut: page.auto_cut,
            half_cut: pt && expanded & 0x04 != 0,
            chain: pt && page.expanded.is_some_and(|k| k & 0x08 == 0),
            high_res: expanded & 0x40 != 0,
            compressed: page.compressed,
            margin: page.margin,
            cut_every: page.cut_every,
            last: page.last,
            start: page.start,
            end: page.end,
        }
    }

    fn into_stream(self, head: usize, pages: Vec<DecodedPage>) -> Stream {
        Stream {
            family: self.family,
            head_bytes: head,
            pages,
            commands: self.commands,
            warnings: self.warnings,
            consumed: self.consumed,
            complete: self.complete,
        }
    }
}

/// Unpacked length of PackBits data, ignoring errors (for messages).
fn packbits_len(data: &[u8]) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < data.len() {
        let h = data[pos];
        pos += 1;
        match h {
            0..=127 => {
                n += usize::from(h) + 1;
                pos += usize::from(h) + 1;
            }
            128 => {}
            _ => {
                n += 257 - usize::from(h);
                pos += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brother::encode::{encode, Options};
    use crate::brother::{media, model};

    #[test]
    fn round_trip_small_pt_page() {
        let m = model::by_name("PT-P750W").unwrap();
        let g = media::geometry(m, "12").unwrap();
        let mut black = Bitmap::new(40, 70);
        black.fill_rect(3, 5, 10, 20, true);
        black.set(39, 69, true);
        let page = Page::new(black);
        let bytes = encode(m, "12", std::slice::from_ref(&page), &Options::default()).unwrap();
        let stream = decode(&bytes).unwrap();
        assert_eq!(stream.family, Some(Family::Pt));
        assert_eq!(stream.head_bytes, 16);
        assert_eq!(stream.pages.len(), 1);
        let p = &stream.pages[0];
        assert!(p.last && p.auto_cut && p.compressed && !p.chain);
        assert_eq!(p.label(&g), page);
        assert_eq!(p.ink_bits(), Some((29 + 5, 29 + 69)));
        assert!(!p.ink_outside(&g));
        assert!(stream.warnings.is_empty(), "{:?}", stream.warnings);
    }

    #[test]
    fn strict_errors_name_offsets() {
        let e = decode(&[0, 0, 0x1B, 0x40, 0x99]).unwrap_err();
        assert_eq!((e.offset, e.code()), (4, "unknown_command"));
        let e = decode(&[0x1B, 0x69, 0x7A, 0x84]).unwrap_err();
        assert_eq!((e.offset, e.code()), (0, "truncated_command"));
        let e = decode(&[b'Z', 0x1A]).unwrap_err();
        assert_eq!((e.offset, e.code()), (0, "zero_line_without_compression"));
        let e = decode(&[b'M', 0x01]).unwrap_err();
        assert_eq!(e.code(), "bad_compression_mode");
        let e = decode(&[0; 10]).unwrap_err();
        assert_eq!((e.offset, e.code()), (10, "no_pages"));
        let e = decode(&[]).unwrap_err();
        assert_eq!(e.code(), "no_pages");
        // G with a 15-byte line.
        let mut s = vec![b'G', 15, 0];
        s.extend([0u8; 15]);
        s.push(0x1A);
        let e = decode(&s).unwrap_err();
        assert_eq!((e.offset, e.code()), (0, "wrong_line_length"));
        // Bad packbits: literal header wants 4 bytes, 1 given.
        let e = decode(&[b'M', 2, b'G', 2, 0, 0x03, 0x01, 0x1A]).unwrap_err();
        assert_eq!((e.offset, e.code()), (2, "bad_packbits"));
        // Missing print command.
        let mut s = vec![b'G', 16, 0];
        s.extend([0u8; 16]);
        let e = decode(&s).unwrap_err();
        assert_eq!((e.offset, e.code()), (19, "missing_print_command"));
        // Last page ends with 0x0C.
        s.push(0x0C);
        let e = decode(&s).unwrap_err();
        assert_eq!((e.offset, e.code()), (19, "missing_print_command"));
        // Mixed families.
        let mut s = vec![b'G', 16, 0];
        s.extend([0u8; 16]);
        s.extend([b'g', 0, 90]);
        s.extend([0u8; 90]);
        let e = decode(&s).unwrap_err();
        assert_eq!((e.offset, e.code()), (19, "mixed_families"));
    }

    #[test]
    fn partial_decoding_stops_quietly() {
        let m = model::by_name("QL-820NWB").unwrap();
        let pages = [
            Page::new(Bitmap::new(200, 696)),
            Page::new(Bitmap::new(210, 696)),
        ];
        let bytes = encode(m, "62", &pages, &Options::default()).unwrap();
        let cut = bytes.len() - 50;
        let s = decode_partial(&bytes[..cut], Some(m)).unwrap();
        assert_eq!(s.pages.len(), 1);
        assert!(!s.complete);
        assert_eq!(bytes[s.consumed - 1], 0x0C);
        assert!(decode(&bytes[..cut]).is_err());
        let s = decode_partial(&bytes, Some(m)).unwrap();
        assert!(s.complete && s.pages.len() == 2);
    }

    #[test]
    fn commands_serialise_with_name_and_args() {
        let cmds = vec![
            Command {
                offset: 0,
                cmd: Cmd::Invalidate { count: 100 },
            },
            Command {
                offset: 100,
                cmd: Cmd::Initialize,
            },
        ];
        let json = serde_json::to_string(&cmds).unwrap();
        assert_eq!(
            json,
            r#"[{"offset":0,"name":"invalidate","args":{"count":100}},{"offset":100,"name":"initialize"}]"#
        );
    }
}
