//! Destination rules.
//!
//! | destination | SEND | SUBSCRIBE |
//! | --- | --- | --- |
//! | `/topic/{name}` | every subscriber of it gets the message (broadcast); kept in history | receive every message |
//! | `/queue/{name}` | one subscriber gets it, round-robin (competing consumers); kept until acknowledged | compete for messages |
//! | `/user/{who}/{rest}` | private: to the sessions of `who` (a login, or a session id for anonymous sessions) subscribed to `/user/{rest}` | — |
//! | `/user/{rest}` | — | receive what others send to `/user/{me}/{rest}` |
//! | `/presence` | refused | the room's members now, then join and leave events |
//!
//! Names are case-sensitive. Destinations and ids may not contain control characters, `"` or
//! `\`, which keeps them printable and keeps a session's persisted state compact.

use super::error::ProtocolError;
use super::limits::Limits;

/// The presence destination.
pub const PRESENCE: &str = "/presence";

/// Where a SEND goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTarget<'a> {
    Topic(&'a str),
    Queue(&'a str),
    /// To `identity`'s subscriptions whose destination is `subscribed_as`.
    User {
        identity: &'a str,
        subscribed_as: String,
    },
}

/// What a SUBSCRIBE listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeTarget {
    Topic,
    Queue,
    User,
    Presence,
}

pub fn parse_send<'a>(
    destination: &'a str,
    limits: &Limits,
) -> Result<SendTarget<'a>, ProtocolError> {
    check_text("destination", destination, limits.max_destination_bytes)?;
    if let Some(name) = destination.strip_prefix("/topic/") {
        non_empty(destination, name)?;
        return Ok(SendTarget::Topic(destination));
    }
    if let Some(name) = destination.strip_prefix("/queue/") {
        non_empty(destination, name)?;
        return Ok(SendTarget::Queue(destination));
    }
    if let Some(rest) = destination.strip_prefix("/user/") {
        return match rest.split_once('/') {
            Some((identity, rest)) if !identity.is_empty() && !rest.is_empty() => {
                Ok(SendTarget::User { identity, subscribed_as: format!("/user/{rest}") })
            }
            _ => Err(ProtocolError::new(
                "invalid destination",
                format!("{destination:?}: private messages go to /user/{{login or session}}/{{destination}}, e.g. /user/alice/inbox"),
            )),
        };
    }
    if destination == PRESENCE {
        return Err(ProtocolError::new(
            "read-only destination",
            "/presence is maintained by the room; subscribe to it instead of sending to it",
        ));
    }
    Err(unknown(destination))
}

pub fn parse_subscribe(
    destination: &str,
    limits: &Limits,
) -> Result<SubscribeTarget, ProtocolError> {
    check_text("destination", destination, limits.max_destination_bytes)?;
    if destination == PRESENCE {
        return Ok(SubscribeTarget::Presence);
    }
    for (prefix, target) in [
        ("/topic/", SubscribeTarget::Topic),
        ("/queue/", SubscribeTarget::Queue),
        ("/user/", SubscribeTarget::User),
    ] {
        if let Some(name) = destination.strip_prefix(prefix) {
            non_empty(destination, name)?;
            return Ok(target);
        }
    }
    Err(unknown(destination))
}

/// Checks an identifier or destination: its length and that it has no control characters,
/// `"` or `\`.
pub fn check_text(what: &str, text: &str, max_bytes: usize) -> Result<(), ProtocolError> {
    if text.is_empty() {
        return Err(ProtocolError::new(
            format!("missing {what}"),
            format!("the {what} header may not be empty"),
        ));
    }
    if text.len() > max_bytes {
        return Err(ProtocolError::new(
            format!("{what} too long"),
            format!(
                "a {what} may be at most {max_bytes} bytes, this one is {}",
                text.len()
            ),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(ProtocolError::new(
            format!("invalid {what}"),
            format!("a {what} may not contain control characters, '\"' or '\\'"),
        ));
    }
    Ok(())
}

fn non_empty(destination: &str, name: &str) -> Result<(), ProtocolError> {
    if name.is_empty() {
        return Err(ProtocolError::new(
            "invalid destination",
            format!("{destination:?} has no name after the prefix"),
        ));
    }
    Ok(())
}

fn unknown(destination: &str) -> ProtocolError {
    ProtocolError::new(
        "unknown destination",
        format!("{destination:?}: destinations are /topic/{{name}}, /queue/{{name}}, /user/... or /presence"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_targets() {
        let limits = Limits::default();
        assert_eq!(
            parse_send("/topic/chat", &limits),
            Ok(SendTarget::Topic("/topic/chat"))
        );
        assert_eq!(
            parse_send("/queue/jobs", &limits),
            Ok(SendTarget::Queue("/queue/jobs"))
        );
        assert_eq!(
            parse_send("/user/bob/queue/inbox", &limits),
            Ok(SendTarget::User {
                identity: "bob",
                subscribed_as: "/user/queue/inbox".to_owned()
            })
        );
        for bad in [
            "/topic/",
            "/user/bob",
            "/user//x",
            "/presence",
            "/exchange/x",
            "topic/x",
            "",
            "/topic/a\"b",
        ] {
            assert!(parse_send(bad, &limits).is_err(), "{bad}");
        }
        assert!(parse_send(&format!("/topic/{}", "x".repeat(200)), &limits).is_err());
    }

    #[test]
    fn subscribe_targets() {
        let limits = Limits::default();
        assert_eq!(
            parse_subscribe("/topic/chat", &limits),
            Ok(SubscribeTarget::Topic)
        );
        assert_eq!(
            parse_subscribe("/queue/jobs", &limits),
            Ok(SubscribeTarget::Queue)
        );
        assert_eq!(
            parse_subscribe("/user/inbox", &limits),
            Ok(SubscribeTarget::User)
        );
        assert_eq!(
            parse_subscribe("/presence", &limits),
            Ok(SubscribeTarget::Presence)
        );
        for bad in ["/queue/", "/user/", "/other", "/topic/x\u{7}"] {
            assert!(parse_subscribe(bad, &limits).is_err(), "{bad}");
        }
    }
}
