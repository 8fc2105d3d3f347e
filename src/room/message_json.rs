//! How a message looks as JSON, wherever the room shows one: a poll's answer, an event
//! stream's data, a webhook's `message` event.

use serde_json::{json, Map, Value};

use crate::room::base64;
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
}
