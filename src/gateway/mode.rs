//! What a gateway object is for, read from its name: the router names it, so the object
//! needs nothing else to know its room.

use crate::room_name;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayMode {
    /// `endpoint:{room}:{k}`: sockets of a Spring-style endpoint whose destinations name rooms
    /// (`scaling.room_destinations`). Frames go to the room their destination names, others to
    /// the endpoint's own room.
    Endpoint { room: String, k: u32 },
    /// `shard:{room}:{k}`: sockets of a room larger than one object. Every frame goes to it.
    Shard { room: String, k: u32 },
}

impl GatewayMode {
    /// The mode a gateway's name says; `None` for a name no router gives.
    pub fn from_name(name: &str) -> Option<Self> {
        let (kind, rest) = name.split_once(':')?;
        let (room, k) = rest.rsplit_once(':')?;
        room_name::validate(room).ok()?;
        let k = k.parse().ok()?;
        let room = room.to_owned();
        match kind {
            "endpoint" => Some(Self::Endpoint { room, k }),
            "shard" => Some(Self::Shard { room, k }),
            _ => None,
        }
    }

    /// The object's name (what [`from_name`](Self::from_name) reads).
    pub fn name(&self) -> String {
        match self {
            Self::Endpoint { room, k } => format!("endpoint:{room}:{k}"),
            Self::Shard { room, k } => format!("shard:{room}:{k}"),
        }
    }

    /// The gateway's own room: the endpoint's, or the shard's. Frames naming no other room go
    /// there, and a token's `rooms` claim is checked against it at CONNECT.
    pub fn room(&self) -> &str {
        match self {
            Self::Endpoint { room, .. } | Self::Shard { room, .. } => room,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["endpoint:ws-stomp:3", "shard:lobby:0"] {
            assert_eq!(
                GatewayMode::from_name(name).map(|m| m.name()).as_deref(),
                Some(name)
            );
        }
        for bad in [
            "endpoint:ws-stomp",
            "shard::1",
            "other:a:1",
            "shard:a:x",
            "shard:-a:1",
        ] {
            assert_eq!(GatewayMode::from_name(bad), None, "{bad}");
        }
    }
}
