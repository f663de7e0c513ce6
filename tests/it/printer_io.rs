//! Printer I/O end to end: the emulator (in-process, over TCP + SNMP, and
//! as the `labelhub emulate` binary), the TCP, USB and directory transports,
//! and every fault the emulator simulates. Loopback only; no sleeps for
//! synchronisation (the emulator's `wait_pages`/`wait_jobs`, the transport's
//! own completion and polls with a deadline are used instead).

// Test code: helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use labelhub::bitmap::Bitmap;
use labelhub::brother::decode;
use labelhub::brother::emulator::{self, Emulator, EmulatorConfig, Fault, JobOutcome, Speed};
use labelhub::brother::encode::{self, JobEncoder, Options, Page};
use labelhub::brother::media::{self, Geometry};
use labelhub::brother::model::{self, Model};
use labelhub::brother::snmp;
use labelhub::brother::status::{self, Phase, Problem, StatusType};
use labelhub::brother::transport::{self, OpenCtx, Transport, TransportError};

const WAIT: Duration = Duration::from_secs(20);

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("labelhub-io-{tag}-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// xorshift: reproducible pseudo-random bits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bitmap(&mut self, width: u32, height: u32) -> Bitmap {
        let stride = (width as usize).div_ceil(8);
        let data = (0..stride * height as usize)
            .map(|_| self.next() as u8)
            .collect();
        Bitmap::from_packed(width, height, data).unwrap()
    }
}

fn pt750() -> &'static Model {
    model::by_name("PT-P750W").unwrap()
}

/// A random page that fits `g` (`len` lines unless the medium fixes it).
fn random_page(rng: &mut Rng, g: &Geometry, len: u32) -> Page {
    let width = g.fixed_length_dots.unwrap_or(len.max(g.min_length_dots));
    let black = rng.bitmap(width, g.printable_dots);
    let red = g.two_colour.then(|| {
        // Red only where black is not: the printer cannot print both.
        let red = rng.bitmap(width, g.printable_dots);
        let data = red
            .as_bytes()
            .iter()
            .zip(black.as_bytes())
            .map(|(&r, &b)| r & !b)
            .collect();
        Bitmap::from_packed(width, g.printable_dots, data).unwrap()
    });
    Page { black, red }
}

fn emulator(model: &'static Model, media_id: &str, dir: &Path) -> Arc<Emulator> {
    Emulator::new(EmulatorConfig {
        model,
        media_id: media_id.to_string(),
        out_dir: dir.to_path_buf(),
        speed: Speed::Instant,
        fault: None,
    })
    .unwrap()
}

/// One page on 12 mm tape with default options, as [`send`].
fn send_one(
    t: &mut dyn Transport,
    model: &'static Model,
    page: &Page,
) -> Result<Vec<u8>, TransportError> {
    send(
        t,
        model,
        "12",
        std::slice::from_ref(page),
        &Options::default(),
    )
}

/// Sends `pages` as one job the way the hub does: header, then page by page.
fn send(
    t: &mut dyn Transport,
    model: &'static Model,
    media_id: &str,
    pages: &[Page],
    opts: &Options,
) -> Result<Vec<u8>, TransportError> {
    let mut enc = JobEncoder::new(model, media_id, opts.clone()).unwrap();
    let mut stream = enc.header();
    let mut chunks = vec![stream.clone()];
    for (i, page) in pages.iter().enumerate() {
        let bytes = enc.page(page, i + 1 == pages.len()).unwrap();
        stream.extend_from_slice(&bytes);
        chunks.push(bytes);
    }
    t.begin(stream.len())?;
    for chunk in &chunks {
        if let Err(e) = t.write(chunk) {
            t.abort();
            return Err(e);
        }
    }
    t.finish()?;
    Ok(stream)
}

fn encode_job(model: &'static Model, media_id: &str, pages: &[Page]) -> Vec<u8> {
    encode::encode(model, media_id, pages, &Options::default()).unwrap()
}

fn ctx(dir: &Path, key: &str) -> OpenCtx {
    OpenCtx {
        data_dir: dir.to_path_buf(),
        printer_key: key.to_string(),
    }
}

// ---------------------------------------------------------------------------
// The emulator prints what was encoded
// ---------------------------------------------------------------------------

/// Every model/media pair, varying compression and high resolution: each
/// printed page (in memory and as PNG) equals its input.
#[test]
fn emulator_prints_every_model_media_pair_exactly() {
    let dir = TempDir::new("pairs");
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut pairs = 0;
    for (mi, m) in model::all().iter().enumerate() {
        let emu = emulator(m, emulator::default_media(m), &dir.path().join(m.name));
        let mut t = emu.transport();
        for (di, medium) in media::for_model(m).enumerate() {
            let g = media::geometry(m, medium.id).unwrap();
            emu.set_media(medium.id).unwrap();
            let variant = mi + di;
            let opts = Options {
                auto_cut: m.cutter,
                compress: Some(m.compression && variant % 2 == 0),
                // Heat-shrink tube refuses high resolution.
                high_res: m.high_res_dpi.is_some()
                    && medium.kind != media::MediaKind::HeatShrink
                    && variant % 3 == 0,
                ..Options::default()
            };
            // Two pages on tape and rolls; one on (large, fixed-size) die-cut labels.
            let mut pages = vec![random_page(&mut rng, &g, g.min_length_dots + 7)];
            if g.fixed_length_dots.is_none() {
                pages.push(random_page(&mut rng, &g, g.min_length_dots + 1));
            }
            let before = emu.printed().len();
            let stream = send(t.as_mut(), m, medium.id, &pages, &opts)
                .unwrap_or_else(|e| panic!("{} {}: {e}", m.name, medium.id));
            let printed = emu.printed();
            assert_eq!(
                printed.len(),
                before + pages.len(),
                "{} {}",
                m.name,
                medium.id
            );
            for (page, out) in pages.iter().zip(&printed[before..]) {
                assert_eq!(&out.page, page, "{} {} {opts:?}", m.name, medium.id);
                assert_eq!(
                    &emulator::read_png(&out.png).unwrap(),
                    page,
                    "{} {} png",
                    m.name,
                    medium.id
                );
                assert!(!out.ink_outside);
                assert_eq!(out.high_res, opts.high_res);
            }
            let job = emu.jobs().pop().unwrap();
            assert_eq!(job.outcome, JobOutcome::Printed, "{} {}", m.name, medium.id);
            assert_eq!(fs::read(job.bin.unwrap()).unwrap(), stream);
            pairs += 1;
        }
    }
    assert!(pairs > 150, "only {pairs} pairs");
}

/// The reference streams made by ptouch and brother_ql (tests/data/vectors)
/// print on the emulator: real printers take them, so must the emulator.
#[test]
fn library_reference_streams_print_on_the_emulator() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors");
    let mut seen = 0;
    for entry in fs::read_dir(&vectors).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".meta.json") else {
            continue;
        };
        let meta: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let m = model::by_name(meta["model"].as_str().unwrap()).unwrap();
        let media_id = [&meta["label"], &meta["tape"]]
            .iter()
            .find_map(|v| match v {
                serde_json::Value::String(id) => Some(id.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .unwrap();
        let stream = fs::read(vectors.join(format!("{stem}.bin"))).unwrap();
        let dir = TempDir::new("vectors");
        let emu = emulator(m, &media_id, dir.path());
        let mut t = emu.transport();
        t.begin(stream.len()).unwrap();
        t.write(&stream)
            .and_then(|()| t.finish())
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let g = media::geometry(m, &media_id).unwrap();
        let want = decode::decode_for(&stream, m).unwrap();
        let printed = emu.printed();
        assert_eq!(printed.len(), want.pages.len(), "{stem}");
        for (page, out) in want.pages.iter().zip(&printed) {
            assert_eq!(
                emulator::read_png(&out.png).unwrap(),
                page.label(&g),
                "{stem}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 7, "only {seen} vectors");
}

#[test]
fn pages_print_one_by_one_as_their_print_command_arrives() {
    let dir = TempDir::new("pagewise");
    let m = model::by_name("QL-820NWB").unwrap();
    let emu = emulator(m, "62", dir.path());
    let g = media::geometry(m, "62").unwrap();
    let mut rng = Rng(7);
    let pages: Vec<Page> = (0..3).map(|_| random_page(&mut rng, &g, 200)).collect();
    let mut enc = JobEncoder::new(m, "62", Options::default()).unwrap();
    let mut t = emu.transport();
    t.begin(0).unwrap();
    t.write(&enc.header()).unwrap();
    for (i, page) in pages.iter().enumerate() {
        let bytes = enc.page(page, i == 2).unwrap();
        // Split inside the page: nothing prints until its print command.
        let (a, b) = bytes.split_at(bytes.len() / 2);
        t.write(a).unwrap();
        assert_eq!(emu.printed().len(), i, "page {i} printed too early");
        t.write(b).unwrap();
        assert_eq!(
            emu.printed().len(),
            i + 1,
            "page {i} not printed at its end"
        );
        let png = dir.path().join(format!("{:06}.png", i + 1));
        assert_eq!(emulator::read_png(&png).unwrap(), *page);
    }
    t.finish().unwrap();
    let events = fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 4, "{events}");
    assert!(events
        .lines()
        .last()
        .unwrap()
        .contains("\"outcome\":\"printed\""));
}

#[test]
fn emulator_rejects_what_a_printer_rejects() {
    let dir = TempDir::new("reject");
    let m = pt750();
    let emu = emulator(m, "12", dir.path());
    let g12 = media::geometry(m, "12").unwrap();
    let mut rng = Rng(99);
    let page = random_page(&mut rng, &g12, 80);

    // An 18 mm job with 12 mm loaded: wrong media, reported once by status.
    let g18 = media::geometry(m, "18").unwrap();
    let page18 = random_page(&mut rng, &g18, 80);
    let mut t = emu.transport();
    let err = send(t.as_mut(), m, "18", &[page18], &Options::default()).unwrap_err();
    assert_eq!(err.code(), "wrong_media", "{err}");
    assert!(err.to_string().contains("18 mm"), "{err}");
    let s = t.status().unwrap();
    assert_eq!(s.status_type, StatusType::Error);
    assert_eq!(s.problem(), Some(Problem::WrongMedia));
    assert_eq!(t.status().unwrap().problem(), None, "the error is one-shot");

    // A raster line the head does not have (QL line on a PT head).
    let ql = model::by_name("QL-820NWB").unwrap();
    let gql = media::geometry(ql, "62").unwrap();
    let ql_stream = encode_job(ql, "62", &[random_page(&mut rng, &gql, 160)]);
    t.begin(ql_stream.len()).unwrap();
    let err = t.write(&ql_stream).unwrap_err();
    assert_eq!(err.code(), "job_rejected", "{err}");
    assert!(err.to_string().contains("byte"), "names the offset: {err}");
    assert_eq!(
        t.status().unwrap().problem(),
        Some(Problem::CommunicationError)
    );

    // Garbage after a good page: the first page prints, then the job fails.
    let mut stream = encode_job(m, "12", &[page.clone(), page.clone()]);
    let second_page = decode::decode(&stream).unwrap().pages[0].end;
    stream.truncate(second_page + 1);
    stream.extend_from_slice(&[0x1B, b'i', b'q', 0x00]);
    let printed_before = emu.printed().len();
    t.begin(stream.len()).unwrap();
    let err = t.write(&stream).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("byte {}", second_page + 1)),
        "{err}"
    );
    assert_eq!(emu.printed().len(), printed_before + 1);

    // A job that ends with 0x0C is left open: its page prints, the job fails.
    let mut open_job = encode_job(m, "12", &[page.clone(), page]);
    let first_end = decode::decode(&open_job).unwrap().pages[0].end;
    open_job.truncate(first_end + 1);
    let printed_before = emu.printed().len();
    t.begin(open_job.len()).unwrap();
    t.write(&open_job).unwrap();
    let err = t.finish().unwrap_err();
    assert_eq!(err.code(), "job_rejected");
    assert!(err.to_string().contains("missing print command"), "{err}");
    assert_eq!(emu.printed().len(), printed_before + 1);
    let jobs = emu.jobs();
    assert!(matches!(
        &jobs.last().unwrap().outcome,
        JobOutcome::Rejected {
            code: "job_rejected",
            ..
        }
    ));
}

#[test]
fn emulator_faults_in_process_and_by_control_file() {
    let dir = TempDir::new("faults");
    let m = pt750();
    let data = ctx(dir.path(), "office/p750w");
    let mut t = transport::open("emulator:?media=12", m, &data).unwrap();
    let out = dir.path().join("emulator").join("office_p750w");
    let emu_dir_fault = out.join("fault");
    let g = media::geometry(m, "12").unwrap();
    let page = random_page(&mut Rng(5), &g, 60);
    let ok = |t: &mut Box<dyn Transport>| send_one(t.as_mut(), m, &page);

    assert_eq!(
        t.status().unwrap().loaded_media_id(m.family).as_deref(),
        Some("12")
    );
    ok(&mut t).unwrap();
    assert!(out.join("000001.png").exists());

    for (fault, code) in [
        ("cover_open", "cover_open"),
        ("no_media", "no_media"),
        ("offline", "printer_offline"),
        ("media=18", "wrong_media"),
        ("drop=500", "connection_dropped"),
    ] {
        fs::write(&emu_dir_fault, format!("{fault}\n")).unwrap();
        let err = ok(&mut t).unwrap_err();
        assert_eq!(err.code(), code, "{fault}: {err}");
        match fault {
            "offline" => assert_eq!(t.status().unwrap_err().code(), "printer_offline"),
            "media=18" => {
                let s = t.status().unwrap();
                assert_eq!(s.loaded_media_id(m.family).as_deref(), Some("18"));
            }
            "cover_open" => assert_eq!(t.status().unwrap().problem(), Some(Problem::CoverOpen)),
            "no_media" => {
                let s = t.status().unwrap();
                assert_eq!(s.problem(), Some(Problem::NoMedia));
                assert_eq!(s.media_width_mm, 0);
            }
            _ => {}
        }
    }
    // An empty control file clears it; the API takes over when it is gone.
    fs::write(&emu_dir_fault, "").unwrap();
    ok(&mut t).unwrap();
    fs::remove_file(&emu_dir_fault).unwrap();
    // The same emulator is found again through the registry.
    let emu = Emulator::shared(EmulatorConfig {
        model: m,
        media_id: "12".into(),
        out_dir: out.clone(),
        speed: Speed::Instant,
        fault: None,
    })
    .unwrap();
    emu.set_fault(Some(Fault::CoverOpen)).unwrap();
    assert_eq!(ok(&mut t).unwrap_err().code(), "cover_open");
    emu.set_fault(None).unwrap();
    emu.set_media("24").unwrap();
    assert_eq!(ok(&mut t).unwrap_err().code(), "wrong_media");
    emu.set_media("12").unwrap();
    ok(&mut t).unwrap();
    // Dropped job: the part of it before the drop point is kept as a stream.
    let dropped = emu
        .jobs()
        .into_iter()
        .find(|j| j.outcome == JobOutcome::Dropped)
        .unwrap();
    assert_eq!(dropped.bytes, 500);
    assert_eq!(fs::metadata(dropped.bin.unwrap()).unwrap().len(), 500);
}

#[test]
fn real_speed_takes_as_long_as_the_printer() {
    let dir = TempDir::new("speed");
    let m = pt750();
    let emu = Emulator::new(EmulatorConfig {
        model: m,
        media_id: "12".into(),
        out_dir: dir.path().to_path_buf(),
        speed: Speed::Real,
        fault: None,
    })
    .unwrap();
    let g = media::geometry(m, "12").unwrap();
    // 20 mm at 180 dpi.
    let page = random_page(&mut Rng(3), &g, 142);
    let stream = encode_job(m, "12", &[page]);
    let expected = Emulator::print_duration(m, Speed::Real, 142, 14, false).unwrap();
    let expected_100mm = Emulator::print_duration(m, Speed::Real, 709, 0, false).unwrap();
    assert!(
        (expected_100mm.as_secs_f64() - 100.0 / f64::from(m.speed_mm_s)).abs() < 0.01,
        "{expected_100mm:?}"
    );
    let printer = {
        let emu = Arc::clone(&emu);
        std::thread::spawn(move || {
            let mut t = emu.transport();
            let start = Instant::now();
            t.begin(stream.len()).unwrap();
            t.write(&stream).unwrap();
            t.finish().unwrap();
            start.elapsed()
        })
    };
    // While the page comes out the printer says so.
    let deadline = Instant::now() + WAIT;
    let mut saw_printing = false;
    while Instant::now() < deadline && !printer.is_finished() {
        if emu.peek_status().unwrap().phase == Phase::Printing {
            saw_printing = true;
            break;
        }
        std::thread::yield_now();
    }
    let elapsed = printer.join().unwrap();
    assert!(saw_printing, "status never showed printing");
    assert!(elapsed >= expected, "{elapsed:?} < {expected:?}");
    assert!(elapsed < expected + Duration::from_secs(5), "{elapsed:?}");
}

// ---------------------------------------------------------------------------
// TCP + SNMP against the network emulator
// ---------------------------------------------------------------------------

fn served(model: &'static Model, media_id: &str, dir: &Path) -> (Arc<Emulator>, emulator::Server) {
    let emu = emulator(model, media_id, dir);
    let server = emu.serve("127.0.0.1:0".parse().unwrap(), "public").unwrap();
    (emu, server)
}

fn tcp_uri(addr: SocketAddr) -> String {
    format!("tcp://{addr}?snmp_port={}", addr.port())
}

#[test]
fn tcp_transport_prints_on_the_network_emulator() {
    let dir = TempDir::new("tcp");
    let m = model::by_name("QL-820NWB").unwrap();
    let (emu, server) = served(m, "62red", dir.path());
    let mut t = transport::open(&tcp_uri(server.addr()), m, &ctx(dir.path(), "x")).unwrap();
    assert_eq!(t.describe(), format!("tcp://{}", server.addr()));

    // Status over SNMP: the loaded roll, ready.
    let s = t.status().unwrap();
    assert_eq!(s.loaded_media_id(m.family).as_deref(), Some("62red"));
    assert_eq!(s.problem(), None);

    let g = media::geometry(m, "62red").unwrap();
    let mut rng = Rng(11);
    let pages: Vec<Page> = (0..3).map(|_| random_page(&mut rng, &g, 300)).collect();
    let stream = send(t.as_mut(), m, "62red", &pages, &Options::default()).unwrap();
    // `finish` returns once the printer closed its side: the job is done.
    assert!(emu.wait_jobs(1, WAIT));
    let printed = emu.printed();
    assert_eq!(printed.len(), 3);
    for (page, out) in pages.iter().zip(&printed) {
        assert_eq!(&emulator::read_png(&out.png).unwrap(), page);
    }
    let job = emu.jobs().pop().unwrap();
    assert_eq!(job.outcome, JobOutcome::Printed);
    assert_eq!(fs::read(job.bin.unwrap()).unwrap(), stream);
    server.shutdown();
}

#[test]
fn tcp_dropped_connection_and_closed_port() {
    let dir = TempDir::new("drop");
    let m = pt750();
    let (emu, server) = served(m, "12", dir.path());
    let g = media::geometry(m, "12").unwrap();
    let mut rng = Rng(21);
    let pages: Vec<Page> = (0..4).map(|_| random_page(&mut rng, &g, 400)).collect();
    let mut t = transport::open(&tcp_uri(server.addr()), m, &ctx(dir.path(), "x")).unwrap();

    emu.set_fault(Some(Fault::Drop { after_bytes: 1024 }))
        .unwrap();
    let err = send(t.as_mut(), m, "12", &pages, &Options::default()).unwrap_err();
    assert_eq!(err.code(), "connection_dropped", "{err}");
    assert!(emu.wait_jobs(1, WAIT));
    assert_eq!(emu.jobs()[0].outcome, JobOutcome::Dropped);
    assert!(emu.printed().is_empty());

    // The fault cleared, the next job goes through on a new connection.
    emu.set_fault(None).unwrap();
    send(t.as_mut(), m, "12", &pages, &Options::default()).unwrap();
    assert!(emu.wait_jobs(2, WAIT));
    assert_eq!(emu.printed().len(), 4);
    server.shutdown();

    // A port nobody listens on: offline, for jobs and for SNMP status.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let u = UdpSocket::bind(addr).ok();
        drop((l, u));
        addr
    };
    let mut t = transport::open(&tcp_uri(closed), m, &ctx(dir.path(), "x")).unwrap();
    let err = t.begin(100).unwrap_err();
    assert_eq!(err.code(), "printer_offline", "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(t.status().unwrap_err().code(), "printer_offline");
    assert_eq!(t.write(b"x").unwrap_err().code(), "job_not_started");
}

#[test]
fn network_emulator_faults() {
    let dir = TempDir::new("netfault");
    let m = pt750();
    let (emu, server) = served(m, "12", dir.path());
    let g = media::geometry(m, "12").unwrap();
    let page = random_page(&mut Rng(31), &g, 100);
    let mut t = transport::open(&tcp_uri(server.addr()), m, &ctx(dir.path(), "x")).unwrap();

    // Cover open: SNMP says so; a job sent anyway is taken and thrown away.
    emu.set_fault(Some(Fault::CoverOpen)).unwrap();
    assert_eq!(t.status().unwrap().problem(), Some(Problem::CoverOpen));
    send_one(t.as_mut(), m, &page).unwrap();
    assert!(emu.wait_jobs(1, WAIT));
    assert!(matches!(
        emu.jobs()[0].outcome,
        JobOutcome::Rejected {
            code: "cover_open",
            ..
        }
    ));

    // A different medium loaded: the job is rejected, the next status says
    // "wrong media" once.
    emu.set_fault(Some(Fault::Media("24".into()))).unwrap();
    let s = t.status().unwrap();
    assert_eq!(s.loaded_media_id(m.family).as_deref(), Some("24"));
    send_one(t.as_mut(), m, &page).unwrap();
    assert!(emu.wait_jobs(2, WAIT));
    assert!(matches!(
        emu.jobs()[1].outcome,
        JobOutcome::Rejected {
            code: "wrong_media",
            ..
        }
    ));
    let s = t.status().unwrap();
    assert_eq!(s.status_type, StatusType::Error);
    assert_eq!(s.problem(), Some(Problem::WrongMedia));
    assert_eq!(t.status().unwrap().problem(), None);
    assert!(emu.printed().is_empty());

    // Off: connections refused (polled with a deadline), SNMP silent.
    emu.set_fault(Some(Fault::Offline)).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match t.begin(10) {
            Err(e) if e.code() == "printer_offline" => break,
            Ok(()) => t.abort(),
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "still accepting while off");
        std::thread::yield_now();
    }
    let err = t.status().unwrap_err();
    assert_eq!(err.code(), "printer_offline");
    // Back on: the same address serves again.
    emu.set_fault(None).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match t.begin(10) {
            Ok(()) => {
                t.abort();
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "not back online: {e}"),
        }
        std::thread::yield_now();
    }
    // (The aborted probe may or may not have become a job: a connection the
    // listener queued while the fault was being lifted is closed unread.
    // What matters is that a real job prints again.)
    send_one(t.as_mut(), m, &page).unwrap();
    assert!(emu.wait_pages(1, WAIT));
    assert_eq!(emulator::read_png(&emu.printed()[0].png).unwrap(), page);
    server.shutdown();
}

#[test]
fn snmp_status_and_walk_against_the_emulator() {
    let dir = TempDir::new("snmp");
    let m = model::by_name("QL-1110NWB").unwrap();
    let (_emu, server) = served(m, "102", dir.path());
    let addr = server.addr();
    let got = snmp::printer_status(addr, "public", Duration::from_secs(5)).unwrap();
    let s = status::parse(&got.block.unwrap()).unwrap();
    assert_eq!(
        (s.series_code, s.model_code),
        (m.series_code, m.status_code)
    );
    assert_eq!(s.media_width_mm, 102);
    assert_eq!(s.loaded_media_id(m.family).as_deref(), Some("102"));
    assert_eq!(got.hr_printer_status, Some(3));
    let vb = snmp::get(
        addr,
        "public",
        &[
            snmp::Oid::from(snmp::BROTHER_DEVICE_ID),
            snmp::Oid::parse("1.3.6.1.9.9").unwrap(),
        ],
        Duration::from_secs(5),
    )
    .unwrap();
    match &vb[0].1 {
        snmp::Value::OctetString(id) => {
            assert!(String::from_utf8_lossy(id).contains("MDL:QL-1110NWB;"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(vb[1].1, snmp::Value::NoSuchObject);
    // A wrong community gets no answer at all.
    let err = snmp::get(
        addr,
        "private",
        &[snmp::Oid::from(snmp::SYS_DESCR)],
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(err.code(), "snmp_timeout");
    server.shutdown();
}

// ---------------------------------------------------------------------------
// Directory sink and USB device files
// ---------------------------------------------------------------------------

#[test]
fn directory_sink_writes_each_job_atomically() {
    let dir = TempDir::new("dir");
    let m = pt750();
    let sink = dir.path().join("out");
    let uri = format!("dir://{}?media=12", sink.display());
    let mut t = transport::open(&uri, m, &ctx(dir.path(), "x")).unwrap();
    let s = t.status().unwrap();
    assert_eq!(s.loaded_media_id(m.family).as_deref(), Some("12"));
    let g = media::geometry(m, "12").unwrap();
    let mut rng = Rng(41);
    let a = send_one(t.as_mut(), m, &random_page(&mut rng, &g, 50)).unwrap();
    let b = send_one(t.as_mut(), m, &random_page(&mut rng, &g, 70)).unwrap();
    assert_eq!(fs::read(sink.join("000001.bin")).unwrap(), a);
    assert_eq!(fs::read(sink.join("000002.bin")).unwrap(), b);
    // An aborted job leaves nothing, not even its part file.
    t.begin(10).unwrap();
    t.write(b"half a job").unwrap();
    t.abort();
    let names: Vec<String> = fs::read_dir(&sink)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Without media= there is no status to report.
    let mut bare = transport::open(
        &format!("dir://{}", sink.display()),
        m,
        &ctx(dir.path(), "x"),
    )
    .unwrap();
    assert_eq!(bare.status().unwrap_err().code(), "status_unavailable");
    // An unknown medium is refused when opening.
    let err = transport::open(
        &format!("dir://{}?media=13", sink.display()),
        m,
        &ctx(dir.path(), "x"),
    )
    .err()
    .unwrap();
    assert_eq!(err.code(), "invalid_printer_uri");
}

#[test]
fn usb_device_simulated_by_a_file_and_a_fifo() {
    let dir = TempDir::new("usb");
    let m = pt750();
    let g = media::geometry(m, "12").unwrap();
    let mut rng = Rng(51);

    // A regular file stands in for the device: each job is appended.
    let dev = dir.path().join("lp0");
    fs::write(&dev, b"").unwrap();
    let mut t = transport::open(
        &format!("usb://{}", dev.display()),
        m,
        &ctx(dir.path(), "x"),
    )
    .unwrap();
    let a = send_one(t.as_mut(), m, &random_page(&mut rng, &g, 40)).unwrap();
    let b = send_one(t.as_mut(), m, &random_page(&mut rng, &g, 40)).unwrap();
    assert_eq!(fs::read(&dev).unwrap(), [a, b].concat());

    // A FIFO read by a "printer" thread; the job is larger than the pipe
    // buffer, so the transport meets EAGAIN and has to wait for the reader.
    let fifo = dir.path().join("lp1");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut data = Vec::new();
            fs::File::open(&fifo)
                .unwrap()
                .read_to_end(&mut data)
                .unwrap();
            data
        })
    };
    let pages: Vec<Page> = (0..8).map(|_| random_page(&mut rng, &g, 800)).collect();
    let opts = Options {
        compress: Some(false),
        ..Options::default()
    };
    let mut t = transport::open(
        &format!("usb://{}", fifo.display()),
        m,
        &ctx(dir.path(), "x"),
    )
    .unwrap();
    let stream = send(t.as_mut(), m, "12", &pages, &opts).unwrap();
    assert!(stream.len() > 100_000, "{}", stream.len());
    assert_eq!(reader.join().unwrap(), stream);

    // No device: offline, and the message names the usual causes.
    let mut t =
        transport::open("usb:///dev/usb/lp-labelhub-none", m, &ctx(dir.path(), "x")).unwrap();
    let err = t.begin(10).unwrap_err();
    assert_eq!(err.code(), "printer_offline");
    assert!(err.to_string().contains("ipp-usb"), "{err}");
    assert_eq!(t.status().unwrap_err().code(), "printer_offline");
}

// ---------------------------------------------------------------------------
// `labelhub emulate`
// ---------------------------------------------------------------------------

/// Stops the child on drop (test failure included).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn labelhub_emulate_serves_tcp_and_snmp_and_stops_on_sigterm() {
    let dir = TempDir::new("bin");
    let out = dir.path().join("out");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_labelhub"))
            .args([
                "emulate",
                "--model",
                "PT-P750W",
                "--media",
                "12",
                "--listen",
                "127.0.0.1:0",
                "--out",
            ])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().unwrap().unwrap();
    let addr: SocketAddr = first
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .parse()
        .unwrap();
    assert_ne!(addr.port(), 0);

    let m = pt750();
    let mut t = transport::open(&tcp_uri(addr), m, &ctx(dir.path(), "x")).unwrap();
    assert_eq!(
        t.status().unwrap().loaded_media_id(m.family).as_deref(),
        Some("12")
    );
    let g = media::geometry(m, "12").unwrap();
    let page = random_page(&mut Rng(61), &g, 120);
    send_one(t.as_mut(), m, &page).unwrap();
    // The emulator closes the connection only after the job is done, so
    // the PNG is there when `finish` returned.
    assert_eq!(emulator::read_png(&out.join("000001.png")).unwrap(), page);

    // The control file works on the binary too.
    fs::write(out.join("fault"), "cover_open").unwrap();
    assert_eq!(t.status().unwrap().problem(), Some(Problem::CoverOpen));
    fs::remove_file(out.join("fault")).unwrap();

    let pid = child.0.id().to_string();
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");

    // Bad arguments are usage errors (exit 2) that say what is wrong.
    let bad = Command::new(env!("CARGO_BIN_EXE_labelhub"))
        .args(["emulate", "--model", "PT-P750W", "--media", "62", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("62"));
}
