//! Destination rules: the room's routing policy, applied to frames the codec has decoded.
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

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stomp::{Limits, ProtocolError};

mod body_route;

/// Destination names of a deployment's own, as a Spring app names them (`destinations` in the
/// settings). Empty by default: only the names in the table above.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prefixes {
    /// More prefixes that act as `/topic/`, e.g. `/sub/` (Spring's `enableSimpleBroker("/sub")`).
    pub topics: Vec<String>,
    /// Application destinations, and where their SENDs are delivered (Spring's
    /// `setApplicationDestinationPrefixes("/pub")`, with the controller's forwarding built in):
    ///
    /// * a prefix (ending in `/`) to a prefix: with `{"/pub/": "/sub/"}` a SEND to
    ///   `/pub/chat/room/7` reaches the subscribers of `/sub/chat/room/7`;
    /// * a destination to a template filled from the SEND's JSON body: with
    ///   `{"/pub/chat/message": "/sub/chat/room/{roomId}"}` a SEND to `/pub/chat/message`
    ///   whose body has `"roomId": "7"` reaches `/sub/chat/room/7`. A body that cannot fill it
    ///   is refused.
    pub application: BTreeMap<String, String>,
}

impl Prefixes {
    /// Where a SEND to `destination` with this body is delivered.
    pub fn route<'a>(
        &self,
        destination: &'a str,
        body: &[u8],
    ) -> Result<Cow<'a, str>, ProtocolError> {
        if let Some(template) = self.application.get(destination) {
            if !destination.ends_with('/') {
                return body_route::fill(template, body)
                    .map(Cow::Owned)
                    .map_err(|problem| {
                        ProtocolError::new(
                            "unroutable message",
                            format!("a SEND to {destination} goes to {template}, filled from its JSON body, but {problem}"),
                        )
                    });
            }
        }
        for (from, to) in &self.application {
            if !from.ends_with('/') {
                continue;
            }
            if let Some(rest) = destination.strip_prefix(from.as_str()) {
                return Ok(Cow::Owned(format!("{to}{rest}")));
            }
        }
        Ok(Cow::Borrowed(destination))
    }

    /// Whether a path names a destination at all (its prefix is known), for routing requests.
    pub fn is_known(&self, destination: &str) -> bool {
        ["/topic/", "/queue/", "/user/"]
            .into_iter()
            .chain(self.topics.iter().map(String::as_str))
            .chain(self.application.keys().map(String::as_str))
            .any(|prefix| destination.starts_with(prefix))
    }

    /// The name after a topic prefix, if `destination` is a topic.
    fn topic_name<'a>(&self, destination: &'a str) -> Option<&'a str> {
        std::iter::once("/topic/")
            .chain(self.topics.iter().map(String::as_str))
            .find_map(|prefix| destination.strip_prefix(prefix))
    }
}

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

/// Where a SEND goes; `destination` is the one [`Prefixes::route`] gave.
pub fn parse_send<'a>(
    destination: &'a str,
    limits: &Limits,
    prefixes: &Prefixes,
) -> Result<SendTarget<'a>, ProtocolError> {
    check_text("destination", destination, limits.max_destination_bytes)?;
    if let Some(name) = prefixes.topic_name(destination) {
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
    prefixes: &Prefixes,
) -> Result<SubscribeTarget, ProtocolError> {
    check_text("destination", destination, limits.max_destination_bytes)?;
    if destination == PRESENCE {
        return Ok(SubscribeTarget::Presence);
    }
    if let Some(name) = prefixes.topic_name(destination) {
        non_empty(destination, name)?;
        return Ok(SubscribeTarget::Topic);
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
        let none = Prefixes::default();
        assert_eq!(
            parse_send("/topic/chat", &limits, &none),
            Ok(SendTarget::Topic("/topic/chat"))
        );
        assert_eq!(
            parse_send("/queue/jobs", &limits, &none),
            Ok(SendTarget::Queue("/queue/jobs"))
        );
        assert_eq!(
            parse_send("/user/bob/queue/inbox", &limits, &none),
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
            assert!(
                parse_send(bad, &limits, &Prefixes::default()).is_err(),
                "{bad}"
            );
        }
        assert!(parse_send(
            &format!("/topic/{}", "x".repeat(200)),
            &limits,
            &Prefixes::default()
        )
        .is_err());
    }

    #[test]
    fn subscribe_targets() {
        let limits = Limits::default();
        let none = Prefixes::default();
        assert_eq!(
            parse_subscribe("/topic/chat", &limits, &none),
            Ok(SubscribeTarget::Topic)
        );
        assert_eq!(
            parse_subscribe("/queue/jobs", &limits, &none),
            Ok(SubscribeTarget::Queue)
        );
        assert_eq!(
            parse_subscribe("/user/inbox", &limits, &none),
            Ok(SubscribeTarget::User)
        );
        assert_eq!(
            parse_subscribe("/presence", &limits, &none),
            Ok(SubscribeTarget::Presence)
        );
        for bad in ["/queue/", "/user/", "/other", "/topic/x\u{7}"] {
            assert!(parse_subscribe(bad, &limits, &none).is_err(), "{bad}");
        }
    }

    #[test]
    fn spring_prefixes_add_topics_and_route_application_sends() {
        let limits = Limits::default();
        let spring = Prefixes {
            topics: vec!["/sub/".into()],
            application: [("/pub/".to_owned(), "/sub/".to_owned())].into(),
        };
        assert_eq!(
            spring.route("/pub/chat/room/7", b"").unwrap(),
            "/sub/chat/room/7"
        );
        assert_eq!(spring.route("/topic/x", b"").unwrap(), "/topic/x");
        let routed = spring.route("/pub/chat/room/7", b"").unwrap();
        assert_eq!(
            parse_send(&routed, &limits, &spring),
            Ok(SendTarget::Topic("/sub/chat/room/7"))
        );
        assert_eq!(
            parse_subscribe("/sub/chat/room/7", &limits, &spring),
            Ok(SubscribeTarget::Topic)
        );
        assert!(parse_subscribe("/sub/", &limits, &spring).is_err());
        assert!(
            parse_subscribe("/sub/x", &limits, &Prefixes::default()).is_err(),
            "without the setting, /sub/ is unknown"
        );
        assert!(
            parse_send("/pub/x", &limits, &spring).is_err(),
            "routed first, never sent as is"
        );
    }

    #[test]
    fn an_application_destination_routes_by_its_body_before_any_prefix() {
        let spring = Prefixes {
            topics: vec!["/sub/".into()],
            application: [
                ("/pub/".to_owned(), "/sub/".to_owned()),
                (
                    "/pub/chat/message".to_owned(),
                    "/sub/chat/room/{roomId}".to_owned(),
                ),
            ]
            .into(),
        };
        let body = br#"{"type":"TALK","roomId":"7","message":"hi"}"#;
        assert_eq!(
            spring.route("/pub/chat/message", body).unwrap(),
            "/sub/chat/room/7"
        );
        assert_eq!(
            spring.route("/pub/chat/other", body).unwrap(),
            "/sub/chat/other",
            "the prefix rule still serves the rest"
        );
        let refused = spring.route("/pub/chat/message", b"{}").unwrap_err();
        assert_eq!(refused.message, "unroutable message");
        assert!(refused.detail.contains("\"roomId\""), "{}", refused.detail);
    }
}
