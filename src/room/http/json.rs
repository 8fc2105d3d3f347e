//! How a message looks over HTTP: one JSON object, in a poll's answer and as an event's data.

use crate::room::base64;
use serde_json::{json, Map, Value};

use crate::stomp::Message;

/// `{"id": 42, "destination": "/topic/chat", "sender": "alice", "timestamp": 1764000000000,
/// "headers": {...every header the room stamped or kept...}, "body": "hello"}`; a binary
/// body is `"body_base64"` instead.
pub fn message_json(message: &Message) -> Value {
    let headers: Map<String, Value> = message
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let header = |name: &str| {
        message
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut object = json!({
        "id": message.id,
        "destination": message.destination,
        "sender": header("sender"),
        "timestamp": header("timestamp").and_then(|t| t.parse::<u64>().ok()),
        "headers": headers,
    });
    match std::str::from_utf8(&message.body) {
        Ok(text) if !message.binary => object["body"] = Value::String(text.to_owned()),
        _ => object["body_base64"] = Value::String(base64::encode(&message.body)),
    }
    object
}

/// One server-sent event for a message: its id is the message id, so a reconnecting
/// EventSource resumes after it (`Last-Event-ID`).
pub fn sse_event(message: &Message) -> Vec<u8> {
    // Compact JSON has no line breaks, so the data is one `data:` line.
    format!(
        "id: {}\nevent: message\ndata: {}\n\n",
        message.id,
        message_json(message)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &[u8], binary: bool) -> Message {
        Message {
            id: 7,
            destination: "/topic/chat".into(),
            headers: vec![
                ("sender".into(), "alice".into()),
                ("sender-verified".into(), "true".into()),
                ("timestamp".into(), "1764000000000".into()),
                ("content-type".into(), "text/plain".into()),
            ],
            body: body.to_vec(),
            binary,
        }
    }

    #[test]
    fn a_text_message_is_one_json_object_with_its_headers() {
        assert_eq!(
            message_json(&message(b"hi \"there\"", false)),
            json!({
                "id": 7, "destination": "/topic/chat", "sender": "alice", "timestamp": 1764000000000u64,
                "headers": {"sender": "alice", "sender-verified": "true", "timestamp": "1764000000000", "content-type": "text/plain"},
                "body": "hi \"there\"",
            })
        );
    }

    #[test]
    fn a_binary_body_is_base64() {
        let value = message_json(&message(&[0, 255, 1], true));
        assert_eq!(value["body_base64"], "AP8B");
        assert!(value.get("body").is_none());
    }

    #[test]
    fn an_event_is_one_data_line_with_the_message_id() {
        let event = String::from_utf8(sse_event(&message(b"line one\nline two", false))).unwrap();
        assert!(event.starts_with("id: 7\nevent: message\ndata: {"));
        assert!(event.ends_with("}\n\n"));
        assert_eq!(
            event.lines().count(),
            4,
            "id, event, one data line, blank: {event:?}"
        );
    }
}
