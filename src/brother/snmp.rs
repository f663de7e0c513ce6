//! A minimal SNMP (v1 and v2c) implementation: just enough BER to ask a
//! Brother network printer for its status block and answer such requests in
//! the emulator.
//!
//! * [`encode`] / [`decode`] convert between bytes and a [`Message`]
//!   (Get, GetNext, GetBulk, Set, Response PDUs; integers, octet strings,
//!   null, object identifiers, the application types and the v2c
//!   exceptions `noSuchObject`, `noSuchInstance`, `endOfMibView`).
//! * [`get`] is the client: one GetRequest over UDP, the matching response.
//! * [`respond`] is the agent: request bytes + a table of values -> the
//!   response bytes (the emulator's UDP loop calls it).
//!
//! Network status of a Brother printer is [`BROTHER_STATUS`] (the same 32
//! bytes as `ESC i S`, reference §5.2) plus [`HR_PRINTER_STATUS`].
//!
//! **Invariants.** [`decode`] never panics and never allocates more than the
//! input's size: every length is checked against the bytes that remain, and
//! anything that is not well-formed BER is an [`SnmpError::Malformed`] naming
//! the byte offset. `decode(&encode(m)) == Ok(m)` for every message.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Brother's status OID: the 32-byte status block as an OCTET STRING.
pub const BROTHER_STATUS: &[u32] = &[1, 3, 6, 1, 4, 1, 2435, 3, 3, 9, 1, 6, 1, 0];
/// Brother's PJL / IEEE-1284 device id string (`MFG:Brother;...;MDL:PT-P750W;`).
pub const BROTHER_DEVICE_ID: &[u32] = &[1, 3, 6, 1, 4, 1, 2435, 2, 3, 9, 1, 1, 7, 0];
/// Printer-MIB `hrPrinterStatus.1`: 1 other, 2 unknown, 3 idle, 4 printing, 5 warmup.
pub const HR_PRINTER_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 1, 1];
/// Printer-MIB `hrPrinterDetectedErrorState.1` (bit string, see [`HrErrorState`]).
pub const HR_PRINTER_DETECTED_ERROR_STATE: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 2, 1];
/// `sysDescr.0`.
pub const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
/// Printer-MIB `prtInputMediaType.1.1` (e.g. `12mm(0.47")`).
pub const PRT_INPUT_MEDIA_TYPE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 12, 1, 1];

/// Largest datagram we send or accept.
const MAX_DATAGRAM: usize = 65_507;

/// An object identifier, as its arcs. Ordered like SNMP orders OIDs
/// (lexicographically by arc), which GetNext relies on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    /// Parses dotted notation, `"1.3.6.1.2.1.1.1.0"` (a leading `.` is allowed).
    pub fn parse(s: &str) -> Result<Oid, SnmpError> {
        let bad = || SnmpError::InvalidOid(s.to_string());
        let arcs = s
            .trim()
            .trim_start_matches('.')
            .split('.')
            .map(|arc| arc.parse::<u32>().map_err(|_| bad()))
            .collect::<Result<Vec<u32>, SnmpError>>()?;
        let res = Oid(arcs);
        if !res.is_valid() {
            return Err(bad());
        }
        Ok(res)
    }

    /// BER can encode it: at least two arcs, first 0..=2, second < 40
    /// unless the first is 2.
    fn is_valid(&self) -> bool {
        match self.0.as_slice() {
            [first, second, ..] => {
                *first <= 2 && (*first == 2 || *second < 40) && second.checked_add(80).is_some()
            }
            _ => false,
        }
    }
}

impl From<&[u32]> for Oid {
    fn from(arcs: &[u32]) -> Oid {
        Oid(arcs.to_vec())
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

/// A variable-binding value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    Null,
    Oid(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    /// v2c exception: the agent does not implement this object.
    NoSuchObject,
    /// v2c exception: the object exists but not this instance.
    NoSuchInstance,
    /// v2c exception: GetNext ran past the last object.
    EndOfMibView,
}

/// SNMP version field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2c,
}

impl Version {
    fn to_int(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
        }
    }
}

/// The PDU types this module knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PduKind {
    GetRequest,
    GetNextRequest,
    Response,
    SetRequest,
    GetBulkRequest,
}

impl PduKind {
    fn tag(self) -> u8 {
        match self {
            PduKind::GetRequest => 0xA0,
            PduKind::GetNextRequest => 0xA1,
            PduKind::Response => 0xA2,
            PduKind::SetRequest => 0xA3,
            PduKind::GetBulkRequest => 0xA5,
        }
    }

    fn from_tag(tag: u8) -> Option<PduKind> {
        Some(match tag {
            0xA0 => PduKind::GetRequest,
            0xA1 => PduKind::GetNextRequest,
            0xA2 => PduKind::Response,
            0xA3 => PduKind::SetRequest,
            0xA5 => PduKind::GetBulkRequest,
            _ => return None,
        })
    }
}

/// Error-status values used here (RFC 3416).
pub mod error_status {
    pub const NO_ERROR: i64 = 0;
    pub const TOO_BIG: i64 = 1;
    /// v1 only: the requested object does not exist.
    pub const NO_SUCH_NAME: i64 = 2;
    pub const READ_ONLY: i64 = 4;
    pub const GEN_ERR: i64 = 5;
    pub const NOT_WRITABLE: i64 = 17;
}

/// One PDU. For GetBulk, `error_status` is non-repeaters and `error_index`
/// is max-repetitions (same wire positions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub kind: PduKind,
    pub request_id: i32,
    pub error_status: i64,
    pub error_index: i64,
    pub varbinds: Vec<(Oid, Value)>,
}

/// A whole SNMP v1/v2c message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub version: Version,
    pub community: Vec<u8>,
    pub pdu: Pdu,
}

/// Everything that can go wrong in this module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnmpError {
    /// No answer before the deadline.
    Timeout { addr: SocketAddr, waited: Duration },
    /// The host answered "port unreachable": nothing listens for SNMP there.
    Refused { addr: SocketAddr },
    /// The socket failed.
    Io { addr: SocketAddr, detail: String },
    /// The bytes are not a well-formed SNMP message.
    Malformed { offset: usize, what: &'static str },
    /// The agent answered with an error status.
    ErrorStatus { status: i64, index: i64 },
    /// Not a dotted OID.
    InvalidOid(String),
}

impl SnmpError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SnmpError::Timeout { .. } => "snmp_timeout",
            SnmpError::Refused { .. } => "snmp_refused",
            SnmpError::Io { .. } => "snmp_io_error",
            SnmpError::Malformed { .. } => "snmp_malformed",
            SnmpError::ErrorStatus { .. } => "snmp_error_status",
            SnmpError::InvalidOid(_) => "invalid_oid",
        }
    }
}

impl fmt::Display for SnmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnmpError::Timeout { addr, waited } => write!(
                f,
                "no SNMP answer from {addr} within {} ms (printer off, wrong address, SNMP disabled or wrong community)",
                waited.as_millis()
            ),
            SnmpError::Refused { addr } => {
                write!(f, "{addr} refused the SNMP request (no SNMP agent on that port)")
            }
            SnmpError::Io { addr, detail } => write!(f, "SNMP to {addr} failed: {detail}"),
            SnmpError::Malformed { offset, what } => {
                write!(f, "malformed SNMP message at byte {offset}: {what}")
            }
            SnmpError::ErrorStatus { status, index } => {
                write!(f, "SNMP agent answered error-status {status} (index {index})")
            }
            SnmpError::InvalidOid(s) => write!(f, "`{s}` is not an object identifier"),
        }
    }
}

impl std::error::Error for SnmpError {}

// ---------------------------------------------------------------------------
// BER encoding
// ---------------------------------------------------------------------------

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_IP_ADDRESS: u8 = 0x40;
const TAG_COUNTER32: u8 = 0x41;
const TAG_GAUGE32: u8 = 0x42;
const TAG_TIMETICKS: u8 = 0x43;
const TAG_OPAQUE: u8 = 0x44;
const TAG_COUNTER64: u8 = 0x46;
const TAG_NO_SUCH_OBJECT: u8 = 0x80;
const TAG_NO_SUCH_INSTANCE: u8 = 0x81;
const TAG_END_OF_MIB_VIEW: u8 = 0x82;

/// Appends tag, definite length and content.
fn put_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// Minimal two's-complement bytes of `v`.
fn int_bytes(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// Minimal bytes of an unsigned value (a leading 0 when the top bit is set).
fn uint_bytes(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    let mut res = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        res.push(0);
    }
    res.extend_from_slice(&bytes[skip..]);
    res
}

fn oid_bytes(oid: &Oid) -> Vec<u8> {
    let mut res = Vec::with_capacity(oid.0.len() + 4);
    let arcs = &oid.0;
    let (first, second) = match arcs.as_slice() {
        [a, b, ..] => (*a, *b),
        [a] => (*a, 0),
        [] => (0, 0),
    };
    let mut push_arc = |v: u64| {
        let mut chunk = [0u8; 10];
        let mut n = 0;
        let mut v = v;
        loop {
            chunk[n] = (v & 0x7F) as u8;
            n += 1;
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            res.push(chunk[i] | if i > 0 { 0x80 } else { 0 });
        }
    };
    push_arc(u64::from(first) * 40 + u64::from(second));
    for arc in arcs.iter().skip(2) {
        push_arc(u64::from(*arc));
    }
    res
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Integer(v) => put_tlv(out, TAG_INTEGER, &int_bytes(*v)),
        Value::OctetString(s) => put_tlv(out, TAG_OCTET_STRING, s),
        Value::Null => put_tlv(out, TAG_NULL, &[]),
        Value::Oid(oid) => put_tlv(out, TAG_OID, &oid_bytes(oid)),
        Value::IpAddress(ip) => put_tlv(out, TAG_IP_ADDRESS, ip),
        Value::Counter32(v) => put_tlv(out, TAG_COUNTER32, &uint_bytes(u64::from(*v))),
        Value::Gauge32(v) => put_tlv(out, TAG_GAUGE32, &uint_bytes(u64::from(*v))),
        Value::TimeTicks(v) => put_tlv(out, TAG_TIMETICKS, &uint_bytes(u64::from(*v))),
        Value::Opaque(s) => put_tlv(out, TAG_OPAQUE, s),
        Value::Counter64(v) => put_tlv(out, TAG_COUNTER64, &uint_bytes(*v)),
        Value::NoSuchObject => put_tlv(out, TAG_NO_SUCH_OBJECT, &[]),
        Value::NoSuchInstance => put_tlv(out, TAG_NO_SUCH_INSTANCE, &[]),
        Value::EndOfMibView => put_tlv(out, TAG_END_OF_MIB_VIEW, &[]),
    }
}

/// The bytes of `msg`.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut varbinds = Vec::new();
    for (oid, value) in &msg.pdu.varbinds {
        let mut vb = Vec::new();
        put_tlv(&mut vb, TAG_OID, &oid_bytes(oid));
        put_value(&mut vb, value);
        put_tlv(&mut varbinds, TAG_SEQUENCE, &vb);
    }
    let mut pdu = Vec::new();
    put_tlv(
        &mut pdu,
        TAG_INTEGER,
        &int_bytes(i64::from(msg.pdu.request_id)),
    );
    put_tlv(&mut pdu, TAG_INTEGER, &int_bytes(msg.pdu.error_status));
    put_tlv(&mut pdu, TAG_INTEGER, &int_bytes(msg.pdu.error_index));
    put_tlv(&mut pdu, TAG_SEQUENCE, &varbinds);
    let mut body = Vec::new();
    put_tlv(&mut body, TAG_INTEGER, &int_bytes(msg.version.to_int()));
    put_tlv(&mut body, TAG_OCTET_STRING, &msg.community);
    put_tlv(&mut body, msg.pdu.kind.tag(), &pdu);
    let mut res = Vec::with_capacity(body.len() + 4);
    put_tlv(&mut res, TAG_SEQUENCE, &body);
    res
}

// ---------------------------------------------------------------------------
// BER decoding
// ---------------------------------------------------------------------------

/// A cursor over BER bytes that remembers its absolute offset for errors.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the whole message.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    fn err(&self, what: &'static str) -> SnmpError {
        SnmpError::Malformed {
            offset: self.base + self.pos,
            what,
        }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads one TLV: its tag and a reader over its content. On error the
    /// cursor stays at the tag and the error names the tag's offset.
    fn tlv(&mut self) -> Result<(u8, Reader<'a>), SnmpError> {
        let start = self.pos;
        let res = self.tlv_inner();
        if res.is_err() {
            self.pos = start;
        }
        res.map_err(|what| self.err(what))
    }

    fn tlv_inner(&mut self) -> Result<(u8, Reader<'a>), &'static str> {
        let Some(&tag) = self.buf.get(self.pos) else {
            return Err("expected a tag, found the end");
        };
        if tag & 0x1F == 0x1F {
            return Err("multi-byte tags are not used by SNMP");
        }
        let Some(&first) = self.buf.get(self.pos + 1) else {
            return Err("expected a length, found the end");
        };
        let mut pos = self.pos + 2;
        let len = if first < 0x80 {
            usize::from(first)
        } else if first == 0x80 {
            return Err("indefinite length is not allowed");
        } else {
            let n = usize::from(first & 0x7F);
            if n > 4 {
                return Err("length field too long");
            }
            let Some(bytes) = self.buf.get(pos..pos + n) else {
                return Err("length field runs past the end");
            };
            pos += n;
            bytes
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b))
        };
        if len > self.buf.len() - pos {
            return Err("content runs past the end");
        }
        let content = Reader {
            buf: &self.buf[pos..pos + len],
            pos: 0,
            base: self.base + pos,
        };
        self.pos = pos + len;
        Ok((tag, content))
    }

    /// Reads one TLV that must have tag `want`.
    fn expect(&mut self, want: u8, what: &'static str) -> Result<Reader<'a>, SnmpError> {
        let at = self.pos;
        let (tag, content) = self.tlv()?;
        if tag != want {
            self.pos = at;
            return Err(self.err(what));
        }
        Ok(content)
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }
}

fn read_int(content: &Reader<'_>) -> Result<i64, SnmpError> {
    let bytes = content.rest();
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(content.err("integer must be 1 to 8 bytes"));
    }
    let init: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    Ok(bytes.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

fn read_uint(content: &Reader<'_>, max_bytes: usize) -> Result<u64, SnmpError> {
    let mut bytes = content.rest();
    if bytes.is_empty() {
        return Err(content.err("unsigned integer is empty"));
    }
    if bytes[0] & 0x80 != 0 {
        return Err(content.err("unsigned integer is negative"));
    }
    while bytes.len() > 1 && bytes[0] == 0 {
        bytes = &bytes[1..];
    }
    if bytes.len() > max_bytes {
        return Err(content.err("unsigned integer out of range"));
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

fn read_u32(content: &Reader<'_>) -> Result<u32, SnmpError> {
    Ok(read_uint(content, 4)? as u32)
}

fn read_oid(content: &Reader<'_>) -> Result<Oid, SnmpError> {
    let bytes = content.rest();
    if bytes.is_empty() {
        return Err(content.err("object identifier is empty"));
    }
    let mut arcs = Vec::with_capacity(bytes.len() + 1);
    let mut acc: u64 = 0;
    let mut in_arc = false;
    for &b in bytes {
        if !in_arc && b == 0x80 {
            return Err(content.err("object identifier arc has a leading 0x80"));
        }
        acc = acc << 7 | u64::from(b & 0x7F);
        if acc > u64::from(u32::MAX) + 80 {
            return Err(content.err("object identifier arc too large"));
        }
        in_arc = b & 0x80 != 0;
        if !in_arc {
            if arcs.is_empty() {
                let (first, second) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                let Ok(second) = u32::try_from(second) else {
                    return Err(content.err("object identifier arc too large"));
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                let Ok(arc) = u32::try_from(acc) else {
                    return Err(content.err("object identifier arc too large"));
                };
                arcs.push(arc);
            }
            acc = 0;
        }
    }
    if in_arc {
        return Err(content.err("object identifier ends inside an arc"));
    }
    Ok(Oid(arcs))
}

fn read_value(r: &mut Reader<'_>) -> Result<Value, SnmpError> {
    let (tag, content) = r.tlv()?;
    let empty = |content: &Reader<'_>, v: Value| {
        if content.rest().is_empty() {
            Ok(v)
        } else {
            Err(content.err("null or exception value must be empty"))
        }
    };
    match tag {
        TAG_INTEGER => Ok(Value::Integer(read_int(&content)?)),
        TAG_OCTET_STRING => Ok(Value::OctetString(content.rest().to_vec())),
        TAG_NULL => empty(&content, Value::Null),
        TAG_OID => Ok(Value::Oid(read_oid(&content)?)),
        TAG_IP_ADDRESS => match <[u8; 4]>::try_from(content.rest()) {
            Ok(ip) => Ok(Value::IpAddress(ip)),
            Err(_) => Err(content.err("IpAddress must be 4 bytes")),
        },
        TAG_COUNTER32 => Ok(Value::Counter32(read_u32(&content)?)),
        TAG_GAUGE32 => Ok(Value::Gauge32(read_u32(&content)?)),
        TAG_TIMETICKS => Ok(Value::TimeTicks(read_u32(&content)?)),
        TAG_OPAQUE => Ok(Value::Opaque(content.rest().to_vec())),
        TAG_COUNTER64 => Ok(Value::Counter64(read_uint(&content, 8)?)),
        TAG_NO_SUCH_OBJECT => empty(&content, Value::NoSuchObject),
        TAG_NO_SUCH_INSTANCE => empty(&content, Value::NoSuchInstance),
        TAG_END_OF_MIB_VIEW => empty(&content, Value::EndOfMibView),
        _ => Err(r.err("unknown value type")),
    }
}

/// Parses one SNMP v1/v2c message. Trailing bytes after it are an error.
pub fn decode(bytes: &[u8]) -> Result<Message, SnmpError> {
    let mut top = Reader::new(bytes);
    let mut msg = top.expect(TAG_SEQUENCE, "message must be a SEQUENCE")?;
    if !top.is_empty() {
        return Err(top.err("trailing bytes after the message"));
    }
    let version_r = msg.expect(TAG_INTEGER, "version must be an INTEGER")?;
    let version = match read_int(&version_r)? {
        0 => Version::V1,
        1 => Version::V2c,
        _ => return Err(version_r.err("only SNMP v1 and v2c are supported")),
    };
    let community = msg
        .expect(TAG_OCTET_STRING, "community must be an OCTET STRING")?
        .rest()
        .to_vec();
    let pdu_at = msg.pos;
    let (tag, mut pdu_r) = msg.tlv()?;
    let Some(kind) = PduKind::from_tag(tag) else {
        msg.pos = pdu_at;
        return Err(msg.err("unsupported PDU type"));
    };
    if !msg.is_empty() {
        return Err(msg.err("trailing bytes after the PDU"));
    }
    let id_r = pdu_r.expect(TAG_INTEGER, "request-id must be an INTEGER")?;
    let Ok(request_id) = i32::try_from(read_int(&id_r)?) else {
        return Err(id_r.err("request-id out of range"));
    };
    let error_status = read_int(&pdu_r.expect(TAG_INTEGER, "error-status must be an INTEGER")?)?;
    let error_index = read_int(&pdu_r.expect(TAG_INTEGER, "error-index must be an INTEGER")?)?;
    let mut list = pdu_r.expect(TAG_SEQUENCE, "variable bindings must be a SEQUENCE")?;
    if !pdu_r.is_empty() {
        return Err(pdu_r.err("trailing bytes in the PDU"));
    }
    let mut varbinds = Vec::new();
    while !list.is_empty() {
        let mut vb = list.expect(TAG_SEQUENCE, "variable binding must be a SEQUENCE")?;
        let oid = read_oid(&vb.expect(TAG_OID, "variable name must be an OID")?)?;
        let value = read_value(&mut vb)?;
        if !vb.is_empty() {
            return Err(vb.err("trailing bytes in a variable binding"));
        }
        varbinds.push((oid, value));
    }
    Ok(Message {
        version,
        community,
        pdu: Pdu {
            kind,
            request_id,
            error_status,
            error_index,
            varbinds,
        },
    })
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// A request id that differs between calls and processes.
fn new_request_id() -> i32 {
    (uuid::Uuid::new_v4().as_u128() & 0x3FFF_FFFF) as i32
}

fn io_error(addr: SocketAddr, e: &io::Error) -> SnmpError {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        SnmpError::Refused { addr }
    } else {
        SnmpError::Io {
            addr,
            detail: e.to_string(),
        }
    }
}

/// Sends one v2c GetRequest for `oids` to `addr` and returns the variable
/// bindings of the matching response, in the agent's order. The request is
/// sent again once if no answer came within half of `timeout`. Responses
/// with another request id or community are ignored; an error status is an
/// [`SnmpError::ErrorStatus`].
pub fn get(
    addr: SocketAddr,
    community: &str,
    oids: &[Oid],
    timeout: Duration,
) -> Result<Vec<(Oid, Value)>, SnmpError> {
    let request_id = new_request_id();
    let request = encode(&Message {
        version: Version::V2c,
        community: community.as_bytes().to_vec(),
        pdu: Pdu {
            kind: PduKind::GetRequest,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds: oids.iter().map(|o| (o.clone(), Value::Null)).collect(),
        },
    });
    let local: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(local).map_err(|e| io_error(addr, &e))?;
    // A connected socket only receives from `addr` and reports ICMP "port
    // unreachable" as ConnectionRefused.
    socket.connect(addr).map_err(|e| io_error(addr, &e))?;
    let start = Instant::now();
    let deadline = start + timeout;
    let resend_at = start + timeout / 2;
    let mut resent = false;
    socket.send(&request).map_err(|e| io_error(addr, &e))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(SnmpError::Timeout {
                addr,
                waited: timeout,
            });
        }
        let wake = if resent {
            deadline
        } else {
            resend_at.min(deadline)
        };
        let wait = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| io_error(addr, &e))?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                let Ok(msg) = decode(&buf[..n]) else {
                    continue; // garbage datagram: keep waiting
                };
                if msg.pdu.kind != PduKind::Response
                    || msg.pdu.request_id != request_id
                    || msg.community != community.as_bytes()
                {
                    continue;
                }
                if msg.pdu.error_status != error_status::NO_ERROR {
                    return Err(SnmpError::ErrorStatus {
                        status: msg.pdu.error_status,
                        index: msg.pdu.error_index,
                    });
                }
                return Ok(msg.pdu.varbinds);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if !resent && Instant::now() >= resend_at {
                    resent = true;
                    socket.send(&request).map_err(|e| io_error(addr, &e))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(addr, &e)),
        }
    }
}

/// What a Brother printer says about itself over SNMP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrinterSnmp {
    /// The 32-byte status block ([`BROTHER_STATUS`]); `None` when the agent
    /// does not have the object.
    pub block: Option<Vec<u8>>,
    /// `hrPrinterStatus` (3 idle, 4 printing, ...), when present.
    pub hr_printer_status: Option<i64>,
}

/// One GetRequest for the Brother status block and `hrPrinterStatus`.
pub fn printer_status(
    addr: SocketAddr,
    community: &str,
    timeout: Duration,
) -> Result<PrinterSnmp, SnmpError> {
    let oids = [Oid::from(BROTHER_STATUS), Oid::from(HR_PRINTER_STATUS)];
    let varbinds = get(addr, community, &oids, timeout)?;
    let find = |wanted: &Oid| {
        varbinds
            .iter()
            .find(|(oid, _)| oid == wanted)
            .map(|(_, v)| v)
    };
    Ok(PrinterSnmp {
        block: match find(&oids[0]) {
            Some(Value::OctetString(b)) => Some(b.clone()),
            _ => None,
        },
        hr_printer_status: match find(&oids[1]) {
            Some(Value::Integer(v)) => Some(*v),
            _ => None,
        },
    })
}

// ---------------------------------------------------------------------------
// Agent
// ---------------------------------------------------------------------------

/// Most rows one GetBulk answers.
const MAX_BULK_ROWS: i64 = 32;

/// The agent: answers one request datagram from `table` (sorted by OID or
/// not; it is sorted here for GetNext). Returns `None` for anything a real
/// agent silently drops: garbage, a wrong community, a response PDU.
///
/// Get answers each OID or `noSuchObject` (v1: error `noSuchName`); GetNext
/// and GetBulk walk the table (`endOfMibView` past the end); Set is refused
/// as read-only.
pub fn respond(request: &[u8], community: &[u8], table: &[(Oid, Value)]) -> Option<Vec<u8>> {
    let req = decode(request).ok()?;
    if req.community != community || req.pdu.kind == PduKind::Response {
        return None;
    }
    let mut sorted: Vec<&(Oid, Value)> = table.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let exact = |oid: &Oid| {
        sorted
            .iter()
            .find(|(o, _)| o == oid)
            .map(|(_, v)| v.clone())
    };
    let next = |oid: &Oid| {
        sorted
            .iter()
            .find(|(o, _)| o > oid)
            .map(|(o, v)| (o.clone(), v.clone()))
    };
    let v1 = req.version == Version::V1;
    let mut pdu = Pdu {
        kind: PduKind::Response,
        request_id: req.pdu.request_id,
        error_status: error_status::NO_ERROR,
        error_index: 0,
        varbinds: Vec::with_capacity(req.pdu.varbinds.len()),
    };
    let fail = |pdu: &mut Pdu, status: i64, index: usize| {
        pdu.error_status = status;
        pdu.error_index = index as i64 + 1;
        pdu.varbinds = req.pdu.varbinds.clone();
    };
    match req.pdu.kind {
        PduKind::GetRequest => {
            for (i, (oid, _)) in req.pdu.varbinds.iter().enumerate() {
                match exact(oid) {
                    Some(v) => pdu.varbinds.push((oid.clone(), v)),
                    None if v1 => {
                        fail(&mut pdu, error_status::NO_SUCH_NAME, i);
                        break;
                    }
                    None => pdu.varbinds.push((oid.clone(), Value::NoSuchObject)),
                }
            }
        }
        PduKind::GetNextRequest => {
            for (i, (oid, _)) in req.pdu.varbinds.iter().enumerate() {
                match next(oid) {
                    Some(vb) => pdu.varbinds.push(vb),
                    None if v1 => {
                        fail(&mut pdu, error_status::NO_SUCH_NAME, i);
                        break;
                    }
                    None => pdu.varbinds.push((oid.clone(), Value::EndOfMibView)),
                }
            }
        }
        PduKind::GetBulkRequest if !v1 => {
            let n = req.pdu.varbinds.len();
            let non_repeaters = req.pdu.error_status.clamp(0, n as i64) as usize;
            let reps = req.pdu.error_index.clamp(0, MAX_BULK_ROWS);
            let (single, repeating) = req.pdu.varbinds.split_at(non_repeaters);
            for (oid, _) in single {
                pdu.varbinds
                    .push(next(oid).unwrap_or((oid.clone(), Value::EndOfMibView)));
            }
            let mut cursors: Vec<Oid> = repeating.iter().map(|(o, _)| o.clone()).collect();
            for _ in 0..reps {
                if cursors.is_empty() {
                    break;
                }
                let mut all_done = true;
                for cursor in cursors.iter_mut() {
                    match next(cursor) {
                        Some((o, v)) => {
                            all_done = false;
                            *cursor = o.clone();
                            pdu.varbinds.push((o, v));
                        }
                        None => pdu.varbinds.push((cursor.clone(), Value::EndOfMibView)),
                    }
                }
                if all_done {
                    break;
                }
            }
        }
        PduKind::SetRequest => {
            let status = if v1 {
                error_status::READ_ONLY
            } else {
                error_status::NOT_WRITABLE
            };
            fail(&mut pdu, status, 0);
        }
        PduKind::GetBulkRequest | PduKind::Response => {
            fail(&mut pdu, error_status::GEN_ERR, 0);
        }
    }
    let mut res = encode(&Message {
        version: req.version,
        community: req.community.clone(),
        pdu,
    });
    if res.len() > MAX_DATAGRAM {
        let mut too_big = Pdu {
            kind: PduKind::Response,
            request_id: req.pdu.request_id,
            error_status: error_status::TOO_BIG,
            error_index: 0,
            varbinds: Vec::new(),
        };
        if v1 {
            too_big.varbinds = req.pdu.varbinds.clone();
        }
        res = encode(&Message {
            version: req.version,
            community: req.community,
            pdu: too_big,
        });
    }
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::brother::status::hex_bytes as hex;

    /// A v2c GetRequest for 1.3.6.1.2.1.1.1 (`system.sysDescr`, no instance
    /// arc) with request id 0x1234, laid out by hand from X.690.
    const GET_SYSDESCR: &str = "30 26 02 01 01 04 06 70 75 62 6c 69 63 a0 19 02 02 12 34 \
                                02 01 00 02 01 00 30 0d 30 0b 06 07 2b 06 01 02 01 01 01 05 00";

    #[test]
    fn encodes_get_request_byte_exact() {
        let msg = Message {
            version: Version::V2c,
            community: b"public".to_vec(),
            pdu: Pdu {
                kind: PduKind::GetRequest,
                request_id: 0x1234,
                error_status: 0,
                error_index: 0,
                varbinds: vec![(Oid(vec![1, 3, 6, 1, 2, 1, 1, 1]), Value::Null)],
            },
        };
        assert_eq!(encode(&msg), hex(GET_SYSDESCR));
        assert_eq!(decode(&hex(GET_SYSDESCR)).unwrap(), msg);
    }

    #[test]
    fn brother_status_request_byte_exact() {
        let msg = Message {
            version: Version::V2c,
            community: b"public".to_vec(),
            pdu: Pdu {
                kind: PduKind::GetRequest,
                request_id: 1,
                error_status: 0,
                error_index: 0,
                varbinds: vec![
                    (Oid::from(BROTHER_STATUS), Value::Null),
                    (Oid::from(HR_PRINTER_STATUS), Value::Null),
                ],
            },
        };
        // 2435 = 0x983 -> 0x93 0x03 in base 128.
        let want = hex(
            "30 3d 02 01 01 04 06 70 75 62 6c 69 63 a0 30 02 01 01 02 01 00 02 01 00 \
             30 25 \
             30 12 06 0e 2b 06 01 04 01 93 03 03 03 09 01 06 01 00 05 00 \
             30 0f 06 0b 2b 06 01 02 01 19 03 05 01 01 01 05 00",
        );
        assert_eq!(encode(&msg), want);
        assert_eq!(decode(&want).unwrap(), msg);
    }

    #[test]
    fn response_with_status_block_and_exceptions() {
        let block: Vec<u8> = (0..32).collect();
        let msg = Message {
            version: Version::V2c,
            community: b"public".to_vec(),
            pdu: Pdu {
                kind: PduKind::Response,
                request_id: -5,
                error_status: 0,
                error_index: 0,
                varbinds: vec![
                    (Oid::from(BROTHER_STATUS), Value::OctetString(block.clone())),
                    (Oid::from(HR_PRINTER_STATUS), Value::Integer(3)),
                    (Oid::from(SYS_DESCR), Value::NoSuchObject),
                    (Oid(vec![1, 3, 6, 1, 9]), Value::NoSuchInstance),
                    (Oid(vec![1, 3, 6, 1, 10]), Value::EndOfMibView),
                ],
            },
        };
        let bytes = encode(&msg);
        // The message is longer than 127 bytes: long length form 81 xx;
        // request id -5 is the single byte FB right after the PDU header.
        assert_eq!(bytes[1], 0x81);
        assert_eq!(usize::from(bytes[2]), bytes.len() - 3);
        let pdu = bytes.iter().position(|&b| b == 0xA2).unwrap();
        assert_eq!(&bytes[pdu + 2..pdu + 5], &[0x02, 0x01, 0xFB]);
        // noSuchObject is 80 00
        assert!(bytes.windows(2).any(|w| w == [0x80, 0x00]));
        assert_eq!(decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn integers_and_unsigned_round_trip() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            put_value(&mut out, &Value::Integer(v));
            let mut r = Reader::new(&out);
            assert_eq!(read_value(&mut r).unwrap(), Value::Integer(v), "{v}");
        }
        assert_eq!(int_bytes(128), vec![0x00, 0x80]);
        assert_eq!(int_bytes(-129), vec![0xFF, 0x7F]);
        assert_eq!(uint_bytes(0xFFFF_FFFF), vec![0, 0xFF, 0xFF, 0xFF, 0xFF]);
        for v in [
            Value::Counter32(u32::MAX),
            Value::Gauge32(0),
            Value::TimeTicks(123_456),
            Value::Counter64(u64::MAX),
            Value::IpAddress([127, 0, 0, 1]),
            Value::Opaque(vec![1, 2]),
            Value::Oid(Oid::from(BROTHER_DEVICE_ID)),
            Value::Oid(Oid(vec![2, 999, 3])),
            Value::Null,
            Value::OctetString(vec![0; 300]),
        ] {
            let mut out = Vec::new();
            put_value(&mut out, &v);
            let mut r = Reader::new(&out);
            assert_eq!(read_value(&mut r).unwrap(), v);
        }
        // 300-byte string uses the long length form 82 01 2C.
        let mut out = Vec::new();
        put_value(&mut out, &Value::OctetString(vec![0; 300]));
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn oid_parse_and_display() {
        let oid = Oid::parse("1.3.6.1.4.1.2435.3.3.9.1.6.1.0").unwrap();
        assert_eq!(oid, Oid::from(BROTHER_STATUS));
        assert_eq!(oid.to_string(), "1.3.6.1.4.1.2435.3.3.9.1.6.1.0");
        assert_eq!(Oid::parse(".1.3.6").unwrap(), Oid(vec![1, 3, 6]));
        for bad in ["", "1", "1.x", "3.1", "1.40", "1..2", "1.3.99999999999"] {
            assert!(Oid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_input_names_offset_and_never_panics() {
        let good = hex(GET_SYSDESCR);
        // Every truncation is an error, not a panic.
        for len in 0..good.len() {
            assert!(decode(&good[..len]).is_err(), "len {len}");
        }
        // Trailing garbage.
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            decode(&long),
            Err(SnmpError::Malformed { offset: 40, .. })
        ));
        // Indefinite length.
        assert!(matches!(
            decode(&[0x30, 0x80, 0, 0]),
            Err(SnmpError::Malformed { offset: 0, .. })
        ));
        // Huge length field.
        assert!(decode(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        // SNMPv3 version.
        let mut v3 = good.clone();
        v3[4] = 3;
        let err = decode(&v3).unwrap_err();
        assert_eq!(err.code(), "snmp_malformed");
        assert!(err.to_string().contains("v1 and v2c"), "{err}");
        // Bit flips and random bytes.
        let mut x = 0x9E37_79B9u32;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..5000 {
            let mut m = good.clone();
            let i = rnd() as usize % m.len();
            m[i] = rnd() as u8;
            if let Ok(msg) = decode(&m) {
                assert_eq!(decode(&encode(&msg)).unwrap(), msg);
            }
            let junk: Vec<u8> = (0..(rnd() % 64)).map(|_| rnd() as u8).collect();
            let _ = decode(&junk);
            let _ = respond(&junk, b"public", &[]);
        }
    }

    fn table() -> Vec<(Oid, Value)> {
        vec![
            (Oid::from(SYS_DESCR), Value::OctetString(b"emu".to_vec())),
            (Oid::from(HR_PRINTER_STATUS), Value::Integer(3)),
            (
                Oid::from(BROTHER_STATUS),
                Value::OctetString(vec![0x80; 32]),
            ),
        ]
    }

    fn request(version: Version, kind: PduKind, oids: &[&[u32]]) -> Vec<u8> {
        encode(&Message {
            version,
            community: b"public".to_vec(),
            pdu: Pdu {
                kind,
                request_id: 77,
                error_status: 0,
                error_index: 0,
                varbinds: oids.iter().map(|o| (Oid::from(*o), Value::Null)).collect(),
            },
        })
    }

    #[test]
    fn agent_answers_get_and_getnext() {
        let req = request(
            Version::V2c,
            PduKind::GetRequest,
            &[BROTHER_STATUS, &[1, 3, 6, 1, 9, 9]],
        );
        let res = decode(&respond(&req, b"public", &table()).unwrap()).unwrap();
        assert_eq!(res.pdu.kind, PduKind::Response);
        assert_eq!(res.pdu.request_id, 77);
        assert_eq!(res.pdu.varbinds[0].1, Value::OctetString(vec![0x80; 32]));
        assert_eq!(res.pdu.varbinds[1].1, Value::NoSuchObject);

        // v1: a missing object is error noSuchName with its index.
        let req = request(
            Version::V1,
            PduKind::GetRequest,
            &[SYS_DESCR, &[1, 3, 6, 1, 9]],
        );
        let res = decode(&respond(&req, b"public", &table()).unwrap()).unwrap();
        assert_eq!(res.version, Version::V1);
        assert_eq!(
            (res.pdu.error_status, res.pdu.error_index),
            (error_status::NO_SUCH_NAME, 2)
        );

        // GetNext walks in OID order: sysDescr < hrPrinterStatus < Brother.
        let req = request(Version::V2c, PduKind::GetNextRequest, &[&[1, 3, 6, 1]]);
        let res = decode(&respond(&req, b"public", &table()).unwrap()).unwrap();
        assert_eq!(res.pdu.varbinds[0].0, Oid::from(SYS_DESCR));
        let req = request(Version::V2c, PduKind::GetNextRequest, &[BROTHER_STATUS]);
        let res = decode(&respond(&req, b"public", &table()).unwrap()).unwrap();
        assert_eq!(res.pdu.varbinds[0].1, Value::EndOfMibView);

        // GetBulk walks the whole table.
        let mut bulk = decode(&request(Version::V2c, PduKind::GetBulkRequest, &[&[1, 3]])).unwrap();
        bulk.pdu.error_index = 10;
        let res = decode(&respond(&encode(&bulk), b"public", &table()).unwrap()).unwrap();
        assert_eq!(res.pdu.varbinds.len(), 4);
        assert_eq!(res.pdu.varbinds[3].1, Value::EndOfMibView);

        // Set is refused.
        let req = request(Version::V2c, PduKind::SetRequest, &[SYS_DESCR]);
        let res = decode(&respond(&req, b"public", &table()).unwrap()).unwrap();
        assert_eq!(res.pdu.error_status, error_status::NOT_WRITABLE);

        // Wrong community and responses are dropped silently.
        let req = request(Version::V2c, PduKind::GetRequest, &[SYS_DESCR]);
        assert!(respond(&req, b"private", &table()).is_none());
        let resp = request(Version::V2c, PduKind::Response, &[SYS_DESCR]);
        assert!(respond(&resp, b"public", &table()).is_none());
    }

    #[test]
    fn client_against_agent_over_loopback() {
        let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = agent.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            // First a garbage datagram and a wrong-id answer, then the real one.
            let (n, peer) = agent.recv_from(&mut buf).unwrap();
            agent.send_to(b"garbage", peer).unwrap();
            let mut wrong = decode(&buf[..n]).unwrap();
            wrong.pdu.kind = PduKind::Response;
            wrong.pdu.request_id = wrong.pdu.request_id.wrapping_add(1);
            agent.send_to(&encode(&wrong), peer).unwrap();
            let res = respond(&buf[..n], b"public", &table()).unwrap();
            agent.send_to(&res, peer).unwrap();
        });
        let got = printer_status(addr, "public", Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        assert_eq!(got.block, Some(vec![0x80; 32]));
        assert_eq!(got.hr_printer_status, Some(3));
    }

    #[test]
    fn client_reports_refused_and_timeout() {
        // A bound socket that never answers: timeout.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let err = get(
            addr,
            "public",
            &[Oid::from(SYS_DESCR)],
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert_eq!(err.code(), "snmp_timeout");
        // The request was sent twice (once more at half the timeout).
        let mut buf = [0u8; 512];
        silent
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        assert!(silent.recv(&mut buf).is_ok());
        assert!(silent.recv(&mut buf).is_ok());
        // A closed port: ICMP port unreachable -> refused.
        drop(silent);
        let err = get(
            addr,
            "public",
            &[Oid::from(SYS_DESCR)],
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert_eq!(err.code(), "snmp_refused", "{err}");
    }
}
