//! Heart-beat negotiation (STOMP 1.1+ `heart-beat` header, "cx,cy" in milliseconds).

use serde::{Deserialize, Serialize};

use super::error::ProtocolError;

/// Negotiated heart-beat intervals for one connection, in milliseconds; 0 means none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartBeat {
    /// How often the server must send something to the client.
    #[serde(rename = "tx")]
    pub send_ms: u32,
    /// How often the client promised to send something to the server.
    #[serde(rename = "rx")]
    pub receive_ms: u32,
}

impl HeartBeat {
    /// Applies the spec's rule: each direction beats at the larger of what the sender can do
    /// and what the receiver wants, or not at all if either side says 0.
    ///
    /// `client` is the CONNECT header's (cx, cy); `server` is our (sx, sy), also sent back in
    /// CONNECTED.
    pub fn negotiate(client: (u32, u32), server: (u32, u32)) -> Self {
        let (cx, cy) = client;
        let (sx, sy) = server;
        let rule = |can: u32, wants: u32| {
            if can == 0 || wants == 0 {
                0
            } else {
                can.max(wants)
            }
        };
        Self {
            send_ms: rule(sx, cy),
            receive_ms: rule(cx, sy),
        }
    }

    /// Whether echoing each of the client's heart-beats meets our duty to send them: the client
    /// pings at least as often as it wants to hear from us.
    pub fn echoes_cover_sending(&self) -> bool {
        self.receive_ms > 0 && self.receive_ms <= self.send_ms
    }

    /// Parses a `heart-beat` header value; absent means "0,0".
    pub fn parse_header(value: Option<&str>) -> Result<(u32, u32), ProtocolError> {
        let Some(value) = value else {
            return Ok((0, 0));
        };
        let invalid = || {
            ProtocolError::new(
                "invalid heart-beat",
                format!("heart-beat must be two non-negative integers in milliseconds, \"cx,cy\", not {value:?}"),
            )
        };
        let (cx, cy) = value.split_once(',').ok_or_else(invalid)?;
        let parse = |text: &str| text.trim().parse::<u32>().map_err(|_| invalid());
        Ok((parse(cx)?, parse(cy)?))
    }
}

#[cfg(test)]
mod tests {
    use super::HeartBeat;

    #[test]
    fn follows_the_max_rule() {
        let negotiated = HeartBeat::negotiate((10_000, 10_000), (10_000, 10_000));
        assert_eq!(
            negotiated,
            HeartBeat {
                send_ms: 10_000,
                receive_ms: 10_000
            }
        );
        let negotiated = HeartBeat::negotiate((1_000, 20_000), (5_000, 10_000));
        assert_eq!(
            negotiated,
            HeartBeat {
                send_ms: 20_000,
                receive_ms: 10_000
            }
        );
        assert_eq!(
            HeartBeat::negotiate((0, 1000), (5_000, 5_000)),
            HeartBeat {
                send_ms: 5_000,
                receive_ms: 0
            }
        );
        assert_eq!(
            HeartBeat::negotiate((1000, 0), (0, 5_000)),
            HeartBeat {
                send_ms: 0,
                receive_ms: 5_000
            }
        );
    }

    #[test]
    fn parses_headers() {
        assert_eq!(HeartBeat::parse_header(None), Ok((0, 0)));
        assert_eq!(
            HeartBeat::parse_header(Some("10000,5000")),
            Ok((10_000, 5_000))
        );
        assert!(HeartBeat::parse_header(Some("10000")).is_err());
        assert!(HeartBeat::parse_header(Some("-1,0")).is_err());
        assert!(HeartBeat::parse_header(Some("a,b")).is_err());
    }
}
