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
pub fn info(websocket: bool, entropy: u32) -> String {
    format!(
        "{{\"websocket\":{websocket},\"origins\":[\"*:*\"],\"cookie_needed\":false,\"entropy\":{entropy}}}"
    )
}

/// Whether the path after an endpoint is a session's WebSocket: `/{server}/{session}/websocket`,
/// ids non-empty and without dots.
pub fn is_session_websocket(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    matches!(parts.as_slice(), ["", server, session, "websocket"]
        if [server, session].iter().all(|id| !id.is_empty() && !id.contains('.')))
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
    fn session_websocket_paths() {
        assert!(is_session_websocket("/123/abcdefgh/websocket"));
        assert!(is_session_websocket("/1/a_b-c%20d/websocket/"));
        for not in [
            "/websocket",
            "/1//websocket",
            "/1/a.b/websocket",
            "/1/a/xhr",
            "/1/a/b/websocket",
        ] {
            assert!(!is_session_websocket(not), "{not}");
        }
    }

    #[test]
    fn info_says_what_the_client_needs() {
        let info: Value = serde_json::from_str(&info(true, 7)).unwrap();
        assert_eq!(info["websocket"], true);
        assert_eq!(info["cookie_needed"], false);
        assert_eq!(info["origins"][0], "*:*");
        assert_eq!(info["entropy"], 7);
    }
}
