//! The front door (`http::front`) against the real `labelhub serve`:
//! kept-alive client connections, the client address header the front sets
//! and strips, the decoded long-poll cap, large answers and slow readers,
//! slow clients on kept-alive connections, crowded servers, and the pool of
//! backend connections.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{drip, label, Client, Hub, Resp};

fn connect_from(hub: &Hub, src: Ipv4Addr) -> TcpStream {
    let s = crate::support::connect_from(hub.addr(), src).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// The bytes of one request.
fn request(method: &str, path: &str, key: &str, body: Option<&Value>, extra: &str) -> Vec<u8> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: hub\r\nX-Label-Hub-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one answer (framed by its Content-Length) from a connection that
/// may stay open; `None` if the server closed first. Bytes of a following
/// answer stay in `buf`.
fn read_answer_buf(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Resp> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap().to_string();
            let mut lines = head.split("\r\n");
            let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let bytes = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some(Resp {
                status,
                headers,
                bytes,
            });
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// [`read_answer_buf`] where nothing but this answer is expected.
fn read_answer(s: &mut TcpStream) -> Option<Resp> {
    let mut buf = Vec::new();
    let r = read_answer_buf(s, &mut buf);
    assert!(buf.is_empty(), "nothing after the answer");
    r
}

/// Whether the server closed the connection (EOF) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => panic!("unexpected bytes"),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn code(r: &Resp) -> String {
    serde_json::from_slice::<Value>(&r.bytes)
        .ok()
        .and_then(|v| v["error_code"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn waiting(hub: &Hub) -> u64 {
    hub.get("/healthz").json()["waiting_requests"]
        .as_u64()
        .unwrap()
}

#[test]
fn one_connection_serves_many_requests_until_the_client_asks_to_close() {
    let hub = Hub::start();
    let key = hub.key.clone();
    let mut s = connect_from(&hub, Ipv4Addr::LOCALHOST);
    for i in 0..10 {
        s.write_all(&request("GET", "/api/jobs?limit=1", &key, None, ""))
            .unwrap();
        let r = read_answer(&mut s).unwrap_or_else(|| panic!("answer {i}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None, "kept alive");
        let r = {
            s.write_all(&request("POST", "/print", &key, Some(&label("ka")), ""))
                .unwrap();
            read_answer(&mut s).unwrap()
        };
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    }
    // Pipelined: two requests in one write, answered in order.
    let mut two = request("GET", "/api/jobs?limit=1", &key, None, "");
    two.extend(request("GET", "/nope", &key, None, ""));
    s.write_all(&two).unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_answer_buf(&mut s, &mut buf).unwrap().status, 200);
    assert_eq!(read_answer_buf(&mut s, &mut buf).unwrap().status, 404);
    assert!(buf.is_empty());
    // `Connection: close`: the answer says so and the connection ends.
    s.write_all(&request(
        "GET",
        "/healthz",
        &key,
        None,
        "Connection: close\r\n",
    ))
    .unwrap();
    let r = read_answer(&mut s).unwrap();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    // HTTP/1.0: one answer, then closed.
    let mut s = connect_from(&hub, Ipv4Addr::LOCALHOST);
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let r = read_answer(&mut s).unwrap();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(closed_within(&mut s, Duration::from_secs(5)));
}

#[test]
fn a_client_cannot_choose_its_address_with_the_front_header() {
    let hub = Hub::start();
    let key = hub.key.clone();
    let mut s = connect_from(&hub, Ipv4Addr::new(127, 0, 0, 3));
    for spoof in [
        "X-Labelhub-Client: 10.9.8.7:1\r\n",
        "x-labelhub-client: 10.9.8.7:1\r\nX-LABELHUB-CLIENT: 10.9.8.6:1\r\n",
    ] {
        s.write_all(&request("POST", "/print", &key, Some(&label("who")), spoof))
            .unwrap();
        let r = read_answer(&mut s).unwrap();
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
        let job = hub
            .get(&format!(
                "/api/jobs/{}",
                r.json()["job_id"].as_str().unwrap()
            ))
            .json();
        assert_eq!(job["source_ip"], "127.0.0.3", "{spoof:?}");
    }
}

#[test]
fn the_long_poll_cap_counts_the_decoded_wait_parameter() {
    let hub = Hub::start_env(&[("PRINTER_HUB_MAX_WAITS_PER_CLIENT", "8")]);
    let key = hub.key.clone();
    // Every spelling the handlers read as `wait=60`. The repeats come last:
    // they must be refused by the front before anything else looks at them.
    let spellings = [
        "w%61it=60",
        "%77ait=60",
        "wai%74=60",
        "%77%61%69%74=60",
        "W%61it=1&w%61it=60",
        "wait=%36%30",
        "w%61it=6%30",
        "%77ait=%36%30",
        "wait=60&wait=60",
        "w%61it=60&w%61it=60",
    ];
    let mut held = Vec::new();
    for i in 0..20 {
        let q = spellings[i % spellings.len()];
        let mut s = connect_from(&hub, Ipv4Addr::LOCALHOST);
        s.write_all(&request("GET", &format!("/api/events?{q}"), &key, None, ""))
            .unwrap();
        if i < 8 {
            // Parked: the hub counts it as waiting.
            let deadline = Instant::now() + Duration::from_secs(10);
            while waiting(&hub) < i as u64 + 1 {
                assert!(Instant::now() < deadline, "poll {i} ({q}) did not park");
                std::thread::yield_now();
            }
            held.push(s);
        } else {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let r = read_answer(&mut s).unwrap_or_else(|| {
                panic!("poll {i} ({q}) was not refused: {} parked", waiting(&hub))
            });
            assert_eq!(
                (r.status, code(&r).as_str()),
                (429, "too_many_waits"),
                "{q}"
            );
        }
    }
    assert_eq!(waiting(&hub), 8);
    drop(held);
}

/// A PNG of noise (does not compress): about `side * side * 3` bytes.
fn noise_png(side: u32) -> String {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = state.to_le_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    labelhub::base64::encode(&png.into_inner())
}

#[test]
fn large_answers_arrive_whole_and_slow_readers_hold_no_handler() {
    let hub = Hub::start_env(&[("PRINTER_HUB_HTTP_THREADS", "2")]);
    let key = hub.key.clone();
    let pid = hub.get("/api/printers/demo").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    hub.post(&format!("/api/printers/{pid}/pause"), &json!({}));
    let image = noise_png(1000);
    assert!(image.len() > 3_000_000);
    let r = hub.post(
        "/print",
        &json!({"content_type": "image", "data": {"image": image}}),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.bytes));
    let path = format!("/api/jobs/{}", r.json()["job_id"].as_str().unwrap());

    // Whole, on a kept-alive connection that serves the next request after.
    let mut s = connect_from(&hub, Ipv4Addr::LOCALHOST);
    s.write_all(&request("GET", &path, &key, None, "")).unwrap();
    let big = read_answer(&mut s).unwrap();
    assert_eq!(big.status, 200);
    assert!(big.bytes.len() > 3_000_000, "{}", big.bytes.len());
    assert!(
        big.json()["id"].is_string(),
        "the whole JSON document arrived"
    );
    s.write_all(&request("GET", "/healthz", &key, None, ""))
        .unwrap();
    assert_eq!(read_answer(&mut s).unwrap().status, 200);

    // Six clients ask for it and do not read: with two handler threads,
    // others are still served at once.
    let mut slow: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut s = connect_from(&hub, Ipv4Addr::new(127, 0, 0, 4));
            s.write_all(&request("GET", &path, &key, None, "")).unwrap();
            s
        })
        .collect();
    // Once all six are handled (their answers are larger than what the
    // sockets buffer, and nobody reads them), others are served at once:
    // no handler thread waits on a slow reader.
    // The access log line of each: `access GET /api/jobs/{job_id} 200 ...`.
    let handled = "access GET /api/jobs/{job_id} 200 ";
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.log_text().matches(handled).count() < 7 {
        assert!(
            Instant::now() < deadline,
            "the six requests were not handled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(hub.get("/healthz").status, 200);
        assert_eq!(hub.get(&format!("{path}/missing")).status, 404);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "served in {:?}",
            t.elapsed()
        );
    }
    // The slow readers still get all of it.
    for (i, s) in slow.iter_mut().enumerate() {
        let t = Instant::now();
        let r = read_answer(s)
            .unwrap_or_else(|| panic!("slow reader {i}: no answer after {:?}", t.elapsed()));
        assert_eq!(r.bytes.len(), big.bytes.len());
    }
}

#[test]
fn a_slow_client_on_a_kept_alive_connection_is_cut_off() {
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_HEADER_TIMEOUT_S", "1"),
        ("PRINTER_HUB_BODY_TIMEOUT_S", "1"),
    ]);
    let key = hub.key.clone();
    // A second head that drips, byte by byte: cut at the head deadline.
    let mut s = connect_from(&hub, Ipv4Addr::LOCALHOST);
    s.write_all(&request("GET", "/healthz", &key, None, ""))
        .unwrap();
    assert_eq!(read_answer(&mut s).unwrap().status, 200);
    let dripping = drip(
        s.try_clone().unwrap(),
        b"GET /api/jobs HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    );
    let t = Instant::now();
    let r = read_answer(&mut s).unwrap();
    assert_eq!(
        (r.status, code(&r).as_str()),
        (408, "request_header_timeout")
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(r.header("connection"), Some("close"));
    dripping.join().unwrap();

    // A second body that stalls.
    let mut s = connect_from(&hub, Ipv4Addr::LOCALHOST);
    s.write_all(&request("GET", "/healthz", &key, None, ""))
        .unwrap();
    assert_eq!(read_answer(&mut s).unwrap().status, 200);
    s.write_all(b"POST /print HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"content")
        .unwrap();
    let r = read_answer(&mut s).unwrap();
    assert_eq!((r.status, code(&r).as_str()), (408, "request_body_timeout"));
    assert!(closed_within(&mut s, Duration::from_secs(5)));

    // Meanwhile and afterwards, the server answers.
    assert_eq!(hub.get("/healthz").status, 200);
}

#[test]
fn idle_kept_alive_connections_give_way_when_the_server_is_crowded() {
    let hub = Hub::start_env(&[
        ("PRINTER_HUB_MAX_CONNS", "8"),
        ("PRINTER_HUB_MAX_CONNS_PER_CLIENT", "8"),
    ]);
    let key = hub.key.clone();
    let open = |src: Ipv4Addr| {
        let mut s = connect_from(&hub, src);
        s.write_all(&request("GET", "/healthz", &key, None, ""))
            .unwrap();
        assert_eq!(read_answer(&mut s).unwrap().status, 200);
        s
    };
    // One idle connection on a quiet server stays open.
    let mut quiet = open(Ipv4Addr::LOCALHOST);
    assert!(!closed_within(&mut quiet, Duration::from_secs(2)));
    // Six more idle connections from one address make seven of eight:
    // idle connections are shed (after a second) until at most half the
    // slots are taken, so they cannot keep others out.
    let mut idle: Vec<TcpStream> = (0..6).map(|_| open(Ipv4Addr::new(127, 0, 0, 5))).collect();
    idle.push(quiet);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closed = vec![false; idle.len()];
    while closed.iter().filter(|c| **c).count() < 3 {
        assert!(Instant::now() < deadline, "idle connections were not shed");
        for (s, c) in idle.iter_mut().zip(closed.iter_mut()) {
            if !*c {
                *c = closed_within(s, Duration::from_millis(100));
            }
        }
    }
    // Another address gets four kept-alive connections served.
    let others: Vec<TcpStream> = (0..4).map(|_| open(Ipv4Addr::new(127, 0, 0, 6))).collect();
    assert_eq!(others.len(), 4);
}

/// Connections accepted on the hub's internal Unix socket, from
/// /proc/net/unix (the listener itself is not counted).
fn backend_connections(hub: &Hub) -> usize {
    let line = hub
        .wait_log("internal HTTP server on unix:", Duration::from_secs(5))
        .unwrap();
    let path = line
        .split("internal HTTP server on unix:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    // Columns: Num RefCount Protocol Flags Type St Inode Path; St 01 =
    // unconnected (the listener), 03 = connected.
    table
        .lines()
        .filter(|l| l.ends_with(&path))
        .filter(|l| l.split_whitespace().nth(5) == Some("03"))
        .count()
}

#[test]
fn requests_reuse_pooled_backend_connections() {
    let hub = Hub::start();
    let key = hub.key.clone();
    for _ in 0..5 {
        let mut s = connect_from(&hub, Ipv4Addr::LOCALHOST);
        for _ in 0..20 {
            s.write_all(&request("GET", "/api/jobs?limit=1", &key, None, ""))
                .unwrap();
            assert_eq!(read_answer(&mut s).unwrap().status, 200);
        }
    }
    let n = backend_connections(&hub);
    assert!(
        (1..=2).contains(&n),
        "100 sequential requests used {n} backend connections"
    );
}
