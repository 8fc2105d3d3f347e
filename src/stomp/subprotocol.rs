//! WebSocket subprotocol negotiation for STOMP (`Sec-WebSocket-Protocol`).
//!
//! STOMP over WebSocket names its versions `v10.stomp`, `v11.stomp` and `v12.stomp`. The server
//! echoes the highest one the client offered. When the client offered none, the server must not
//! name one: browsers (and stomp.js) abort a connection whose server picked a protocol the client
//! did not offer. The STOMP version itself is settled later by CONNECT's `accept-version`.

/// The subprotocols we speak, best first.
pub const SUPPORTED: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Picks the subprotocol to echo from a `Sec-WebSocket-Protocol` request header value
/// (a comma-separated list; tokens compare case-sensitively as RFC 6455 requires).
pub fn choose(offered: Option<&str>) -> Option<&'static str> {
    let offered = offered?;
    let tokens: Vec<&str> = offered.split(',').map(str::trim).collect();
    SUPPORTED
        .into_iter()
        .find(|candidate| tokens.contains(candidate))
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn echoes_highest_offered() {
        assert_eq!(
            choose(Some("v10.stomp, v11.stomp, v12.stomp")),
            Some("v12.stomp")
        );
        assert_eq!(choose(Some("v10.stomp,v11.stomp")), Some("v11.stomp"));
        assert_eq!(choose(Some("v10.stomp")), Some("v10.stomp"));
        assert_eq!(choose(Some("mqtt, v11.stomp")), Some("v11.stomp"));
    }

    #[test]
    fn names_none_when_none_offered() {
        assert_eq!(choose(None), None);
        assert_eq!(choose(Some("")), None);
        assert_eq!(choose(Some("mqtt, chat")), None);
        assert_eq!(choose(Some("V12.STOMP")), None);
    }
}
