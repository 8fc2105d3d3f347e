//! STOMP protocol versions and their negotiation.

use serde::{Deserialize, Serialize};

/// A STOMP protocol version. The order is the order of preference: later is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Version {
    #[serde(rename = "1.0")]
    V1_0,
    #[serde(rename = "1.1")]
    V1_1,
    #[serde(rename = "1.2")]
    V1_2,
}

impl Version {
    /// Every version this server speaks, as sent in an ERROR's `version` header.
    pub const SUPPORTED: &'static str = "1.0,1.1,1.2";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_0 => "1.0",
            Self::V1_1 => "1.1",
            Self::V1_2 => "1.2",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "1.0" => Some(Self::V1_0),
            "1.1" => Some(Self::V1_1),
            "1.2" => Some(Self::V1_2),
            _ => None,
        }
    }

    /// The highest version in a CONNECT's `accept-version` that we speak; 1.0 when the header
    /// is absent (a STOMP 1.0 client does not send it). `None` when nothing matches.
    pub fn negotiate(accept_version: Option<&str>) -> Option<Self> {
        match accept_version {
            None => Some(Self::V1_0),
            Some(list) => list.split(',').filter_map(Self::parse).max(),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    #[test]
    fn negotiates_the_highest_common_version() {
        assert_eq!(Version::negotiate(None), Some(Version::V1_0));
        assert_eq!(Version::negotiate(Some("1.0,1.1,1.2")), Some(Version::V1_2));
        assert_eq!(Version::negotiate(Some("1.2,1.0")), Some(Version::V1_2));
        assert_eq!(Version::negotiate(Some("1.1")), Some(Version::V1_1));
        assert_eq!(
            Version::negotiate(Some("1.0, 1.1, 2.0")),
            Some(Version::V1_1)
        );
        assert_eq!(Version::negotiate(Some("2.0,3.1")), None);
        assert_eq!(Version::negotiate(Some("")), None);
    }
}
