//! A message as a server-sent event (its JSON is [`message_json`]).

use crate::room::message_json::message_json;

use crate::stomp::Message;

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

    #[test]
    fn an_event_is_one_data_line_with_the_message_id() {
        let message = Message {
            id: 7,
            destination: "/topic/chat".into(),
            headers: vec![("sender".into(), "alice".into())],
            body: b"line one\nline two".to_vec(),
            binary: false,
        };
        let event = String::from_utf8(sse_event(&message)).unwrap();
        assert!(event.starts_with("id: 7\nevent: message\ndata: {"));
        assert!(event.ends_with("}\n\n"));
        assert_eq!(
            event.lines().count(),
            4,
            "id, event, one data line, blank: {event:?}"
        );
    }
}
