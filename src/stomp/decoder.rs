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
    /// How far past the frame's start the search for a body-ending NUL has already looked.
    nul_scanned: usize,
}

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
            nul_scanned: 0,
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

    /// The next complete frame or heart-beat, `None` when more bytes are needed, or the
    /// protocol error that ends the connection.
    pub fn next_item(&mut self) -> Result<Option<Decoded>, ProtocolError> {
        let data = self.pending();
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
        let Some(head) = self.parse_head(data)? else {
            return Ok(None);
        };
        let (body_len, frame_len) = match self.find_body(data, &head)? {
            BodyEnd::Found {
                body_len,
                frame_len,
            } => (body_len, frame_len),
            BodyEnd::NotYet { nul_scanned } => {
                self.nul_scanned = nul_scanned;
                return Ok(None);
            }
        };
        let body = data
            .get(head.body_start..head.body_start + body_len)
            .unwrap_or_default()
            .to_vec();
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

    /// Parses the command and headers, or `None` if the blank line ending them has not arrived.
    fn parse_head(&self, data: &[u8]) -> Result<Option<Head>, ProtocolError> {
        let limits = &self.limits;
        let Some((command_line, mut offset)) = self.line(data, 0)? else {
            return self.need_more(data);
        };
        let command = Command::parse(command_line).ok_or_else(|| unknown_command(command_line))?;
        let version = if command.escapes_headers() {
            self.version
        } else {
            None
        };
        let mut headers = Vec::new();
        loop {
            let Some((line, next)) = self.line(data, offset)? else {
                return self.need_more(data);
            };
            offset = next;
            if line.is_empty() {
                break;
            }
            if headers.len() == limits.max_headers {
                return Err(ProtocolError::new(
                    "too many headers",
                    format!(
                        "a frame may carry at most {} headers (max_headers)",
                        limits.max_headers
                    ),
                ));
            }
            headers.push(parse_header(line, version)?);
        }
        Ok(Some(Head {
            command,
            headers,
            body_start: offset,
        }))
    }

    /// The line starting at `from` (without its LF or CRLF) and the offset after it.
    fn line<'a>(
        &self,
        data: &'a [u8],
        from: usize,
    ) -> Result<Option<(&'a [u8], usize)>, ProtocolError> {
        let rest = data.get(from..).unwrap_or_default();
        let max = self.limits.max_header_line_bytes;
        match rest.iter().take(max + 2).position(|&b| b == b'\n') {
            Some(lf) => {
                let line = rest.get(..lf).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() > max {
                    return Err(line_too_long(max));
                }
                Ok(Some((line, from + lf + 1)))
            }
            None if rest.len() > max + 1 => Err(line_too_long(max)),
            None => Ok(None),
        }
    }

    /// Waiting for the rest of a head is allowed only while the frame can still fit.
    fn need_more<T>(&self, data: &[u8]) -> Result<Option<T>, ProtocolError> {
        if data.len() > self.limits.max_frame_bytes {
            return Err(frame_too_large(self.limits.max_frame_bytes));
        }
        Ok(None)
    }

    /// Finds where the body ends.
    fn find_body(&self, data: &[u8], head: &Head) -> Result<BodyEnd, ProtocolError> {
        let limits = &self.limits;
        let declared = head
            .headers
            .iter()
            .find(|(name, _)| name == "content-length");
        if let Some((_, value)) = declared {
            let body_len = parse_content_length(value)?;
            if body_len > limits.max_body_bytes {
                return Err(body_too_large(limits.max_body_bytes));
            }
            let frame_len = head.body_start + body_len + 1;
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
        let search_from = head.body_start.max(self.nul_scanned);
        let rest = data.get(search_from..).unwrap_or_default();
        match rest.iter().position(|&b| b == 0) {
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
                if data.len() - head.body_start > limits.max_body_bytes {
                    return Err(body_too_large(limits.max_body_bytes));
                }
                if data.len() > limits.max_frame_bytes {
                    return Err(frame_too_large(limits.max_frame_bytes));
                }
                Ok(BodyEnd::NotYet {
                    nul_scanned: data.len(),
                })
            }
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
