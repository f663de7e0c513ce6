use super::*;
use std::os::unix::net::UnixListener;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;

fn cfg() -> FrontConfig {
    FrontConfig {
        max_header_bytes: 1024,
        max_headers: 8,
        max_body_bytes: 1000,
        ..FrontConfig::default()
    }
}

/// What the fake backend saw: (backend connection number, request bytes).
type Seen = mpsc::Receiver<(usize, Vec<u8>)>;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A fake backend on a Unix socket: serves any number of requests per
/// connection, answers each with the request it got (or 3 MB for `/big`).
fn echo_backend() -> (PathBuf, Seen) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "labelhub-front-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    let conns = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let tx = tx.clone();
            let id = conns.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // Read head + Content-Length body.
                    let (end, len) = loop {
                        if let Some(end) = find(&buf, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("Content-Length: "))
                                .unwrap()
                                .parse()
                                .unwrap();
                            if buf.len() >= end + 4 + len {
                                break (end, len);
                            }
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let req: Vec<u8> = buf.drain(..end + 4 + len).collect();
                    if !req.starts_with(b"OPTIONS * ") {
                        let _ = tx.send((id, req.clone()));
                    }
                    let body = if req.starts_with(b"GET /big ") {
                        vec![b'x'; 3 << 20]
                    } else {
                        req
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
                        body.len()
                    );
                    if s.write_all(head.as_bytes()).is_err() || s.write_all(&body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (path, rx)
}

fn render() -> Render {
    Arc::new(|e: &FrontError| {
        let status = match e {
            FrontError::TooManyConnections | FrontError::TooManyWaits => 429,
            FrontError::HeaderTimeout | FrontError::BodyTimeout => 408,
            FrontError::BodyTooLarge { .. } => 413,
            _ => 400,
        };
        (status, "text/plain", e.code().as_bytes().to_vec())
    })
}

fn start(cfg: FrontConfig) -> (Front, Seen) {
    let (backend, rx) = echo_backend();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let front = Front::start(listener, backend, cfg, render()).unwrap();
    (front, rx)
}

fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Reads one answer (head + Content-Length body) from a kept-alive
/// connection; bytes of a following answer stay in `buf`.
fn read_answer_buf(s: &mut TcpStream, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map(|v| v.parse().unwrap())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "closed mid-answer");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return (head, body);
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// [`read_answer_buf`] where nothing else is expected.
fn read_answer(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let answer = read_answer_buf(s, &mut buf);
    assert!(buf.is_empty(), "unexpected bytes after the answer");
    answer
}

#[test]
fn chunked_bodies_are_reassembled_and_forwarded_with_a_length() {
    let (front, rx) = start(cfg());
    let out = exchange(
        front.local_addr(),
        b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    let (_, req) = rx.recv().unwrap();
    let req = String::from_utf8(req).unwrap();
    assert!(req.ends_with("Content-Length: 5\r\n\r\nabcde"), "{req}");
    assert!(!req.contains("chunked"));
}

#[test]
fn the_backend_learns_the_client_from_the_front_never_from_the_client() {
    let (front, rx) = start(cfg());
    let mut s = TcpStream::connect(front.local_addr()).unwrap();
    let me = s.local_addr().unwrap();
    s.write_all(
        b"GET /a HTTP/1.1\r\nX-Labelhub-Client: 6.6.6.6:6\r\nx-labelhub-client: 7.7.7.7:7\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let (_, req) = rx.recv().unwrap();
    let req = String::from_utf8(req).unwrap();
    assert!(
        req.contains(&format!("X-Labelhub-Client: {me}\r\n")),
        "{req}"
    );
    assert!(
        !req.contains("6.6.6.6") && !req.contains("7.7.7.7"),
        "{req}"
    );
    let mut cont = [0u8; 25];
    s.read_exact(&mut cont).unwrap();
    assert_eq!(&cont, b"HTTP/1.1 100 Continue\r\n\r\n");
    let (head, _) = read_answer(&mut s);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
}

#[test]
fn a_kept_alive_client_connection_reuses_one_backend_connection() {
    let (front, rx) = start(cfg());
    let mut s = TcpStream::connect(front.local_addr()).unwrap();
    // Two pipelined requests in one write, then a third.
    s.write_all(b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    let mut buf = Vec::new();
    for want in ["GET /1 ", "POST /2 "] {
        let (head, body) = read_answer_buf(&mut s, &mut buf);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(!head.contains("Connection"), "{head}");
        assert!(body.starts_with(want.as_bytes()));
    }
    s.write_all(b"GET /3 HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("Connection: close\r\n"), "{rest}");
    let conns: Vec<usize> = rx.try_iter().map(|(id, _)| id).collect();
    assert_eq!(conns.len(), 3);
    assert!(conns.iter().all(|&c| c == conns[0]), "{conns:?}");
    // HTTP/1.0: one answer, then the connection closes.
    let out = exchange(front.local_addr(), b"GET /4 HTTP/1.0\r\n\r\n");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert_eq!(rx.recv().unwrap().0, conns[0], "the pool kept it");
}

#[test]
fn large_answers_are_streamed_whole() {
    let (front, _rx) = start(cfg());
    let mut s = TcpStream::connect(front.local_addr()).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let (head, body) = read_answer_buf(&mut s, &mut buf);
    assert!(
        head.contains(&format!("Content-Length: {}", 3 << 20)),
        "{head}"
    );
    assert_eq!(body.len(), 3 << 20);
    assert!(body.iter().all(|&b| b == b'x'));
    let (head2, body) = read_answer_buf(&mut s, &mut buf);
    assert!(
        body.starts_with(b"GET /after "),
        "{head2} {:?}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
}

#[test]
fn idle_kept_alive_connections_are_closed() {
    let (front, _rx) = start(FrontConfig {
        idle_timeout: Duration::from_millis(300),
        ..cfg()
    });
    let mut s = TcpStream::connect(front.local_addr()).unwrap();
    s.write_all(b"GET /1 HTTP/1.1\r\n\r\n").unwrap();
    read_answer(&mut s);
    let t = Instant::now();
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed quietly");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let deadline = Instant::now() + Duration::from_secs(5);
    while front.open_connections() > 0 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(front.open_connections(), 0, "its slot is free");
}

#[test]
fn slow_heads_and_bodies_time_out() {
    let (front, _rx) = start(FrontConfig {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..cfg()
    });
    let t0 = Instant::now();
    let out = exchange(front.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.ends_with("request_header_timeout"));
    let out = exchange(
        front.local_addr(),
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
    );
    assert!(out.ends_with("request_body_timeout"), "{out}");
    // The same on a kept-alive connection's second request.
    let mut s = TcpStream::connect(front.local_addr()).unwrap();
    s.write_all(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nX: ")
        .unwrap();
    let mut buf = Vec::new();
    read_answer_buf(&mut s, &mut buf);
    s.read_to_end(&mut buf).unwrap();
    let out = String::from_utf8(buf).unwrap();
    assert!(out.ends_with("request_header_timeout"), "{out}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn oversized_bodies_get_413_before_being_read() {
    let (front, rx) = start(FrontConfig {
        body_timeout: Duration::from_millis(300),
        ..cfg()
    });
    let mut req = b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 5000));
    let out = exchange(front.local_addr(), &req);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    let out = exchange(
        front.local_addr(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n",
    );
    assert!(out.ends_with("request_body_timeout"), "{out}");
    let mut big = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 1001));
    let out = exchange(front.local_addr(), &big);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert!(rx.try_recv().is_err(), "nothing reached the backend");
}

#[test]
fn a_client_past_its_connection_cap_gets_429_and_others_still_get_in() {
    let (front, _rx) = start(FrontConfig {
        max_conns_per_client: 2,
        ..cfg()
    });
    let addr = front.local_addr();
    // Two idle connections from 127.0.0.1 hold both of its slots.
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while front.open_connections() < 2 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    let out = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 429"), "{out}");
    assert!(out.contains("Retry-After: 1"), "{out}");
    // Another address (127.0.0.2 is loopback too) is served.
    let mut s = socket_from("127.0.0.2", addr);
    s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    drop(held);
}

/// A TCP connection from a chosen loopback source address.
fn socket_from(src: &str, dst: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{src}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    sock.connect(&dst.into()).unwrap();
    sock.into()
}

#[test]
fn a_request_past_max_in_flight_unanswered_ones_gets_503() {
    // A backend that answers the handshake and then holds every request
    // until `release` is dropped.
    let dir = std::env::temp_dir().join(format!("labelhub-front-hold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let (release, held) = crossbeam_channel::bounded::<()>(0);
    // Told of every request the backend holds: it is in flight then.
    let (arrived_tx, arrived) = crossbeam_channel::unbounded::<()>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let held = held.clone();
            let arrived_tx = arrived_tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        continue;
                    };
                    if !buf.starts_with(b"OPTIONS * ") {
                        let _ = arrived_tx.send(());
                        let _ = held.recv();
                    }
                    buf.drain(..end + 4);
                    let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let front = Front::start(
        listener,
        path,
        FrontConfig {
            max_in_flight: 2,
            ..cfg()
        },
        render(),
    )
    .unwrap();
    let addr = front.local_addr();
    // Two requests in flight, one after the other (each seen held by the
    // backend), then a third is refused at once.
    let waiting: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
            arrived.recv_timeout(Duration::from_secs(10)).unwrap();
            s
        })
        .collect();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /more HTTP/1.1\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    assert!(out.ends_with("server_busy"), "{out}");
    assert!(out.contains("Retry-After: 1"), "{out}");
    drop(release);
    for mut s in waiting {
        let (head, _) = read_answer(&mut s);
        assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    }
}
