//! What a webhook event says: its type, and its JSON as stored in the outbox and sent.
//!
//! ```json
//! {"id":"lobby.12","seq":12,"type":"member.joined","time_ms":1733270400000,"room":"lobby",
//!  "data":{"session":"s3","login":"alice","verified":true}}
//! ```
//!
//! `id` is stable (the room and its own event sequence) and never given twice, for dedupe;
//! `seq` orders a room's events. No event carries a token or a passcode; only `message`
//! events carry a body.

use serde_json::{json, Value};

use crate::room::message_json::message_json;
use crate::stomp::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The first member arrived in an empty room.
    Occupied,
    /// The room has been empty for `vacated_grace_ms`.
    Vacated,
    /// A STOMP session was accepted (CONNECT).
    Joined,
    /// A STOMP session ended.
    Left,
    /// A message to a destination matching `destinations`.
    Message,
    /// A client refused: what the logs log as `refused` and `/stats` counts under
    /// `refusals` (at most `refusals::MAX_PER_WINDOW` a minute).
    Refusal,
}

impl EventKind {
    /// The kinds sent by default.
    pub const PRESENCE_AND_REFUSALS: [EventKind; 5] = [
        Self::Occupied,
        Self::Vacated,
        Self::Joined,
        Self::Left,
        Self::Refusal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Occupied => "room.occupied",
            Self::Vacated => "room.vacated",
            Self::Joined => "member.joined",
            Self::Left => "member.left",
            Self::Message => "message",
            Self::Refusal => "refusal",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Message]
            .into_iter()
            .chain(Self::PRESENCE_AND_REFUSALS)
            .find(|kind| kind.as_str() == name)
    }
}

/// An event's JSON, as stored and sent.
pub fn event_json(room: &str, seq: u64, kind: EventKind, time_ms: u64, data: Value) -> String {
    json!({
        "id": format!("{room}.{seq}"),
        "seq": seq,
        "type": kind.as_str(),
        "time_ms": time_ms,
        "room": room,
        "data": data,
    })
    .to_string()
}

/// Who a member is: the session, and the login only as verified (a claimed login is a
/// display name, `name`).
pub fn member_data(session: &str, login: Option<&str>, verified: bool) -> Value {
    let mut data = json!({ "session": session, "verified": verified });
    if let Some(login) = login {
        data[if verified { "login" } else { "name" }] = login.into();
    }
    data
}

/// A message's event data: the message as polls and event streams show it (see
/// [`message_json`]); past `max_bytes` of JSON its body is left out (`body_omitted`,
/// `body_bytes`).
pub fn message_data(message: &Message, max_bytes: usize) -> Value {
    let mut data = message_json(message);
    // JSON escapes a byte as at most six (`\u0000`), and base64 takes four for three: a
    // message within a sixth of the bound fits without writing it out to measure.
    let headers: usize = message
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 8)
        .sum();
    let most = 6 * (message.body.len() + headers + message.destination.len()) + 200;
    if most > max_bytes && data.to_string().len() > max_bytes {
        if let Some(fields) = data.as_object_mut() {
            fields.remove("body");
            fields.remove("body_base64");
            fields.insert("body_omitted".into(), true.into());
            fields.insert("body_bytes".into(), message.body.len().into());
        }
    }
    data
}

/// Who a refusal refused: its session, when it had one.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    pub session: &'a str,
    pub login: Option<&'a str>,
    pub verified: bool,
}

/// A refusal's event data, as the logs and `/stats` classify it: `reason` from their fixed
/// list, the `limit` (setting) that refused when one did, who was refused (as a member is
/// told, when there was a session) and how many refusals were not told before it
/// (`suppressed`, when any). Never the client's words, nor its address.
pub fn refusal_data(
    reason: &str,
    limit: Option<&str>,
    refused: Option<Refused<'_>>,
    suppressed: u64,
) -> Value {
    let mut data = match refused {
        Some(who) => member_data(who.session, who.login, who.verified),
        None => json!({}),
    };
    data["reason"] = reason.into();
    if let Some(limit) = limit {
        data["limit"] = limit.into();
    }
    if suppressed > 0 {
        data["suppressed"] = suppressed.into();
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_body_that_would_not_fit_a_batch_is_left_out() {
        let message = Message {
            id: 7,
            destination: "/topic/chat".into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: vec![b'x'; 1000],
            binary: false,
        };
        assert_eq!(
            message_data(&message, 4096)["body"].as_str().map(str::len),
            Some(1000)
        );
        let small = message_data(&message, 500);
        assert_eq!(small["body_omitted"], true);
        assert_eq!(small["body_bytes"], 1000);
        assert!(small.get("body").is_none());
    }

    #[test]
    fn a_claimed_login_is_only_a_name() {
        assert_eq!(member_data("s1", Some("bob"), false)["name"], "bob");
        assert!(member_data("s1", Some("bob"), false).get("login").is_none());
        assert_eq!(member_data("s2", Some("alice"), true)["login"], "alice");
    }
}
