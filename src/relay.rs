//! What a gateway and a room say to each other: plain data, one call's body each way, in a
//! compact binary form (STOMP frames are bytes, and JSON would grow them by a third).
//!
//! A *gateway* object holds client sockets and their STOMP connections (CONNECT, heart-beats,
//! per-connection limits); a *room* object owns a room's order and state. A gateway's socket
//! that uses a room is a *member* of it: the room runs its broker session as if the socket were
//! its own, and the two objects carry its frames in calls:
//!
//! * [`ToRoom`]: a gateway's members joined, sent frames, or left (answered by [`RoomAnswer`]);
//! * [`ToGateway`]: what the room sends its members there, each frame once for all the members
//!   it goes to, and the members it closes (answered by [`GatewayAnswer`]).
//!
//! Each side keeps at most one call in flight to the other, so frames arrive in the order they
//! were sent, and batches whatever comes meanwhile into its next call.
//!
//! Decoding trusts nothing: a body is read within its own length, every count is checked
//! against the bytes left before anything is allocated for it, and a bad body is an `Err`.

/// The first byte of every body: its format's version.
const FORMAT: u8 = 1;

/// A gateway's socket, as the gateway numbers it (unique for the gateway's lifetime).
pub type MemberId = u64;

/// What happened to one of the gateway's members since its last call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A socket of the gateway joins the room (its CONNECT follows as [`Data`](Self::Data)).
    Joined {
        member: MemberId,
        /// The client's address, for the room's per-address cap.
        address: Option<String>,
    },
    /// STOMP frames from the member, as the room would read them from a socket.
    Data {
        member: MemberId,
        binary: bool,
        bytes: Vec<u8>,
    },
    /// The member's socket is gone, or it no longer uses the room.
    Left { member: MemberId },
}

impl MemberEvent {
    pub fn member(&self) -> MemberId {
        match self {
            Self::Joined { member, .. } | Self::Data { member, .. } | Self::Left { member } => {
                *member
            }
        }
    }
}

/// A gateway's call to a room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToRoom {
    /// The gateway object's name, which the room calls back.
    pub gateway: String,
    pub events: Vec<MemberEvent>,
}

/// The room's answer to a [`ToRoom`]: the call's events are handled (and what a RECEIPT among
/// them promised is stored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomAnswer {
    /// Members the call named that the room does not hold (it forgot them, or never had
    /// them): the gateway tells their clients and closes their sockets.
    pub unknown: Vec<MemberId>,
}

/// What a room sends to a gateway's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// One WebSocket message, the same for each of these members.
    Send {
        members: Vec<MemberId>,
        binary: bool,
        bytes: Vec<u8>,
    },
    /// The room closed the member's connection (after what was sent before).
    Close {
        member: MemberId,
        code: u16,
        reason: String,
    },
    /// Which of these members does the gateway still hold, joined to the room? Those it does
    /// not are answered `gone`. A gateway that crashed (or was deployed) lost its sockets
    /// without close events, and the `Left`s it owed with them: the room asks, on waking and
    /// at each liveness sweep, so such members never linger.
    Probe { members: Vec<MemberId> },
}

impl Outgoing {
    /// The bytes an item holds, as a room's outbox counts them.
    pub fn bytes(&self) -> usize {
        match self {
            Self::Send { members, bytes, .. } => bytes.len() + members.len() * 8,
            Self::Close { reason, .. } => reason.len() + 16,
            Self::Probe { members } => members.len() * 8,
        }
    }
}

/// A room's call to a gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToGateway {
    /// The room's name.
    pub room: String,
    pub items: Vec<Outgoing>,
}

impl ToGateway {
    /// The bytes of the frames it carries (what the room's outbox counts).
    pub fn bytes(&self) -> usize {
        self.items.iter().map(Outgoing::bytes).sum()
    }
}

/// A gateway's answer to a [`ToGateway`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayAnswer {
    /// Members the call named whose sockets the gateway no longer holds: the room forgets them.
    pub gone: Vec<MemberId>,
}

/// A body that is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a malformed relay call: {}", self.0)
    }
}

impl ToRoom {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::new();
        out.text(&self.gateway);
        out.number(self.events.len() as u64);
        for event in &self.events {
            match event {
                MemberEvent::Joined { member, address } => {
                    out.byte(0);
                    out.number(*member);
                    out.optional(address.as_deref());
                }
                MemberEvent::Data {
                    member,
                    binary,
                    bytes,
                } => {
                    out.byte(1);
                    out.number(*member);
                    out.byte(u8::from(*binary));
                    out.bytes(bytes);
                }
                MemberEvent::Left { member } => {
                    out.byte(2);
                    out.number(*member);
                }
            }
        }
        out.0
    }

    pub fn decode(body: &[u8]) -> Result<Self, Malformed> {
        let mut input = Reader::new(body)?;
        let gateway = input.text()?;
        let count = input.count(2)?;
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            events.push(match input.byte()? {
                0 => MemberEvent::Joined {
                    member: input.number()?,
                    address: input.optional()?,
                },
                1 => MemberEvent::Data {
                    member: input.number()?,
                    binary: input.flag()?,
                    bytes: input.bytes()?.to_vec(),
                },
                2 => MemberEvent::Left {
                    member: input.number()?,
                },
                _ => return Err(Malformed("an event of no known kind")),
            });
        }
        input.end()?;
        Ok(Self { gateway, events })
    }
}

impl ToGateway {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::new();
        out.text(&self.room);
        out.number(self.items.len() as u64);
        for item in &self.items {
            match item {
                Outgoing::Send {
                    members,
                    binary,
                    bytes,
                } => {
                    out.byte(0);
                    out.members(members);
                    out.byte(u8::from(*binary));
                    out.bytes(bytes);
                }
                Outgoing::Close {
                    member,
                    code,
                    reason,
                } => {
                    out.byte(1);
                    out.number(*member);
                    out.number(u64::from(*code));
                    out.text(reason);
                }
                Outgoing::Probe { members } => {
                    out.byte(2);
                    out.members(members);
                }
            }
        }
        out.0
    }

    pub fn decode(body: &[u8]) -> Result<Self, Malformed> {
        let mut input = Reader::new(body)?;
        let room = input.text()?;
        let count = input.count(2)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(match input.byte()? {
                0 => Outgoing::Send {
                    members: input.members()?,
                    binary: input.flag()?,
                    bytes: input.bytes()?.to_vec(),
                },
                1 => Outgoing::Close {
                    member: input.number()?,
                    code: u16::try_from(input.number()?)
                        .map_err(|_| Malformed("a close code over 65535"))?,
                    reason: input.text()?,
                },
                2 => Outgoing::Probe {
                    members: input.members()?,
                },
                _ => return Err(Malformed("an item of no known kind")),
            });
        }
        input.end()?;
        Ok(Self { room, items })
    }
}

impl RoomAnswer {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::new();
        out.members(&self.unknown);
        out.0
    }

    pub fn decode(body: &[u8]) -> Result<Self, Malformed> {
        let mut input = Reader::new(body)?;
        let unknown = input.members()?;
        input.end()?;
        Ok(Self { unknown })
    }
}

impl GatewayAnswer {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::new();
        out.members(&self.gone);
        out.0
    }

    pub fn decode(body: &[u8]) -> Result<Self, Malformed> {
        let mut input = Reader::new(body)?;
        let gone = input.members()?;
        input.end()?;
        Ok(Self { gone })
    }
}

/// Numbers as LEB128 varints, byte strings length-first.
struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Self(vec![FORMAT])
    }

    fn byte(&mut self, byte: u8) {
        self.0.push(byte);
    }

    fn number(&mut self, mut n: u64) {
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.number(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    fn optional(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.byte(1);
                self.text(text);
            }
            None => self.byte(0),
        }
    }

    fn members(&mut self, members: &[MemberId]) {
        self.number(members.len() as u64);
        for &member in members {
            self.number(member);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(body: &'a [u8]) -> Result<Self, Malformed> {
        match body.split_first() {
            Some((&FORMAT, rest)) => Ok(Self(rest)),
            Some(_) => Err(Malformed("a format this build does not read")),
            None => Err(Malformed("an empty body")),
        }
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        let (&first, rest) = self.0.split_first().ok_or(Malformed("cut short"))?;
        self.0 = rest;
        Ok(first)
    }

    fn flag(&mut self) -> Result<bool, Malformed> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed("a flag neither 0 nor 1")),
        }
    }

    fn number(&mut self) -> Result<u64, Malformed> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Malformed("a number over 64 bits"))
    }

    /// A count of items that take at least `min_bytes` each: never more than the bytes left
    /// could hold, so a lying count allocates nothing.
    fn count(&mut self, min_bytes: usize) -> Result<usize, Malformed> {
        let count = self.number()?;
        let most = (self.0.len() / min_bytes) as u64;
        match count <= most {
            true => Ok(count as usize),
            false => Err(Malformed("a count larger than the body")),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.number()?;
        let len = usize::try_from(len).map_err(|_| Malformed("a length over memory"))?;
        if len > self.0.len() {
            return Err(Malformed("a length past the body's end"));
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(bytes)
    }

    fn text(&mut self) -> Result<String, Malformed> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Malformed("text that is not UTF-8"))
    }

    fn optional(&mut self) -> Result<Option<String>, Malformed> {
        match self.flag()? {
            true => self.text().map(Some),
            false => Ok(None),
        }
    }

    fn members(&mut self) -> Result<Vec<MemberId>, Malformed> {
        let count = self.count(1)?;
        (0..count).map(|_| self.number()).collect()
    }

    fn end(&self) -> Result<(), Malformed> {
        match self.0.is_empty() {
            true => Ok(()),
            false => Err(Malformed("bytes after the end")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_to_a_room_reads_back_as_written() {
        let call = ToRoom {
            gateway: "lobby#3".into(),
            events: vec![
                MemberEvent::Joined {
                    member: 1,
                    address: Some("203.0.113.9".into()),
                },
                MemberEvent::Data {
                    member: 1,
                    binary: false,
                    bytes: b"CONNECT\naccept-version:1.2\n\n\0".to_vec(),
                },
                MemberEvent::Joined {
                    member: 300,
                    address: None,
                },
                MemberEvent::Data {
                    member: 300,
                    binary: true,
                    bytes: vec![0, 1, 2, 255],
                },
                MemberEvent::Left { member: u64::MAX },
            ],
        };
        assert_eq!(ToRoom::decode(&call.encode()), Ok(call));
    }

    #[test]
    fn a_call_to_a_gateway_reads_back_as_written() {
        let call = ToGateway {
            room: "lobby".into(),
            items: vec![
                Outgoing::Send {
                    members: vec![1, 2, 70_000],
                    binary: false,
                    bytes: b"MESSAGE\n\nhi\0".to_vec(),
                },
                Outgoing::Close {
                    member: 2,
                    code: 1008,
                    reason: "token expired".into(),
                },
                Outgoing::Probe {
                    members: vec![1, 300, u64::MAX],
                },
                Outgoing::Probe { members: vec![] },
            ],
        };
        assert_eq!(
            call.bytes(),
            (12 + 3 * 8) + (13 + 16) + 3 * 8,
            "what an outbox counts"
        );
        assert_eq!(ToGateway::decode(&call.encode()), Ok(call));
        let answer = GatewayAnswer { gone: vec![9, 10] };
        assert_eq!(GatewayAnswer::decode(&answer.encode()), Ok(answer));
        let answer = RoomAnswer { unknown: vec![] };
        assert_eq!(RoomAnswer::decode(&answer.encode()), Ok(answer));
    }

    #[test]
    fn a_lying_or_cut_body_is_refused_without_allocating_for_it() {
        // A count of 2^63 events in a body of a dozen bytes.
        let mut lying = vec![FORMAT, 1, b'g'];
        lying.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(ToRoom::decode(&lying).is_err());
        let whole = ToRoom {
            gateway: "g".into(),
            events: vec![MemberEvent::Data {
                member: 1,
                binary: false,
                bytes: b"SEND\n\n\0".to_vec(),
            }],
        }
        .encode();
        for cut in 0..whole.len() {
            assert!(ToRoom::decode(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = whole.clone();
        longer.push(0);
        assert!(ToRoom::decode(&longer).is_err());
        assert!(ToGateway::decode(&[2, 0, 0]).is_err(), "an unknown format");
    }
}
