//! SockJS framing (the protocol sockjs-client speaks, and Spring's STOMP endpoints with it):
//! what goes inside each WebSocket message when a STOMP client connects through SockJS. Bytes
//! ↔ frames only, like the STOMP codec: no I/O, no clock.
//!
//! | server → client | meaning |
//! | --- | --- |
//! | `o` | the session is open |
//! | `h` | heart-beat |
//! | `a["…","…"]` | messages: a JSON array of strings (one STOMP frame each) |
//! | `c[3000,"Go away!"]` | the session is closed, with a code and reason |
//!
//! The client sends a JSON array of strings (or one JSON string) per WebSocket message.

use serde_json::Value;

/// The open frame, the first thing a session sends.
pub const OPEN: &str = "o";

/// The heart-beat frame.
pub const HEART_BEAT: &str = "h";

/// A frame carrying these messages: `a[...]`, with the characters SockJS requires escaped.
pub fn messages_frame<'a>(messages: impl IntoIterator<Item = &'a str>) -> String {
    let mut frame = String::from("a[");
    for (i, message) in messages.into_iter().enumerate() {
        if i > 0 {
            frame.push(',');
        }
        frame.push_str(&json_string(message));
    }
    frame.push(']');
    frame
}

/// A STOMP frame (or heart-beat) as one SockJS message in a frame of its own. SockJS carries
/// text only: a body that is not UTF-8 arrives with replacement characters (the README says so).
pub fn stomp_message_frame(bytes: &[u8]) -> String {
    messages_frame([String::from_utf8_lossy(bytes).as_ref()])
}

/// A close frame: `c[code,"reason"]`.
pub fn close_frame(code: u16, reason: &str) -> String {
    format!("c[{code},{}]", json_string(reason))
}

/// A JSON string, with the characters SockJS requires escaped.
fn json_string(text: &str) -> String {
    // Serializing a string cannot fail.
    escape(&serde_json::to_string(text).unwrap_or_default())
}

/// What a client's WebSocket message carries: the messages of a JSON array of strings, or of
/// one JSON string. An empty message carries none. Anything else is broken framing.
pub fn decode_client(payload: &str) -> Result<Vec<String>, BrokenFraming> {
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<Value>(payload).map_err(|_| BrokenFraming)? {
        Value::String(one) => Ok(vec![one]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => Ok(text),
                _ => Err(BrokenFraming),
            })
            .collect(),
        _ => Err(BrokenFraming),
    }
}

/// A client's message was not a JSON array of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokenFraming;

/// The `/info` answer: `{"websocket":true,"origins":["*:*"],"cookie_needed":false,"entropy":n}`.
pub fn info(websocket: bool, cookie_needed: bool, entropy: u32) -> String {
    format!(
        "{{\"websocket\":{websocket},\"origins\":[\"*:*\"],\"cookie_needed\":{cookie_needed},\"entropy\":{entropy}}}"
    )
}

/// A session's transport: the last segment of `/{server}/{session}/{transport}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `websocket`: frames in WebSocket messages.
    WebSocket,
    /// `xhr`: a POST answered with the frames waiting, or the next one (polling).
    Xhr,
    /// `xhr_send`: a POST carrying the client's messages.
    XhrSend,
    /// `xhr_streaming`: a POST whose answer streams frames, one per line.
    XhrStreaming,
    /// `eventsource`: a GET whose answer streams frames as server-sent events.
    EventSource,
}

/// The session id and transport of the path after an endpoint, `/{server}/{session}/{transport}`:
/// ids non-empty and without dots. `None` for any other path, or a transport not served.
pub fn session_path(path: &str) -> Option<(&str, Transport)> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let ["", server, session, transport] = parts.as_slice() else {
        return None;
    };
    if ![server, session]
        .iter()
        .all(|id| !id.is_empty() && !id.contains('.'))
    {
        return None;
    }
    let transport = match *transport {
        "websocket" => Transport::WebSocket,
        "xhr" => Transport::Xhr,
        "xhr_send" => Transport::XhrSend,
        "xhr_streaming" => Transport::XhrStreaming,
        "eventsource" => Transport::EventSource,
        _ => return None,
    };
    Some((session, transport))
}

/// How an HTTP request receives a session's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// `xhr`: one answer, then the client asks again.
    Polling,
    /// `xhr_streaming`: frames one per line in a long answer.
    XhrStreaming,
    /// `eventsource`: frames as server-sent events.
    EventSource,
}

impl Receiver {
    pub fn of(transport: Transport) -> Option<Self> {
        match transport {
            Transport::Xhr => Some(Self::Polling),
            Transport::XhrStreaming => Some(Self::XhrStreaming),
            Transport::EventSource => Some(Self::EventSource),
            Transport::WebSocket | Transport::XhrSend => None,
        }
    }

    /// Whether the answer stays open for more frames.
    pub fn streams(self) -> bool {
        self != Self::Polling
    }

    /// What a streaming answer starts with: 2 KiB of `h` for `xhr_streaming` (some browsers
    /// show a streaming XHR's body only after that much), an empty line for `eventsource`.
    pub fn prelude(self) -> Vec<u8> {
        match self {
            Self::Polling => Vec::new(),
            Self::XhrStreaming => {
                let mut prelude = vec![b'h'; 2048];
                prelude.push(b'\n');
                prelude
            }
            Self::EventSource => b"\r\n".to_vec(),
        }
    }

    /// One frame as this receiver carries it: a line, or an event whose data has `%`, CR, LF
    /// and NUL percent-escaped (sockjs-client reads it with `decodeURI`).
    pub fn encode(self, frame: &str, into: &mut Vec<u8>) {
        match self {
            Self::Polling | Self::XhrStreaming => {
                into.extend_from_slice(frame.as_bytes());
                into.push(b'\n');
            }
            Self::EventSource => {
                into.extend_from_slice(b"data: ");
                for c in frame.chars() {
                    match c {
                        '%' => into.extend_from_slice(b"%25"),
                        '\r' => into.extend_from_slice(b"%0D"),
                        '\n' => into.extend_from_slice(b"%0A"),
                        '\0' => into.extend_from_slice(b"%00"),
                        c => into.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
                into.extend_from_slice(b"\r\n\r\n");
            }
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Polling | Self::XhrStreaming => "application/javascript; charset=UTF-8",
            Self::EventSource => "text/event-stream",
        }
    }
}

/// The close frame a session's second receiver gets while the first is still open.
pub fn another_connection_open() -> String {
    close_frame(2010, "Another connection still open")
}

/// Escapes, after JSON encoding, the characters the SockJS protocol requires as `\uXXXX`
/// (some browsers mangle them otherwise): controls, zero-width and direction marks, line and
/// paragraph separators, invisible operators and the specials block.
fn escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        let code = u32::from(c);
        let escaped = matches!(code,
            0x00..=0x1f | 0x200c..=0x200f | 0x2028..=0x202f | 0x2060..=0x206f | 0xfff0..=0xffff);
        if escaped {
            out.push_str(&format!("\\u{code:04x}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_a_json_array_of_strings() {
        assert_eq!(
            messages_frame(["CONNECTED\nversion:1.2\n\n\0"]),
            "a[\"CONNECTED\\nversion:1.2\\n\\n\\u0000\"]"
        );
        assert_eq!(messages_frame(["a", "b"]), "a[\"a\",\"b\"]");
    }

    #[test]
    fn characters_sockjs_requires_escaped_are_escaped() {
        let frame = messages_frame(["x\u{2028}y\u{200c}z\u{fff0}é"]);
        assert_eq!(frame, "a[\"x\\u2028y\\u200cz\\ufff0é\"]");
    }

    #[test]
    fn a_close_frame_has_its_code_and_reason() {
        assert_eq!(close_frame(3000, "Go away!"), "c[3000,\"Go away!\"]");
        assert_eq!(
            close_frame(1002, "bad \"frame\""),
            "c[1002,\"bad \\\"frame\\\"\"]"
        );
    }

    #[test]
    fn client_messages_decode_or_are_broken_framing() {
        assert_eq!(
            decode_client("[\"a\",\"b\"]"),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(decode_client("\"one\""), Ok(vec!["one".into()]));
        assert_eq!(decode_client(""), Ok(vec![]));
        assert_eq!(decode_client("[]"), Ok(vec![]));
        assert_eq!(decode_client("[\"\\ud83d\\ude00\"]"), Ok(vec!["😀".into()]));
        for broken in ["[\"a", "[1]", "{}", "nope", "[\"\\ud83d\"]"] {
            assert_eq!(decode_client(broken), Err(BrokenFraming), "{broken}");
        }
    }

    #[test]
    fn session_paths_name_a_session_and_a_transport() {
        assert_eq!(
            session_path("/123/abcdefgh/websocket"),
            Some(("abcdefgh", Transport::WebSocket))
        );
        assert_eq!(
            session_path("/1/a_b-c%20d/websocket/"),
            Some(("a_b-c%20d", Transport::WebSocket))
        );
        assert_eq!(session_path("/1/a/xhr"), Some(("a", Transport::Xhr)));
        assert_eq!(
            session_path("/1/a/xhr_send"),
            Some(("a", Transport::XhrSend))
        );
        assert_eq!(
            session_path("/1/a/xhr_streaming"),
            Some(("a", Transport::XhrStreaming))
        );
        assert_eq!(
            session_path("/1/a/eventsource"),
            Some(("a", Transport::EventSource))
        );
        for not in [
            "/websocket",
            "/1//websocket",
            "/1/a.b/websocket",
            "/1/a/jsonp",
            "/1/a/b/websocket",
        ] {
            assert_eq!(session_path(not), None, "{not}");
        }
    }

    #[test]
    fn receivers_frame_as_their_transport_requires() {
        let mut line = Vec::new();
        Receiver::Polling.encode("a[\"x\"]", &mut line);
        assert_eq!(line, b"a[\"x\"]\n");
        let mut event = Vec::new();
        Receiver::EventSource.encode("a[\"100%\r\n\0\"]", &mut event);
        assert_eq!(event, b"data: a[\"100%25%0D%0A%00\"]\r\n\r\n");
        let prelude = Receiver::XhrStreaming.prelude();
        assert_eq!(prelude.len(), 2049);
        assert!(prelude.ends_with(b"h\n"));
        assert_eq!(Receiver::EventSource.prelude(), b"\r\n");
    }

    #[test]
    fn info_says_what_the_client_needs() {
        let info: Value = serde_json::from_str(&info(true, false, 7)).unwrap();
        assert_eq!(info["websocket"], true);
        assert_eq!(info["cookie_needed"], false);
        assert_eq!(info["origins"][0], "*:*");
        assert_eq!(info["entropy"], 7);
    }
}
