//! The incremental frame decoder: bytes in, frames out.
//!
//! A WebSocket message may hold several frames and heart-beat EOLs, and a frame may arrive split
//! across messages, so the decoder keeps a buffer per connection. Every limit is checked before
//! the decoder waits for more input, so what it buffers never exceeds `max_frame_bytes`.

use super::error::ProtocolError;
use super::escape::unescape;
use super::frame::{Command, Frame};
use super::limits::Limits;
use super::version::Version;

/// One item decoded from the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Frame(Frame),
    /// A bare EOL between frames: the peer's heart-beat.
    HeartBeat,
}

/// Decodes client frames from bytes fed in with [`Decoder::push`].
///
/// Work is linear in what arrives: a head that arrives in pieces is scanned once, line by line,
/// with its limits checked as it goes, and parsed once it is whole; a body's NUL is looked for
/// only in bytes not looked at before.
///
/// ```
/// use stomp_rooms::stomp::{Decoded, Decoder, Limits};
///
/// let mut decoder = Decoder::new(Limits::default());
/// decoder.push(b"SEND\ndestination:/topic/chat\n\nhel");
/// assert_eq!(decoder.next_item().unwrap(), None); // the frame is not complete yet
/// decoder.push(b"lo\0\n");
/// let Some(Decoded::Frame(frame)) = decoder.next_item().unwrap() else { panic!() };
/// assert_eq!(frame.header("destination"), Some("/topic/chat"));
/// assert_eq!(frame.body, b"hello");
/// assert_eq!(decoder.next_item().unwrap(), Some(Decoded::HeartBeat));
/// assert_eq!(decoder.next_item().unwrap(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    /// The negotiated version, which decides header unescaping; `None` before CONNECTED.
    version: Option<Version>,
    buffer: Vec<u8>,
    /// Start of the undecoded bytes in `buffer`.
    start: usize,
    /// How far the current frame's head has been scanned.
    scan: HeadScan,
    /// The current frame's head, once it has wholly arrived.
    head: Option<Head>,
    /// How far past the frame's start the search for a body-ending NUL has already looked.
    nul_scanned: usize,
    /// Bytes looked at so far, for tests of the work done.
    examined: u64,
    /// Bytes consumed by whole frames and heart-beats so far.
    consumed: u64,
}

/// Progress through a head that has not wholly arrived, offsets from the frame's start.
#[derive(Debug, Clone, Copy, Default)]
struct HeadScan {
    /// Bytes scanned for line ends.
    scanned: usize,
    /// Where the unfinished line starts.
    line_start: usize,
    /// Complete lines, the command line included.
    lines: usize,
}

#[derive(Debug, Clone)]
struct Head {
    command: Command,
    headers: Vec<(String, String)>,
    /// Offset of the body from the frame's start.
    body_start: usize,
}

enum BodyEnd {
    /// The frame is complete: its body length and whole length including the NUL.
    Found { body_len: usize, frame_len: usize },
    /// More bytes are needed; no NUL occurs before `nul_scanned`.
    NotYet { nul_scanned: usize },
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            version: None,
            buffer: Vec::new(),
            start: 0,
            scan: HeadScan::default(),
            head: None,
            nul_scanned: 0,
            examined: 0,
            consumed: 0,
        }
    }

    /// Sets the version whose escaping rules apply to the frames after CONNECT.
    pub fn set_version(&mut self, version: Version) {
        self.version = Some(version);
    }

    /// Appends received bytes. Call [`Decoder::next_item`] until it returns `None`.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
        self.buffer.extend_from_slice(data);
    }

    /// Bytes received but not yet decoded (a partial frame).
    pub fn pending(&self) -> &[u8] {
        self.buffer.get(self.start..).unwrap_or_default()
    }

    /// Bytes looked at so far (each byte of a frame about once, however it was cut).
    pub fn examined(&self) -> u64 {
        self.examined
    }

    /// Bytes consumed so far by whole frames and heart-beats: when it moves, what is pending
    /// is no longer what was pending before plus what was pushed since.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next complete frame or heart-beat, `None` when more bytes are needed, or the
    /// protocol error that ends the connection.
    pub fn next_item(&mut self) -> Result<Option<Decoded>, ProtocolError> {
        let data = self.buffer.get(self.start..).unwrap_or_default();
        if self.head.is_none() && self.scan.scanned == 0 {
            let eol = match data {
                [] | [b'\r'] => return Ok(None),
                [b'\n', ..] => 1,
                [b'\r', b'\n', ..] => 2,
                [b'\r', ..] => {
                    return Err(ProtocolError::new(
                        "malformed frame",
                        "a CR between frames must be followed by LF",
                    ))
                }
                _ => 0,
            };
            if eol > 0 {
                self.consume(eol);
                return Ok(Some(Decoded::HeartBeat));
            }
        }
        if self.head.is_none() {
            let before = self.scan.scanned;
            let end = scan_head(&mut self.scan, data, &self.limits);
            self.examined += (self.scan.scanned.max(before) - before) as u64;
            let Some(body_start) = end? else {
                return Ok(None);
            };
            self.head = Some(parse_head(data, body_start, self.version)?);
        }
        let Some(head) = &self.head else {
            return Ok(None);
        };
        let before = self.nul_scanned.max(head.body_start);
        let (body_len, frame_len) = match find_body(data, head, self.nul_scanned, &self.limits)? {
            BodyEnd::Found {
                body_len,
                frame_len,
            } => {
                self.examined += frame_len.saturating_sub(before) as u64;
                (body_len, frame_len)
            }
            BodyEnd::NotYet { nul_scanned } => {
                self.examined += nul_scanned.saturating_sub(before) as u64;
                self.nul_scanned = nul_scanned;
                return Ok(None);
            }
        };
        let body = data
            .get(head.body_start..head.body_start + body_len)
            .unwrap_or_default()
            .to_vec();
        let Some(head) = self.head.take() else {
            return Ok(None);
        };
        let frame = Frame {
            command: head.command,
            headers: head.headers,
            body,
        };
        self.consume(frame_len);
        Ok(Some(Decoded::Frame(frame)))
    }

    fn consume(&mut self, len: usize) {
        self.start += len;
        self.consumed += len as u64;
        self.scan = HeadScan::default();
        self.head = None;
        self.nul_scanned = 0;
        // Compact once the consumed prefix dominates, so long streams stay O(n).
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Scans the bytes of a head not scanned before, line by line, checking the line, header and
/// frame limits as it goes: the offset of the body once the blank line ending the head is
/// there, `None` while it is not.
fn scan_head(
    scan: &mut HeadScan,
    data: &[u8],
    limits: &Limits,
) -> Result<Option<usize>, ProtocolError> {
    let max_line = limits.max_header_line_bytes;
    let mut at = scan.scanned;
    while let Some(offset) = data.get(at..).and_then(|rest| {
        // Never look past what a frame may hold.
        let room = (limits.max_frame_bytes + 1).saturating_sub(at);
        rest.iter().take(room).position(|&b| b == b'\n')
    }) {
        let lf = at + offset;
        let line = data.get(scan.line_start..lf).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max_line {
            return Err(line_too_long(max_line));
        }
        if scan.lines == 0 {
            Command::parse(line).ok_or_else(|| unknown_command(line))?;
        } else if line.is_empty() {
            scan.scanned = lf + 1;
            return Ok(Some(lf + 1));
        } else if scan.lines > limits.max_headers {
            return Err(ProtocolError::new(
                "too many headers",
                format!(
                    "a frame may carry at most {} headers (max_headers)",
                    limits.max_headers
                ),
            ));
        }
        scan.lines += 1;
        scan.line_start = lf + 1;
        at = lf + 1;
    }
    scan.scanned = data.len().max(at);
    if data.len() > limits.max_frame_bytes {
        return Err(frame_too_large(limits.max_frame_bytes));
    }
    // The unfinished line may end with a CR that belongs to its line end.
    if data.len().saturating_sub(scan.line_start) > max_line + 1 {
        return Err(line_too_long(max_line));
    }
    Ok(None)
}

/// Parses a head that has wholly arrived (its limits were checked as it was scanned).
fn parse_head(
    data: &[u8],
    body_start: usize,
    version: Option<Version>,
) -> Result<Head, ProtocolError> {
    let head = data.get(..body_start).unwrap_or_default();
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let command_line = lines.next().unwrap_or_default();
    let command = Command::parse(command_line).ok_or_else(|| unknown_command(command_line))?;
    let version = if command.escapes_headers() {
        version
    } else {
        None
    };
    let mut headers = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        headers.push(parse_header(line, version)?);
    }
    Ok(Head {
        command,
        headers,
        body_start,
    })
}

/// Finds where the body ends; `nul_scanned` is how far an earlier search got.
fn find_body(
    data: &[u8],
    head: &Head,
    nul_scanned: usize,
    limits: &Limits,
) -> Result<BodyEnd, ProtocolError> {
    let declared = head
        .headers
        .iter()
        .find(|(name, _)| name == "content-length");
    if let Some((_, value)) = declared {
        let body_len = parse_content_length(value)?;
        if body_len > limits.max_body_bytes {
            return Err(body_too_large(limits.max_body_bytes));
        }
        let frame_len = head.body_start.saturating_add(body_len).saturating_add(1);
        if frame_len > limits.max_frame_bytes {
            return Err(frame_too_large(limits.max_frame_bytes));
        }
        return match data.get(frame_len - 1) {
            None => Ok(BodyEnd::NotYet { nul_scanned: 0 }),
            Some(0) => Ok(BodyEnd::Found { body_len, frame_len }),
            Some(_) => Err(ProtocolError::new(
                "malformed frame",
                format!("the body is not followed by a NUL octet after the {body_len} octets its content-length declares"),
            )),
        };
    }
    let search_from = head.body_start.max(nul_scanned);
    // A NUL past what a frame may hold would end a frame too large: never look that far.
    let search_to = data.len().min(limits.max_frame_bytes);
    let window = data.get(search_from..search_to).unwrap_or_default();
    match window.iter().position(|&b| b == 0) {
        Some(nul) => {
            let body_len = search_from + nul - head.body_start;
            if body_len > limits.max_body_bytes {
                return Err(body_too_large(limits.max_body_bytes));
            }
            Ok(BodyEnd::Found {
                body_len,
                frame_len: search_from + nul + 1,
            })
        }
        None => {
            if search_to.saturating_sub(head.body_start) > limits.max_body_bytes {
                return Err(body_too_large(limits.max_body_bytes));
            }
            if data.len() >= limits.max_frame_bytes {
                return Err(frame_too_large(limits.max_frame_bytes));
            }
            Ok(BodyEnd::NotYet {
                nul_scanned: search_to,
            })
        }
    }
}

fn parse_header(line: &[u8], version: Option<Version>) -> Result<(String, String), ProtocolError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| ProtocolError::new("malformed header", "header lines must be UTF-8"))?;
    let Some((name, value)) = text.split_once(':') else {
        return Err(ProtocolError::new(
            "malformed header",
            format!("header line without a colon: {:?}", preview(line)),
        ));
    };
    if name.is_empty() {
        return Err(ProtocolError::new(
            "malformed header",
            "a header name may not be empty",
        ));
    }
    let undo = |raw: &str| match version {
        Some(version) => unescape(raw, version).map_err(|sequence| {
            ProtocolError::new(
                "malformed header",
                format!("undefined escape sequence {sequence} in a STOMP {version} header"),
            )
        }),
        None => Ok(raw.to_owned()),
    };
    Ok((undo(name)?, undo(value)?))
}

fn parse_content_length(value: &str) -> Result<usize, ProtocolError> {
    let invalid = || {
        ProtocolError::new(
            "malformed frame",
            format!("content-length must be a decimal octet count, not {value:?}"),
        )
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // Digits only, so a parse failure means overflow: certainly over any limit.
    Ok(value.parse().unwrap_or(usize::MAX))
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes.get(..40).unwrap_or(bytes)).into_owned()
}

fn unknown_command(line: &[u8]) -> ProtocolError {
    ProtocolError::new(
        "unknown command",
        format!(
            "{:?} is not a STOMP command; expected CONNECT, STOMP, SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK, BEGIN, COMMIT, ABORT or DISCONNECT",
            preview(line)
        ),
    )
}

fn line_too_long(max: usize) -> ProtocolError {
    ProtocolError::new(
        "header line too long",
        format!("command and header lines may be at most {max} bytes (max_header_line_bytes)"),
    )
}

fn frame_too_large(max: usize) -> ProtocolError {
    ProtocolError::new(
        "frame too large",
        format!("frames may be at most {max} bytes (max_frame_bytes); send a smaller message"),
    )
}

fn body_too_large(max: usize) -> ProtocolError {
    ProtocolError::new(
        "body too large",
        format!("bodies may be at most {max} bytes (max_body_bytes); send a smaller message"),
    )
}
