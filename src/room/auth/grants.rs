//! What a connection may do once connected: the destinations a token lets it subscribe and
//! publish to. Kept in the session, so the rules hold after the room wakes.

use serde::{Deserialize, Serialize};

use super::pattern;
use crate::stomp::ProtocolError;

/// Destination patterns (see [`pattern`]) per action; `None` allows every destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<String>>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<String>>,
}

/// The most subscribe and publish pattern bytes a token may grant, so a session stays inside
/// its 16 KiB (tests/broker.rs builds the worst case).
pub const MAX_GRANT_BYTES: usize = 512;

impl Grants {
    pub fn is_unrestricted(&self) -> bool {
        self.subscribe.is_none() && self.publish.is_none()
    }

    /// Bytes of all patterns, for the [`MAX_GRANT_BYTES`] bound.
    pub fn size(&self) -> usize {
        [&self.subscribe, &self.publish]
            .into_iter()
            .flatten()
            .flatten()
            .map(String::len)
            .sum()
    }

    pub fn check_subscribe(&self, destination: &str) -> Result<(), ProtocolError> {
        check(&self.subscribe, "SUBSCRIBE", "subscribe", destination)
    }

    pub fn check_publish(&self, destination: &str) -> Result<(), ProtocolError> {
        check(&self.publish, "SEND", "publish", destination)
    }
}

fn check(
    allowed: &Option<Vec<String>>,
    command: &str,
    claim: &str,
    destination: &str,
) -> Result<(), ProtocolError> {
    let Some(patterns) = allowed else {
        return Ok(());
    };
    if pattern::any_matches(patterns, destination) {
        return Ok(());
    }
    let rule = if patterns.is_empty() {
        "nothing".to_owned()
    } else {
        format!("only {}", patterns.join(", "))
    };
    Err(ProtocolError::new(
        "permission denied",
        format!(
            "{command} to {destination} is not allowed: the token's {claim} claim allows {rule}"
        ),
    )
    .with_close_code(1008))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_claims_allow_everything_and_empty_ones_nothing() {
        let open = Grants::default();
        assert!(open.check_publish("/topic/x").is_ok());
        let read_only = Grants {
            subscribe: None,
            publish: Some(vec![]),
        };
        assert!(read_only.check_subscribe("/topic/x").is_ok());
        let error = read_only.check_publish("/topic/x").unwrap_err();
        assert_eq!(error.message, "permission denied");
        assert_eq!(
            error.detail,
            "SEND to /topic/x is not allowed: the token's publish claim allows nothing"
        );
    }

    #[test]
    fn a_refusal_names_the_patterns_that_would_have_allowed_it() {
        let grants = Grants {
            subscribe: Some(vec!["/topic/news".into(), "/topic/chat.*".into()]),
            publish: None,
        };
        assert!(grants.check_subscribe("/topic/chat.en").is_ok());
        let error = grants.check_subscribe("/topic/secret").unwrap_err();
        assert_eq!(
            error.detail,
            "SUBSCRIBE to /topic/secret is not allowed: the token's subscribe claim allows only /topic/news, /topic/chat.*"
        );
    }
}
