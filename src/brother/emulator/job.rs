//! One job inside the emulator: framing the arriving stream, checking and
//! printing each page as its print command arrives, and the end of the job.
//!
//! **Page by page.** The stream is cut into commands by [`frame`] (it only
//! knows command lengths, so a `0x0C` inside raster data is never taken for
//! a print command). When a page's print command arrives, that page is
//! decoded on its own with the strict decoder: the settings that carry over
//! from earlier pages (`ESC i M`, `ESC i A`, `ESC i K`, `ESC i d`, `M`, reset
//! by `ESC @`) are replayed in front of the page's bytes, and a `0x0C` is
//! decoded as `0x1A` (the decoder wants a finished stream). The page is then
//! checked against the loaded medium (`check_page`) and printed. At the end
//! the whole stream is decoded again, strictly; that decode is the verdict
//! on the stream.

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use super::{feed_mm, write_png, Emulator, JobOutcome, JobRecord, PrintedPage, Speed};
use crate::brother::decode::{self, Cmd, Command, DecodeError, DecodedPage};
use crate::brother::media::{Geometry, MediaKind};
use crate::brother::model::{Family, Model};
use crate::brother::status::{Errors, Problem};

/// Bytes after which the `drop` fault cuts a connection.
pub const DEFAULT_DROP_AFTER: usize = 1024;

/// Why the emulator stopped a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// What a printer reports in its status (wrong media, cover open ...).
    Printer { problem: Problem, detail: String },
    /// The stream is malformed or asks for something the model cannot do.
    Stream(String),
    /// The `drop` fault cut the connection after `after` bytes.
    Dropped { after: usize },
    /// The output directory failed.
    Io(String),
}

impl Rejection {
    /// Error bits the next status request reports.
    fn error_bits(&self) -> Errors {
        match self {
            Rejection::Printer { problem, .. } => match problem {
                Problem::WrongMedia => Errors::WRONG_MEDIA,
                Problem::CoverOpen => Errors::COVER_OPEN,
                Problem::NoMedia => Errors::NO_MEDIA,
                _ => Errors::SYSTEM_ERROR,
            },
            Rejection::Stream(_) => Errors::COMMUNICATION_ERROR,
            Rejection::Dropped { .. } | Rejection::Io(_) => Errors::NONE,
        }
    }

    fn outcome(&self) -> JobOutcome {
        match self {
            Rejection::Printer { problem, detail } => JobOutcome::Rejected {
                code: problem.code(),
                reason: detail.clone(),
            },
            Rejection::Stream(reason) => JobOutcome::Rejected {
                code: "job_rejected",
                reason: reason.clone(),
            },
            Rejection::Dropped { .. } => JobOutcome::Dropped,
            Rejection::Io(reason) => JobOutcome::Rejected {
                code: "io_error",
                reason: reason.clone(),
            },
        }
    }
}

/// What [`frame`] found at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole command of `len` bytes.
    Command { len: usize, kind: Kind },
    /// The command is not complete yet.
    Incomplete,
    /// No command starts with these bytes.
    Unknown,
}

/// The commands the job loop cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `0x0C` (`last` false) or `0x1A`.
    Print {
        last: bool,
    },
    /// `ESC @`: settings reset.
    Init,
    /// A setting that carries over to later pages (slot index in `Carry`).
    Setting(usize),
    Other,
}

/// Length of the command at `buf[at..]` (same table as the decoder).
pub(crate) fn frame(buf: &[u8], at: usize) -> Frame {
    let rest = &buf[at.min(buf.len())..];
    let Some(&b) = rest.first() else {
        return Frame::Incomplete;
    };
    let need = |len: usize, kind: Kind| {
        if rest.len() >= len {
            Frame::Command { len, kind }
        } else {
            Frame::Incomplete
        }
    };
    let byte = |i: usize| rest.get(i).copied();
    match b {
        0x00 => need(1, Kind::Other),
        0x0C => need(1, Kind::Print { last: false }),
        0x1A => need(1, Kind::Print { last: true }),
        b'M' => need(2, Kind::Setting(4)),
        b'Z' => need(1, Kind::Other),
        b'G' => match (byte(1), byte(2)) {
            (Some(lo), Some(hi)) => {
                need(3 + usize::from(u16::from_le_bytes([lo, hi])), Kind::Other)
            }
            _ => Frame::Incomplete,
        },
        b'g' | b'w' => match byte(2) {
            Some(n) => need(3 + usize::from(n), Kind::Other),
            None => Frame::Incomplete,
        },
        0x1B => match byte(1) {
            None => Frame::Incomplete,
            Some(b'@') => need(2, Kind::Init),
            Some(b'i') => match byte(2) {
                None => Frame::Incomplete,
                Some(b'M') => need(4, Kind::Setting(0)),
                Some(b'A') => need(4, Kind::Setting(1)),
                Some(b'K') => need(4, Kind::Setting(2)),
                Some(b'd') => need(5, Kind::Setting(3)),
                Some(b'a' | b'!' | b'X' | b'D' | b'R') => need(4, Kind::Other),
                Some(b'S') => need(3, Kind::Other),
                Some(b'z') => need(13, Kind::Other),
                Some(b'k') => need(6, Kind::Other),
                Some(b'c') => need(8, Kind::Other),
                Some(b'U') => match byte(3) {
                    None => Frame::Incomplete,
                    Some(b'J') => need(4 + 14, Kind::Other),
                    Some(b'w') => need(4 + 128, Kind::Other),
                    Some(_) => Frame::Unknown,
                },
                Some(_) => Frame::Unknown,
            },
            Some(_) => Frame::Unknown,
        },
        _ => Frame::Unknown,
    }
}

/// The last value of each carried setting: `ESC i M`, `ESC i A`, `ESC i K`,
/// `ESC i d`, `M`.
#[derive(Clone, Debug, Default)]
struct Carry([Option<Vec<u8>>; 5]);

impl Carry {
    fn replay(&self) -> Vec<u8> {
        self.0.iter().flatten().flatten().copied().collect()
    }
}

/// A job in progress.
pub(crate) struct JobRun {
    emu: Arc<Emulator>,
    seq: u64,
    model: &'static Model,
    geometry: Geometry,
    speed: Speed,
    drop_after: Option<usize>,
    part: Option<File>,
    part_path: PathBuf,
    bin_path: PathBuf,
    received: usize,
    /// Bytes since the last print command; `page_offset` is where they
    /// start in the job.
    page_buf: Vec<u8>,
    page_offset: usize,
    scan: usize,
    carry: Carry,
    carry_now: Carry,
    /// (lines, pins, ink) of each printed page, for the final check.
    printed: Vec<(u32, u32, u64)>,
    ended: bool,
}

impl JobRun {
    pub(crate) fn new(
        emu: Arc<Emulator>,
        seq: u64,
        geometry: Geometry,
        speed: Speed,
        drop_after: Option<usize>,
    ) -> Result<JobRun, String> {
        emu.ensure_out_dir()?;
        let part_path = emu.out_dir.join(format!(".job-{seq:06}.bin.part"));
        let bin_path = emu.out_dir.join(format!("job-{seq:06}.bin"));
        let part = File::create(&part_path)
            .map_err(|e| format!("creating {}: {e}", part_path.display()))?;
        Ok(JobRun {
            model: emu.model,
            emu,
            seq,
            geometry,
            speed,
            drop_after,
            part: Some(part),
            part_path,
            bin_path,
            received: 0,
            page_buf: Vec::new(),
            page_offset: 0,
            scan: 0,
            carry: Carry::default(),
            carry_now: Carry::default(),
            printed: Vec::new(),
            ended: false,
        })
    }

    /// Bytes the job still takes before the `drop` fault cuts it.
    pub(crate) fn bytes_until_drop(&self) -> Option<usize> {
        self.drop_after
            .map(|limit| limit.saturating_sub(self.received))
    }

    /// Takes the next bytes of the stream; prints every page they complete.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), Rejection> {
        let (take, dropping) = match self.drop_after {
            Some(limit) if self.received + chunk.len() >= limit => {
                (limit.saturating_sub(self.received).min(chunk.len()), true)
            }
            _ => (chunk.len(), false),
        };
        let data = &chunk[..take];
        if let Some(part) = self.part.as_mut() {
            part.write_all(data)
                .map_err(|e| Rejection::Io(format!("{}: {e}", self.part_path.display())))?;
        }
        self.received += take;
        self.page_buf.extend_from_slice(data);
        self.process()?;
        if dropping {
            return Err(Rejection::Dropped {
                after: self.received,
            });
        }
        Ok(())
    }

    /// Frames `page_buf` and prints completed pages.
    fn process(&mut self) -> Result<(), Rejection> {
        loop {
            match frame(&self.page_buf, self.scan) {
                Frame::Incomplete => return Ok(()),
                Frame::Unknown => return Err(self.unknown_command()),
                Frame::Command { len, kind } => {
                    let end = self.scan + len;
                    match kind {
                        Kind::Init => self.carry_now = Carry::default(),
                        Kind::Setting(slot) => {
                            self.carry_now.0[slot] = Some(self.page_buf[self.scan..end].to_vec())
                        }
                        Kind::Print { last } => {
                            let page: Vec<u8> = self.page_buf.drain(..end).collect();
                            let offset = self.page_offset;
                            self.page_offset += end;
                            self.scan = 0;
                            self.print_page(&page, offset, last)?;
                            self.carry = self.carry_now.clone();
                            continue;
                        }
                        Kind::Other => {}
                    }
                    self.scan = end;
                }
            }
        }
    }

    /// The decoder's precise message for bytes the framer does not know.
    fn unknown_command(&self) -> Rejection {
        let mut synth = self.carry.replay();
        let base = synth.len();
        synth.extend_from_slice(&self.page_buf);
        match decode::decode_partial(&synth, Some(self.model)) {
            Err(e) => Rejection::Stream(self.remap(e, base).to_string()),
            Ok(_) => Rejection::Stream(format!(
                "unknown command at byte {}",
                self.page_offset + self.scan
            )),
        }
    }

    /// A decode error of the page-local stream, with the job's offsets.
    fn remap(&self, e: DecodeError, base: usize) -> DecodeError {
        DecodeError {
            offset: self.page_offset + e.offset.saturating_sub(base),
            kind: e.kind,
        }
    }

    fn print_page(&mut self, bytes: &[u8], offset: usize, last: bool) -> Result<(), Rejection> {
        let mut synth = self.carry.replay();
        let base = synth.len();
        synth.extend_from_slice(bytes);
        if let Some(b) = synth.last_mut() {
            *b = 0x1A;
        }
        let stream = decode::decode_for(&synth, self.model).map_err(|e| {
            Rejection::Stream(
                DecodeError {
                    offset: offset + e.offset.saturating_sub(base),
                    kind: e.kind,
                }
                .to_string(),
            )
        })?;
        let Some(page) = stream.pages.last() else {
            return Err(Rejection::Stream(format!(
                "the print command at byte {} ends no page",
                offset + bytes.len() - 1
            )));
        };
        check_page(self.model, &self.geometry, page, &stream.commands)?;

        let lines = page.wire.width();
        if let Some(wait) =
            Emulator::print_duration(self.model, self.speed, lines, page.margin, page.high_res)
        {
            self.emu.set_printing(true);
            std::thread::sleep(wait);
            self.emu.set_printing(false);
        }
        let label = page.label(&self.geometry);
        let seq = self.emu.next_page_seq();
        let png = self.emu.out_dir.join(format!("{seq:06}.png"));
        self.emu.ensure_out_dir().map_err(Rejection::Io)?;
        write_png(&png, &label).map_err(Rejection::Io)?;
        self.printed
            .push((lines, page.wire.height(), page.wire.count_ink()));
        self.emu.record_page(PrintedPage {
            seq,
            job: self.seq,
            index: self.printed.len() - 1,
            png,
            page: label,
            media_id: self.geometry.media.id.to_string(),
            auto_cut: page.auto_cut,
            half_cut: page.half_cut,
            chain: page.chain,
            high_res: page.high_res,
            compressed: page.compressed,
            last,
            length_mm: feed_mm(self.model, lines, page.margin, page.high_res),
            ink_outside: page.ink_outside(&self.geometry),
        });
        Ok(())
    }

    /// Ends the job normally: the whole stream must decode strictly and give
    /// the pages that were printed.
    pub(crate) fn finish(mut self) -> Result<(), Rejection> {
        self.part = None;
        let verdict = match fs::read(&self.part_path) {
            Err(e) => Err(Rejection::Io(format!("{}: {e}", self.part_path.display()))),
            Ok(all) => match decode::decode_for(&all, self.model) {
                Err(e) => Err(Rejection::Stream(e.to_string())),
                Ok(stream) => {
                    let decoded: Vec<(u32, u32, u64)> = stream
                        .pages
                        .iter()
                        .map(|p| (p.wire.width(), p.wire.height(), p.wire.count_ink()))
                        .collect();
                    if decoded == self.printed {
                        Ok(())
                    } else {
                        Err(Rejection::Stream(format!(
                            "the stream decodes to {} pages as a whole but {} were printed \
                             page by page",
                            decoded.len(),
                            self.printed.len()
                        )))
                    }
                }
            },
        };
        match &verdict {
            Ok(()) => self.end(JobOutcome::Printed, Errors::NONE),
            Err(r) => self.end(r.outcome(), r.error_bits()),
        }
        verdict
    }

    /// Ends the job after `feed` failed.
    pub(crate) fn end_failed(mut self, rejection: &Rejection) {
        self.end(rejection.outcome(), rejection.error_bits());
    }

    /// Ends the job without finishing it.
    pub(crate) fn abort(mut self) {
        self.end(JobOutcome::Aborted, Errors::NONE);
    }

    /// Keeps the stream as `job-<seq>.bin` and records the job.
    fn end(&mut self, outcome: JobOutcome, error: Errors) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.part = None;
        let bin = match fs::rename(&self.part_path, &self.bin_path) {
            Ok(()) => Some(self.bin_path.clone()),
            Err(e) => {
                log::warn!("{}: {e}", self.part_path.display());
                None
            }
        };
        self.emu.finish_record(
            JobRecord {
                seq: self.seq,
                bin,
                bytes: self.received,
                pages: self.printed.len(),
                outcome,
            },
            error,
        );
    }
}

impl Drop for JobRun {
    fn drop(&mut self) {
        self.end(JobOutcome::Aborted, Errors::NONE);
    }
}

/// What a printer with `loaded` in it refuses in `page` (decoded for
/// `model`), beyond what the strict decoder already refused.
pub(crate) fn check_page(
    model: &Model,
    loaded: &Geometry,
    page: &DecodedPage,
    commands: &[Command],
) -> Result<(), Rejection> {
    let wrong = |detail: String| Rejection::Printer {
        problem: Problem::WrongMedia,
        detail,
    };
    let describe = loaded.media.describe();
    if let Some(info) = &page.info {
        if info.valid_flags & 0x04 != 0 && info.width_mm != loaded.status_width_mm {
            return Err(wrong(format!(
                "the job is for {} mm media (ESC i z), {describe} is loaded",
                info.width_mm
            )));
        }
        if info.valid_flags & 0x02 != 0 {
            let sent = match info.media_type {
                0x4A => 0x0A,
                0x4B => 0x0B,
                t => t,
            };
            // PT drivers send 0x00 ("auto") and 0x09 (high-res/draft) with
            // the type flag; neither names a medium.
            let names_a_medium = match model.family {
                Family::Pt => !matches!(sent, 0x00 | 0x09),
                Family::Ql => true,
            };
            if names_a_medium && sent != loaded.status_media_type {
                return Err(wrong(format!(
                    "the job is for media type 0x{:02X} (ESC i z), {describe} (type 0x{:02X}) \
                     is loaded",
                    info.media_type, loaded.status_media_type
                )));
            }
        }
        if info.valid_flags & 0x08 != 0 {
            let die_cut = loaded.media.kind == MediaKind::DieCut;
            let want = if die_cut { loaded.status_length_mm } else { 0 };
            if info.length_mm != want {
                return Err(wrong(format!(
                    "the job is for {} mm long labels (ESC i z), {describe} is loaded",
                    info.length_mm
                )));
            }
        }
    }
    if page.red.is_some() {
        if !model.two_colour {
            return Err(Rejection::Stream(format!(
                "two-colour raster lines (`w`) but the {} prints one colour",
                model.name
            )));
        }
        if !loaded.two_colour {
            return Err(wrong(format!(
                "a two-colour job but {describe} is loaded (needs the black/red roll)"
            )));
        }
    } else if loaded.two_colour {
        return Err(wrong(format!(
            "{describe} is loaded but the job is black-only (no two-colour lines)"
        )));
    }
    if page.compressed && !model.compression {
        return Err(Rejection::Stream(format!(
            "compressed raster lines (M 02) but the {} takes no compression",
            model.name
        )));
    }
    let zero_lines = commands
        .iter()
        .any(|c| matches!(c.cmd, Cmd::RasterRun { kind: 'Z', .. }));
    if zero_lines && !model.blank_line_cmd {
        return Err(Rejection::Stream(format!(
            "blank-line command `Z` but the {} does not take it",
            model.name
        )));
    }
    if page.high_res && model.high_res_dpi.is_none() {
        return Err(Rejection::Stream(format!(
            "high resolution (ESC i K bit 6) but the {} has none",
            model.name
        )));
    }
    let lines = page.wire.width() / if page.high_res { 2 } else { 1 };
    if lines > loaded.max_length_dots {
        return Err(Rejection::Stream(format!(
            "the label is {lines} lines long; the {} prints at most {} on {describe}",
            model.name, loaded.max_length_dots
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitmap::Bitmap;
    use crate::brother::encode::{self, Options, Page};
    use crate::brother::media;
    use crate::brother::model;

    #[test]
    fn frames_every_command_and_skips_data() {
        let f = |bytes: &[u8]| frame(bytes, 0);
        assert_eq!(f(&[]), Frame::Incomplete);
        assert_eq!(
            f(&[0x00]),
            Frame::Command {
                len: 1,
                kind: Kind::Other
            }
        );
        assert_eq!(
            f(&[0x0C]),
            Frame::Command {
                len: 1,
                kind: Kind::Print { last: false }
            }
        );
        assert_eq!(
            f(&[0x1A]),
            Frame::Command {
                len: 1,
                kind: Kind::Print { last: true }
            }
        );
        assert_eq!(
            f(&[0x1B, b'@']),
            Frame::Command {
                len: 2,
                kind: Kind::Init
            }
        );
        assert_eq!(f(&[0x1B, b'i', b'z', 0, 0]), Frame::Incomplete);
        assert_eq!(
            f(&[0x1B, b'i', b'd', 14, 0]),
            Frame::Command {
                len: 5,
                kind: Kind::Setting(3)
            }
        );
        assert_eq!(
            f(&[b'M', 2]),
            Frame::Command {
                len: 2,
                kind: Kind::Setting(4)
            }
        );
        // A G line whose data contains 0x0C and 0x1A is one command.
        let g = [b'G', 3, 0, 0x0C, 0x1A, 0x0C];
        assert_eq!(
            f(&g),
            Frame::Command {
                len: 6,
                kind: Kind::Other
            }
        );
        assert_eq!(f(&g[..5]), Frame::Incomplete);
        assert_eq!(
            f(&[b'g', 0, 2, 1, 2]),
            Frame::Command {
                len: 5,
                kind: Kind::Other
            }
        );
        assert_eq!(
            f(&[b'w', 1, 1, 0xFF]),
            Frame::Command {
                len: 4,
                kind: Kind::Other
            }
        );
        assert_eq!(f(&[0x1B, b'i', b'U', b'J']), Frame::Incomplete);
        assert_eq!(f(&[0x1B, b'i', b'q']), Frame::Unknown);
        assert_eq!(f(&[0x1B, b'x']), Frame::Unknown);
        assert_eq!(f(&[0x42]), Frame::Unknown);
    }

    /// The framer splits every encoder stream into the pages the decoder sees.
    #[test]
    fn framer_agrees_with_decoder_on_page_ends() {
        let m = model::by_name("QL-820NWB").unwrap();
        let g = media::geometry(m, "62").unwrap();
        let mut black = Bitmap::new(300, g.printable_dots);
        black.fill_rect(0, 0, 300, 40, true); // 0x0C/0x1A-looking bytes are likely
        for x in 0..300 {
            black.set(x, (x * 7) % g.printable_dots, true);
        }
        let pages = vec![Page::new(black.clone()), Page::new(black)];
        let stream = encode::encode(m, "62", &pages, &Options::default()).unwrap();
        let decoded = decode::decode_for(&stream, m).unwrap();
        let mut ends = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            match frame(&stream, at) {
                Frame::Command { len, kind } => {
                    if let Kind::Print { .. } = kind {
                        ends.push(at);
                    }
                    at += len;
                }
                other => panic!("{other:?} at {at}"),
            }
        }
        let want: Vec<usize> = decoded.pages.iter().map(|p| p.end).collect();
        assert_eq!(ends, want);
    }

    fn decoded(
        model_name: &str,
        media_id: &str,
        opts: &Options,
    ) -> (decode::Stream, &'static Model) {
        let m = model::by_name(model_name).unwrap();
        let g = media::geometry(m, media_id).unwrap();
        let len = g.fixed_length_dots.unwrap_or(g.min_length_dots.max(100));
        let black = Bitmap::new(len, g.printable_dots);
        let red = g.two_colour.then(|| Bitmap::new(len, g.printable_dots));
        let stream = encode::encode(m, media_id, &[Page { black, red }], opts).unwrap();
        (decode::decode_for(&stream, m).unwrap(), m)
    }

    #[test]
    fn accepts_the_encoder_output_for_the_loaded_medium() {
        for (name, id) in [
            ("PT-P750W", "12"),
            ("PT-P900W", "36"),
            ("QL-820NWB", "62red"),
            ("QL-820NWB", "29x90"),
            ("QL-1110NWB", "102"),
            ("QL-800", "62"),
        ] {
            let (s, m) = decoded(name, id, &Options::default());
            let g = media::geometry(m, id).unwrap();
            check_page(m, &g, &s.pages[0], &s.commands).unwrap();
        }
    }

    #[test]
    fn rejects_what_a_printer_rejects() {
        let (s, m) = decoded("PT-P750W", "12", &Options::default());
        let g18 = media::geometry(m, "18").unwrap();
        let err = check_page(m, &g18, &s.pages[0], &s.commands).unwrap_err();
        assert!(
            matches!(&err, Rejection::Printer { problem: Problem::WrongMedia, detail } if detail.contains("12 mm")),
            "{err:?}"
        );
        // Die-cut job on an endless roll and vice versa.
        let (s, m) = decoded("QL-820NWB", "29x90", &Options::default());
        let g29 = media::geometry(m, "29").unwrap();
        assert!(check_page(m, &g29, &s.pages[0], &s.commands).is_err());
        let g62x29 = media::geometry(m, "62x29").unwrap();
        assert!(check_page(m, &g62x29, &s.pages[0], &s.commands).is_err());
        // Black-only job on the red roll, two-colour job on a black roll.
        let (s, m) = decoded("QL-820NWB", "62", &Options::default());
        let red = media::geometry(m, "62red").unwrap();
        assert!(check_page(m, &red, &s.pages[0], &s.commands).is_err());
        let (s, m) = decoded("QL-820NWB", "62red", &Options::default());
        let black = media::geometry(m, "62").unwrap();
        assert!(check_page(m, &black, &s.pages[0], &s.commands).is_err());
        // A compressed stream on a model without compression.
        let (s, _) = decoded(
            "QL-820NWB",
            "62",
            &Options {
                compress: Some(true),
                ..Options::default()
            },
        );
        let ql800 = model::by_name("QL-800").unwrap();
        let g = media::geometry(ql800, "62").unwrap();
        let err = check_page(ql800, &g, &s.pages[0], &s.commands).unwrap_err();
        assert!(
            matches!(&err, Rejection::Stream(r) if r.contains("compression")),
            "{err:?}"
        );
    }
}
