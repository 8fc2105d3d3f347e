//! The STOMP frame: a command, ordered headers and a body, and its serialization.

use super::escape::escape_into;
use super::version::Version;

/// A STOMP command, client or server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    // Client commands.
    Connect,
    Stomp,
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    // Server commands.
    Connected,
    Message,
    Receipt,
    Error,
}

impl Command {
    pub const ALL: [Command; 15] = [
        Self::Connect,
        Self::Stomp,
        Self::Send,
        Self::Subscribe,
        Self::Unsubscribe,
        Self::Ack,
        Self::Nack,
        Self::Begin,
        Self::Commit,
        Self::Abort,
        Self::Disconnect,
        Self::Connected,
        Self::Message,
        Self::Receipt,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Stomp => "STOMP",
            Self::Send => "SEND",
            Self::Subscribe => "SUBSCRIBE",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::Ack => "ACK",
            Self::Nack => "NACK",
            Self::Begin => "BEGIN",
            Self::Commit => "COMMIT",
            Self::Abort => "ABORT",
            Self::Disconnect => "DISCONNECT",
            Self::Connected => "CONNECTED",
            Self::Message => "MESSAGE",
            Self::Receipt => "RECEIPT",
            Self::Error => "ERROR",
        }
    }

    /// Parses a command line (without its EOL). Commands are case-sensitive.
    pub fn parse(line: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|command| command.as_str().as_bytes() == line)
    }

    /// CONNECT, STOMP and CONNECTED headers are never escaped.
    pub fn escapes_headers(self) -> bool {
        !matches!(self, Self::Connect | Self::Stomp | Self::Connected)
    }

    /// Only SEND, MESSAGE and ERROR frames may carry a body.
    pub fn allows_body(self) -> bool {
        matches!(self, Self::Send | Self::Message | Self::Error)
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One STOMP frame. Headers keep their order and repeats; [`Frame::header`] returns the first
/// occurrence, as the spec requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: Command,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn new(command: Command) -> Self {
        Self {
            command,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Serializes the frame for a peer speaking `version` (`None` before negotiation, which
    /// escapes nothing). A body is always announced with `content-length`, so bodies may hold
    /// NUL octets; a `content-length` among the headers is replaced by the real one.
    pub fn encode(&self, version: Option<Version>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out, version);
        out
    }

    /// Like [`Frame::encode`], appending to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>, version: Option<Version>) {
        let escaping = if self.command.escapes_headers() {
            version
        } else {
            None
        };
        out.extend_from_slice(self.command.as_str().as_bytes());
        out.push(b'\n');
        for (name, value) in &self.headers {
            if name != "content-length" {
                write_header(out, name, value, escaping);
            }
        }
        if self.body.is_empty() && self.command != Command::Message {
            out.extend_from_slice(b"\n\0");
        } else {
            write_body(out, &self.body);
        }
    }

    /// The frame's size as its headers and body count it (the command line, each
    /// `name:value` line, the blank line, the body and the NUL), before escaping.
    pub fn size(&self) -> usize {
        self.command.as_str().len() + 1 + header_lines_len(&self.headers) + 1 + self.body.len() + 1
    }

    /// [`size`](Self::size), with room for a few escapes and a `content-length` header.
    fn encoded_len_hint(&self) -> usize {
        self.size() + 29
    }
}

/// The bytes of `name:value` header lines (with their line ends), before escaping.
pub fn header_lines_len(headers: &[(String, String)]) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 2)
        .sum()
}

/// Appends one `name:value` header line, escaped for `version`. A name with a colon cannot
/// be written where nothing is escaped (STOMP 1.0, and before a version is agreed): a peer
/// would split it into a header of another name, so the header is left out.
pub(crate) fn write_header(out: &mut Vec<u8>, name: &str, value: &str, version: Option<Version>) {
    let escapes = matches!(version, Some(Version::V1_1 | Version::V1_2));
    if !escapes && name.contains(':') {
        return;
    }
    escape_into(out, name, version);
    out.push(b':');
    escape_into(out, value, version);
    out.push(b'\n');
}

/// Appends `content-length`, the blank line, the body and the closing NUL.
pub(crate) fn write_body(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(b"content-length:");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(body);
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        for command in Command::ALL {
            assert_eq!(Command::parse(command.as_str().as_bytes()), Some(command));
        }
        assert_eq!(Command::parse(b"send"), None);
        assert_eq!(Command::parse(b""), None);
    }

    #[test]
    fn first_header_wins() {
        let frame = Frame::new(Command::Send)
            .with_header("foo", "1")
            .with_header("foo", "2");
        assert_eq!(frame.header("foo"), Some("1"));
        assert_eq!(frame.header("bar"), None);
    }

    #[test]
    fn encodes_with_content_length_and_escaping() {
        let frame = Frame::new(Command::Message)
            .with_header("destination", "/topic/a:b")
            .with_header("content-length", "999")
            .with_body(b"hi\0there".to_vec());
        assert_eq!(
            frame.encode(Some(Version::V1_2)),
            b"MESSAGE\ndestination:/topic/a\\cb\ncontent-length:8\n\nhi\0there\0".to_vec()
        );
        let empty = Frame::new(Command::Message).with_header("destination", "/topic/x");
        assert_eq!(
            empty.encode(Some(Version::V1_2)),
            b"MESSAGE\ndestination:/topic/x\ncontent-length:0\n\n\0".to_vec()
        );
    }

    #[test]
    fn connected_is_never_escaped() {
        let frame = Frame::new(Command::Connected).with_header("server", "a:b");
        assert_eq!(
            frame.encode(Some(Version::V1_2)),
            b"CONNECTED\nserver:a:b\n\n\0".to_vec()
        );
    }
}
