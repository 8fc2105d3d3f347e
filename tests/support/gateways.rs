//! Gateway objects as a room's tests see them: each member's end decodes what the room's calls
//! carried to it, and the gateway answers each call (at once, or when the test says).

use std::collections::{BTreeMap, BTreeSet};

use stomp_rooms::relay::{GatewayAnswer, MemberEvent, MemberId, Outgoing, ToGateway, ToRoom};
use stomp_rooms::stomp::{Command, Decoded, Decoder, Frame, Limits, Version};

use super::SimulatedRoom;

/// A gateway's member: (gateway name, member id).
pub type Member = (String, MemberId);

pub fn member(gateway: &str, id: MemberId) -> Member {
    (gateway.to_owned(), id)
}

/// The CONNECT a gateway relays for its member: heart-beats are the gateway's business.
pub const RELAYED_CONNECT: &str = "CONNECT\naccept-version:1.2\nhost:lobby\nheart-beat:0,0\n\n\0";

#[derive(Default)]
pub struct SimulatedGateways {
    received: BTreeMap<Member, Vec<Frame>>,
    decoders: BTreeMap<Member, Decoder>,
    /// Members the room closed: code and reason.
    pub closed: BTreeMap<Member, (u16, String)>,
    /// Every call the gateways received, in order.
    pub calls: Vec<(String, ToGateway)>,
    /// Members each gateway says it no longer holds, in its next answer.
    pub gone: BTreeMap<String, Vec<MemberId>>,
    /// The members each gateway holds (joined, and neither left nor closed nor lost in a
    /// restart): what it answers a probe with.
    held: BTreeMap<String, BTreeSet<MemberId>>,
}

impl SimulatedGateways {
    /// Carries every call the room made to its gateway, each answered at once, until the room
    /// has none due.
    pub fn deliver(&mut self, room: &mut SimulatedRoom) {
        loop {
            let calls = std::mem::take(&mut room.gateway_calls);
            if calls.is_empty() {
                return;
            }
            for (gateway, call) in calls {
                let mut gone = self.receive(&gateway, &call);
                gone.extend(self.gone.remove(&gateway).unwrap_or_default());
                room.gateway_answered(&gateway, Ok(GatewayAnswer { gone }));
            }
        }
    }

    /// A gateway receives a call (the test answers it itself); the members its probes named
    /// that it does not hold are returned.
    pub fn receive(&mut self, gateway: &str, call: &ToGateway) -> Vec<MemberId> {
        self.calls.push((gateway.to_owned(), call.clone()));
        let mut gone = Vec::new();
        for item in &call.items {
            match item {
                Outgoing::Send { members, bytes, .. } => {
                    for &id in members {
                        self.member_receives(member(gateway, id), bytes);
                    }
                }
                Outgoing::Close {
                    member: id,
                    code,
                    reason,
                } => {
                    self.closed
                        .insert(member(gateway, *id), (*code, reason.clone()));
                    self.held.entry(gateway.to_owned()).or_default().remove(id);
                }
                Outgoing::Probe { members } => {
                    let held = self.held.get(gateway);
                    gone.extend(
                        members
                            .iter()
                            .filter(|id| !held.is_some_and(|held| held.contains(id))),
                    );
                }
            }
        }
        gone
    }

    /// A gateway restarts (a crash, a deploy): the platform dropped its sockets without close
    /// events, so the rooms were told nothing.
    pub fn restart(&mut self, gateway: &str) {
        self.held.remove(gateway);
    }

    fn member_receives(&mut self, member: Member, bytes: &[u8]) {
        let decoder = self
            .decoders
            .entry(member.clone())
            .or_insert_with(|| Decoder::new(Limits::default()));
        decoder.push(bytes);
        while let Some(item) = decoder
            .next_item()
            .expect("the room sent a malformed frame")
        {
            if let Decoded::Frame(frame) = item {
                if frame.command == Command::Connected {
                    let version = frame.header("version").and_then(Version::parse);
                    decoder.set_version(version.unwrap_or(Version::V1_0));
                }
                self.received.entry(member.clone()).or_default().push(frame);
            }
        }
    }

    /// A gateway's socket joins the room and connects (its CONNECT relayed), and the gateway
    /// carries what the room answers; the CONNECTED is returned.
    pub fn join(&mut self, room: &mut SimulatedRoom, gateway: &str, id: MemberId) -> Frame {
        let call = ToRoom {
            gateway: gateway.to_owned(),
            events: vec![
                MemberEvent::Joined {
                    member: id,
                    address: None,
                },
                MemberEvent::Data {
                    member: id,
                    binary: false,
                    bytes: RELAYED_CONNECT.as_bytes().to_vec(),
                },
            ],
        };
        let answer = room.gateway_call(&call).expect("the room took the call");
        assert!(answer.unknown.is_empty(), "{answer:?}");
        self.held.entry(gateway.to_owned()).or_default().insert(id);
        self.deliver(room);
        let frames = self.take(gateway, id);
        assert_eq!(frames.len(), 1, "one answer to CONNECT: {frames:?}");
        frames.into_iter().next().unwrap()
    }

    /// A member sends a frame given as `"COMMAND\nheader:value"` and a body; the gateway
    /// carries what the room sends back.
    pub fn frame(
        &mut self,
        room: &mut SimulatedRoom,
        gateway: &str,
        id: MemberId,
        head: &str,
        body: &str,
    ) {
        let call = ToRoom {
            gateway: gateway.to_owned(),
            events: vec![MemberEvent::Data {
                member: id,
                binary: false,
                bytes: format!("{head}\n\n{body}\0").into_bytes(),
            }],
        };
        room.gateway_call(&call);
        self.deliver(room);
    }

    /// A member subscribes with a SUBSCRIBE whose `head` asks for a receipt, and its RECEIPT
    /// is taken: the subscription holds from here.
    pub fn subscribe(&mut self, room: &mut SimulatedRoom, gateway: &str, id: MemberId, head: &str) {
        self.frame(room, gateway, id, head, "");
        let answer = self.take(gateway, id);
        assert!(
            answer.iter().any(|frame| frame.command == Command::Receipt),
            "{answer:?}"
        );
    }

    /// A member's socket closed at its gateway.
    pub fn leave(&mut self, room: &mut SimulatedRoom, gateway: &str, id: MemberId) {
        let call = ToRoom {
            gateway: gateway.to_owned(),
            events: vec![MemberEvent::Left { member: id }],
        };
        self.held.entry(gateway.to_owned()).or_default().remove(&id);
        room.gateway_call(&call);
        self.deliver(room);
    }

    /// Drains the frames a member received.
    pub fn take(&mut self, gateway: &str, id: MemberId) -> Vec<Frame> {
        self.received
            .remove(&member(gateway, id))
            .unwrap_or_default()
    }

    /// Drains the bodies of the MESSAGE frames a member received.
    pub fn bodies(&mut self, gateway: &str, id: MemberId) -> Vec<String> {
        self.take(gateway, id)
            .into_iter()
            .map(|f| {
                assert_eq!(f.command, Command::Message, "{f:?}");
                String::from_utf8(f.body).unwrap()
            })
            .collect()
    }
}
