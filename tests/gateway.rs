//! The gateway engine against a fake room side: the calls it makes are recorded, the rooms'
//! calls are fed to it by hand. Each test runs with the engine kept in memory and again with
//! the object evicted after every step where no call is in flight (sessions survive in the
//! sockets' attachments; see `GatewayHost`).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use stomp_rooms::gateway::testing::MemoryGatewaySockets;
use stomp_rooms::gateway::{
    GatewayHost, GatewayMode, GatewayTurn, MAX_KEPT_CONNECT_BYTES, MAX_ROOM_OUTBOX_BYTES,
};
use stomp_rooms::relay::{
    GatewayAnswer, MemberEvent, MemberId, Outgoing, RoomAnswer, ToGateway, ToRoom,
};
use stomp_rooms::room::auth::{ConnectRequest, Identity};
use stomp_rooms::room::{AlarmChange, AllowAll, Authenticator, Credentials, Settings};

thread_local! {
    static EVICT: Cell<bool> = const { Cell::new(false) };
}

macro_rules! gateway_test {
    (fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body() $body
            #[test]
            fn kept_in_memory() {
                EVICT.with(|e| e.set(false));
                body();
            }
            #[test]
            fn evicted_between_steps() {
                EVICT.with(|e| e.set(true));
                body();
            }
        }
    };
}

fn settings() -> Settings {
    let mut settings: Settings = serde_json::from_value(serde_json::json!({
        "endpoints": ["/ws-stomp"],
        "scaling": { "room_destinations": ["/sub/chat/room/{room}"] },
        "destinations": {
            "topics": ["/sub/"],
            "application": { "/pub/chat/message": "/sub/chat/room/{roomId}", "/pub/": "/sub/" }
        }
    }))
    .expect("settings");
    settings.broker.heart_beat_min_ms = 1_000;
    settings
}

fn endpoint() -> GatewayMode {
    GatewayMode::from_name("endpoint:ws-stomp:0").expect("an endpoint gateway's name")
}

/// A gateway with a fake room side.
struct Net {
    host: GatewayHost,
    sockets: MemoryGatewaySockets,
    /// Calls made, not yet looked at.
    made: Vec<(String, ToRoom)>,
    in_flight: BTreeSet<String>,
    alarm: Option<u64>,
    now: u64,
    evict: bool,
    /// The lines logged, as JSON.
    logs: Vec<String>,
}

impl Net {
    fn new() -> Self {
        Self::with(endpoint(), settings(), Rc::new(AllowAll))
    }

    fn with(mode: GatewayMode, settings: Settings, auth: Rc<dyn Authenticator>) -> Self {
        Self {
            host: GatewayHost::new(mode, settings, auth),
            sockets: MemoryGatewaySockets::default(),
            made: Vec::new(),
            in_flight: BTreeSet::new(),
            alarm: None,
            now: 1_000,
            evict: EVICT.with(Cell::get),
            logs: Vec::new(),
        }
    }

    fn turn<T>(&mut self, turn: GatewayTurn<T>) -> T {
        self.logs
            .extend(turn.logs.into_iter().map(|line| line.json));
        for (room, call) in turn.calls {
            assert!(
                self.in_flight.insert(room.clone()),
                "a second call to {room} while one is in flight"
            );
            assert_eq!(call.gateway, self.host.name());
            self.made.push((room, call));
        }
        match turn.alarm {
            Some(AlarmChange::Set(at)) => self.alarm = Some(at),
            Some(AlarmChange::Delete) => self.alarm = None,
            None => {}
        }
        if self.evict && self.in_flight.is_empty() {
            self.host.evict();
            // Time passes before an evicted object's next event (10 s of quiet at least; 1 ms
            // here, so deadlines stay where the tests put them): the gateway numbers sockets
            // from the clock after a wake.
            self.now += 1;
        }
        turn.result
    }

    fn open(&mut self) -> MemberId {
        let turn = self
            .host
            .open(&mut self.sockets, Some("10.0.0.1".into()), false, self.now);
        self.turn(turn).expect("accepted")
    }

    fn open_sockjs(&mut self) -> MemberId {
        let turn = self.host.open(&mut self.sockets, None, true, self.now);
        self.turn(turn).expect("accepted")
    }

    fn send(&mut self, member: MemberId, text: &str) {
        let turn = self
            .host
            .receive(&mut self.sockets, member, text.as_bytes(), false, self.now);
        self.turn(turn)
    }

    /// Connects a member (STOMP 1.2, no heart-beats) and returns what it was answered.
    fn connect(&mut self, member: MemberId) -> String {
        self.send(member, "CONNECT\naccept-version:1.2\nhost:x\n\n\0");
        let mut got = self.received(member);
        assert_eq!(got.len(), 1, "{got:?}");
        got.remove(0)
    }

    fn connected(&mut self) -> MemberId {
        let member = self.open();
        let reply = self.connect(member);
        assert!(reply.starts_with("CONNECTED\n"), "{reply}");
        member
    }

    fn received(&mut self, member: MemberId) -> Vec<String> {
        self.sockets.take_text(member)
    }

    /// Every room answers its call in flight (and the next, until none is left), all members
    /// known.
    fn settle(&mut self) {
        while let Some(room) = self.in_flight.pop_first() {
            let turn = self.host.room_answered(
                &mut self.sockets,
                &room,
                Ok(RoomAnswer::default()),
                self.now,
            );
            self.turn(turn);
        }
    }

    fn answer(&mut self, room: &str, answer: Result<RoomAnswer, String>) {
        assert!(self.in_flight.remove(room), "no call to {room} in flight");
        let turn = self
            .host
            .room_answered(&mut self.sockets, room, answer, self.now);
        self.turn(turn)
    }

    /// The calls made to `room` since last looked at, each as its events.
    fn calls_to(&mut self, room: &str) -> Vec<Vec<MemberEvent>> {
        let (to, rest) = std::mem::take(&mut self.made)
            .into_iter()
            .partition(|(r, _)| r == room);
        self.made = rest;
        to.into_iter().map(|(_, call)| call.events).collect()
    }

    /// The events sent to `room` since last looked at, readable: `joined`, `left`, or the
    /// frame (without its NUL).
    fn events(&mut self, room: &str) -> Vec<(MemberId, String)> {
        self.calls_to(room)
            .into_iter()
            .flatten()
            .map(|event| match event {
                MemberEvent::Joined { member, .. } => (member, "joined".to_owned()),
                MemberEvent::Left { member } => (member, "left".to_owned()),
                MemberEvent::Data { member, bytes, .. } => (member, readable(&bytes)),
            })
            .collect()
    }

    fn rooms_called(&self) -> BTreeMap<String, usize> {
        let mut rooms = BTreeMap::new();
        for (room, _) in &self.made {
            *rooms.entry(room.clone()).or_default() += 1;
        }
        rooms
    }

    fn room_sends(&mut self, room: &str, items: Vec<Outgoing>) -> GatewayAnswer {
        let call = ToGateway {
            room: room.to_owned(),
            items,
        };
        let turn = self.host.from_room(&mut self.sockets, &call, self.now);
        self.turn(turn)
    }

    fn alarm(&mut self, now: u64) {
        self.now = now;
        let turn = self.host.alarm(&mut self.sockets, now);
        self.turn(turn)
    }
}

/// A frame as text, without its NUL and, when it has no body, without the blank line.
fn readable(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes)
        .trim_end_matches('\0')
        .to_owned();
    if text.ends_with("\n\n") {
        text.pop();
    }
    text
}

fn text(members: &[MemberId], frame: &str) -> Outgoing {
    Outgoing::Send {
        members: members.to_vec(),
        binary: false,
        bytes: frame.as_bytes().to_vec(),
    }
}

// ---- the connection at the gateway ----------------------------------------------------

gateway_test! {
    fn connect_is_answered_by_the_gateway_with_negotiated_heart_beats() {
        let mut net = Net::new();
        let member = net.open();
        net.send(member, "CONNECT\naccept-version:1.1,1.2\nheart-beat:10000,20000\n\n\0");
        let got = net.received(member);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("CONNECTED\n"), "{got:?}");
        assert!(got[0].contains("version:1.2\n"));
        assert!(got[0].contains("heart-beat:1000,1000\n"));
        assert!(got[0].contains(&format!("session:g{member}\n")));
        assert!(net.made.is_empty(), "no room is called for a CONNECT");
        let session = net.host.engine().and_then(|e| e.session(member).cloned());
        if let Some(session) = session {
            let beats = session.heart_beat;
            assert_eq!((beats.send_ms, beats.receive_ms), (20_000, 10_000));
            assert_eq!(
                session.beat_due_ms, None,
                "its pings every 10 s, answered by the platform, cover the 20 s it wants"
            );
}
    }
}

gateway_test! {
    fn bad_credentials_get_an_error_without_any_call_to_a_room() {
        let users = [("alice".to_owned(), "secret".to_owned())].into_iter().collect();
        let mut net = Net::with(endpoint(), settings(), Rc::new(Credentials { users }));
        let member = net.open();
        net.send(member, "CONNECT\naccept-version:1.2\nlogin:alice\npasscode:wrong\n\n\0");
        let got = net.received(member);
        assert!(got[0].starts_with("ERROR\n") && got[0].contains("message:authentication failed"), "{got:?}");
        assert_eq!(net.sockets.closed(member).map(|c| c.0), Some(1008));
        assert!(net.made.is_empty());
        assert!(
            net.logs.iter().any(|line| line.contains(r#""event":"refused""#)
                && line.contains("bad login or passcode")),
            "{:?}",
            net.logs
        );
        let good = net.open();
        net.send(good, "CONNECT\naccept-version:1.2\nlogin:alice\npasscode:secret\n\n\0");
        assert!(net.received(good)[0].starts_with("CONNECTED\n"));
    }
}

gateway_test! {
    fn frames_before_connect_get_an_error() {
        let mut net = Net::new();
        let member = net.open();
        net.send(member, "SEND\ndestination:/topic/x\n\nhi\0");
        let got = net.received(member);
        assert!(got[0].contains("message:not connected"), "{got:?}");
        assert!(net.sockets.closed(member).is_some());
        assert!(net.made.is_empty());
    }
}

gateway_test! {
    fn a_message_over_the_frame_limit_gets_an_error() {
        let mut settings = settings();
        settings.broker.limits.max_frame_bytes = 200;
        let mut net = Net::with(endpoint(), settings, Rc::new(AllowAll));
        let member = net.open();
        net.connect(member);
        let body = "x".repeat(300);
        net.send(member, &format!("SEND\ndestination:/topic/x\n\n{body}\0"));
        let got = net.received(member);
        assert!(got[0].contains("message:message too large"), "{got:?}");
        assert!(net.made.is_empty(), "nothing of it reaches a room");
    }
}

gateway_test! {
    fn connect_timeout_closes_a_socket_that_never_connects() {
        let mut net = Net::new();
        let member = net.open();
        let due = net.alarm.expect("an alarm for the CONNECT timeout");
        assert_eq!(due, 1_000 + 30_000);
        net.alarm(due - 1);
        assert!(net.sockets.closed(member).is_none());
        net.alarm(due);
        assert!(net.received(member)[0].contains("message:CONNECT timeout"));
        assert!(net.sockets.closed(member).is_some());
    }
}

gateway_test! {
    fn liveness_closes_a_silent_socket_and_spares_one_whose_pings_came() {
        let mut settings = settings();
        settings.liveness_check_ms = 60_000;
        let mut net = Net::with(endpoint(), settings, Rc::new(AllowAll));
        let silent = net.open();
        net.send(silent, "CONNECT\naccept-version:1.2\nheart-beat:1000,0\n\n\0");
        let pinging = net.open();
        net.send(pinging, "CONNECT\naccept-version:1.2\nheart-beat:1000,0\n\n\0");
        net.received(silent);
        net.received(pinging);
        // An alarm set earlier (the CONNECT timeouts) fires first and asks for the sweep.
        if let Some(early) = net.alarm.filter(|&at| at < 60_000) {
            net.alarm(early);
        }
        let sweep = net.alarm.expect("an alarm for the liveness sweep");
        assert_eq!(sweep, 60_000, "at most every liveness_check_ms");
        net.sockets.ping(pinging, sweep - 500);
        net.alarm(sweep);
        assert!(net.received(silent)[0].contains("message:heart-beat timeout"));
        assert!(net.sockets.closed(silent).is_some());
        assert!(net.sockets.closed(pinging).is_none(), "its pings were answered by the platform");
        assert!(net.received(pinging).is_empty(), "it asked for no heart-beats");
    }
}

gateway_test! {
    fn heart_beats_not_covered_by_the_clients_pings_are_sent_by_the_gateway() {
        let mut net = Net::new();
        let member = net.open();
        // Pings every 10 s, wants to hear every 5 s: the platform's answers do not cover it.
        let connected_at = net.now;
        net.send(member, "CONNECT\naccept-version:1.2\nheart-beat:10000,5000\n\n\0");
        net.received(member);
        let due = connected_at + 5_000;
        assert_eq!(net.alarm, Some(due));
        net.alarm(due);
        assert_eq!(net.received(member), ["\n"]);
        assert_eq!(net.alarm, Some(due + 5_000));
        // One that pings as often as it wants to hear needs none.
        let covered = net.open();
        net.send(covered, "CONNECT\naccept-version:1.2\nheart-beat:5000,5000\n\n\0");
        net.received(covered);
        net.alarm(due + 5_000);
        assert_eq!(net.received(member), ["\n"]);
        assert!(net.received(covered).is_empty());
    }
}

// ---- routing ------------------------------------------------------------------------------

gateway_test! {
    fn the_first_subscribe_to_a_room_destination_joins_that_room() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        let calls = net.calls_to("7");
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0][0],
            MemberEvent::Joined { member, address: Some("10.0.0.1".into()) }
        );
        let events = net.events_of(&calls[0]);
        assert_eq!(
            events[1..],
            [
                "CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n".to_owned(),
                "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n".to_owned(),
            ]
        );
        assert!(net.made.is_empty(), "no other room is called");
        // The next frame for the room is not a join again.
        net.settle();
        net.send(member, "SUBSCRIBE\nid:1\ndestination:/sub/chat/room/7\n\n\0");
        let events = net.events("7");
        assert_eq!(events, [(member, "SUBSCRIBE\nid:1\ndestination:/sub/chat/room/7\n".to_owned())]);
    }
}

impl Net {
    fn events_of(&self, events: &[MemberEvent]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                MemberEvent::Joined { .. } => "joined".to_owned(),
                MemberEvent::Left { .. } => "left".to_owned(),
                MemberEvent::Data { bytes, .. } => readable(bytes),
            })
            .collect()
    }
}

gateway_test! {
    fn a_send_to_another_destination_goes_to_the_endpoints_room() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SEND\ndestination:/topic/x\n\nhi\0");
        let events = net.events("ws-stomp");
        assert_eq!(events.len(), 3);
        assert_eq!(events[2].1, "SEND\ndestination:/topic/x\ncontent-length:2\n\nhi");
        assert!(net.made.is_empty());
    }
}

gateway_test! {
    fn a_body_routed_send_goes_to_the_room_its_body_names() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SEND\ndestination:/pub/chat/message\n\n{\"roomId\":\"9\",\"text\":\"hi\"}\0");
        let events = net.events("9");
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(events[2].1.starts_with("SEND\ndestination:/pub/chat/message\n"), "the room fills it again");
        net.settle();
        // A prefix route is matched once mapped: /pub/chat/room/4 is /sub/chat/room/4.
        net.send(member, "SEND\ndestination:/pub/chat/room/4\n\nhey\0");
        assert_eq!(net.events("4").len(), 3);
        assert!(net.made.is_empty());
    }
}

gateway_test! {
    fn a_shard_gateway_sends_every_frame_to_its_room() {
        let mode = GatewayMode::from_name("shard:lobby:2").expect("a shard's name");
        let mut net = Net::with(mode, settings(), Rc::new(AllowAll));
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.send(member, "SEND\ndestination:/topic/x\n\nhi\0");
        assert_eq!(net.rooms_called(), [("lobby".to_owned(), 1)].into_iter().collect());
        net.settle();
        assert_eq!(net.events("lobby").len(), 4, "joined, CONNECT, SUBSCRIBE, SEND");
    }
}

gateway_test! {
    fn one_call_is_in_flight_per_room_and_the_rest_wait_for_the_next() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.send(member, "SEND\ndestination:/sub/chat/room/7\n\none\0");
        net.send(member, "SEND\ndestination:/sub/chat/room/7\n\ntwo\0");
        net.send(member, "SEND\ndestination:/topic/x\n\nelsewhere\0");
        assert_eq!(net.calls_to("7").len(), 1, "one call, in flight");
        assert_eq!(net.calls_to("ws-stomp").len(), 1, "another room's call does not wait");
        net.answer("7", Ok(RoomAnswer::default()));
        let next = net.calls_to("7");
        assert_eq!(next.len(), 1);
        let frames = net.events_of(&next[0]);
        assert_eq!(frames.len(), 2);
        assert!(frames[0].ends_with("one") && frames[1].ends_with("two"), "{frames:?}");
    }
}

gateway_test! {
    fn an_ack_id_names_the_room_whose_message_it_settles() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\nack:client-individual\n\n\0");
        net.send(member, "SUBSCRIBE\nid:1\ndestination:/queue/work\nack:client\n\n\0");
        net.settle();
        net.made.clear();
        let message = "MESSAGE\nsubscription:0\nmessage-id:5\ndestination:/sub/chat/room/7\nack:5-0\ncontent-length:2\n\nhi\0";
        net.room_sends("7", vec![text(&[member], message)]);
        assert_eq!(
            net.received(member),
            [message.replace("ack:5-0", "ack:7/5-0")],
            "the client sees the room in the ack id"
        );
        net.send(member, "ACK\nid:7/5-0\n\n\0");
        assert_eq!(net.events("7"), [(member, "ACK\nid:5-0\n".to_owned())], "the room gets its own id");
        net.settle();
        // An ack id naming no room the socket joined: the socket joined two rooms, so the
        // gateway's own answers it.
        net.send(member, "NACK\nid:9-9\n\n\0");
        assert_eq!(net.events("ws-stomp"), [(member, "NACK\nid:9-9\n".to_owned())]);
    }
}

gateway_test! {
    fn unsubscribe_goes_to_the_room_of_its_subscription() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:a\ndestination:/sub/chat/room/7\n\n\0");
        net.settle();
        net.made.clear();
        net.send(member, "UNSUBSCRIBE\nid:a\n\n\0");
        assert_eq!(net.events("7"), [(member, "UNSUBSCRIBE\nid:a\n".to_owned())]);
        net.settle();
        net.send(member, "UNSUBSCRIBE\nid:a\n\n\0");
        assert_eq!(net.events("ws-stomp").len(), 3, "an unknown id: the endpoint's room answers");
    }
}

// ---- from rooms ---------------------------------------------------------------------------

gateway_test! {
    fn a_send_for_three_members_reaches_their_three_sockets() {
        let mut net = Net::new();
        let members: Vec<MemberId> = (0..3).map(|_| net.connected()).collect();
        for &member in &members {
            net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
            net.settle();
        }
        let stranger = net.connected();
        let message = "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/sub/chat/room/7\ncontent-length:2\n\nhi\0";
        let mut to = members.clone();
        to.push(stranger);
        to.push(999_999);
        let answer = net.room_sends("7", vec![text(&to, message)]);
        for &member in &members {
            assert_eq!(net.received(member), [message]);
        }
        assert!(net.received(stranger).is_empty(), "it never joined room 7");
        assert_eq!(answer.gone, [999_999, stranger], "in order");
    }
}

gateway_test! {
    fn a_call_carrying_several_frames_for_the_same_members_reaches_each_as_one_message() {
        let mut net = Net::new();
        let members: Vec<MemberId> = (0..2).map(|_| net.connected()).collect();
        for &member in &members {
            net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
            net.settle();
        }
        let message = |n: u32| {
            format!("MESSAGE\nsubscription:0\nmessage-id:{n}\ndestination:/sub/chat/room/7\ncontent-length:2\n\nm{n}\0")
        };
        let items = (1..=3).map(|n| text(&members, &message(n))).collect();
        net.room_sends("7", items);
        for &member in &members {
            assert_eq!(
                net.received(member),
                [format!("{}{}{}", message(1), message(2), message(3))],
                "one WebSocket message of three frames, in order"
            );
        }
    }
}

gateway_test! {
    fn a_close_in_a_call_leaves_after_the_frames_before_it_and_alone() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.settle();
        let message = "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/sub/chat/room/7\ncontent-length:2\n\nhi\0";
        let error = "ERROR\nmessage:bye\ncontent-length:0\n\n\0";
        let close = Outgoing::Close { member, code: 1008, reason: "bye".to_owned() };
        net.room_sends("7", vec![text(&[member], message), text(&[member], error), close]);
        assert_eq!(net.received(member), [format!("{message}{error}")]);
        assert!(net.sockets.closed(member).is_some(), "closed after them");
    }
}

gateway_test! {
    fn a_probe_is_answered_with_the_members_not_held_in_that_room() {
        let mut net = Net::new();
        let joined = net.connected();
        net.send(joined, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.settle();
        let elsewhere = net.connected();
        net.send(elsewhere, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/8\n\n\0");
        net.settle();
        let probe = Outgoing::Probe { members: vec![joined, elsewhere, 5] };
        let answer = net.room_sends("7", vec![probe]);
        assert_eq!(answer.gone, [5, elsewhere]);
        assert!(net.received(joined).is_empty(), "a probe sends nothing");
        assert_eq!(net.sockets.closed(joined), None);
        // A restart drops every socket without close events: the gateway holds none.
        net.host.crash();
        net.sockets = MemoryGatewaySockets::default();
        net.now += 1_000;
        let answer = net.room_sends("7", vec![Outgoing::Probe { members: vec![joined] }]);
        assert_eq!(answer.gone, [joined]);
    }
}

gateway_test! {
    fn connected_from_a_room_is_dropped() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.settle();
        let answer = net.room_sends(
            "7",
            vec![
                text(&[member], "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0"),
                text(&[member], "RECEIPT\nreceipt-id:x\n\n\0"),
            ],
        );
        assert!(answer.gone.is_empty());
        assert_eq!(net.received(member), ["RECEIPT\nreceipt-id:x\n\n\0"]);
    }
}

gateway_test! {
    fn close_from_a_room_closes_the_socket_and_tells_its_other_rooms() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.send(member, "SUBSCRIBE\nid:1\ndestination:/topic/news\n\n\0");
        net.settle();
        net.made.clear();
        let error = "ERROR\nmessage:token expired\n\n\0";
        net.room_sends(
            "7",
            vec![
                text(&[member], error),
                Outgoing::Close { member, code: 1008, reason: "token expired".into() },
            ],
        );
        assert_eq!(net.received(member), [error]);
        assert_eq!(net.sockets.closed(member), Some((1008, "token expired".into())));
        assert_eq!(net.events("ws-stomp"), [(member, "left".to_owned())]);
        assert!(net.events("7").is_empty(), "the room that closed it knows");
    }
}

gateway_test! {
    fn a_closed_socket_leaves_every_room_it_joined() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.send(member, "SUBSCRIBE\nid:1\ndestination:/sub/chat/room/8\n\n\0");
        net.settle();
        net.made.clear();
        let turn = net.host.closed(&mut net.sockets, member, net.now);
        net.turn(turn);
        assert_eq!(net.events("7"), [(member, "left".to_owned())]);
        assert_eq!(net.events("8"), [(member, "left".to_owned())]);
    }
}

gateway_test! {
    fn a_failed_call_closes_the_rooms_members_with_an_error_naming_it() {
        let mut net = Net::new();
        let in_7 = net.connected();
        let elsewhere = net.connected();
        net.send(in_7, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.send(in_7, "SUBSCRIBE\nid:1\ndestination:/topic/news\n\n\0");
        net.send(elsewhere, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/8\n\n\0");
        net.made.clear();
        net.answer("7", Err("the object is overloaded".into()));
        let got = net.received(in_7);
        assert!(got[0].starts_with("ERROR\n") && got[0].contains("message:lost room 7"), "{got:?}");
        assert_eq!(net.sockets.closed(in_7).map(|c| c.0), Some(1011));
        assert!(net.sockets.closed(elsewhere).is_none());
        net.settle();
        assert_eq!(net.events("ws-stomp"), [(in_7, "left".to_owned())]);
    }
}

gateway_test! {
    fn a_member_the_room_does_not_know_is_closed() {
        let mut net = Net::new();
        let a = net.connected();
        let b = net.connected();
        net.send(a, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.send(b, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.answer("7", Ok(RoomAnswer { unknown: vec![a] }));
        assert!(net.received(a)[0].contains("message:lost room 7"));
        assert!(net.sockets.closed(a).is_some());
        assert!(net.sockets.closed(b).is_none());
    }
}

// ---- DISCONNECT and transactions ------------------------------------------------------------

gateway_test! {
    fn disconnect_with_a_receipt_across_two_rooms_gives_one_receipt_after_both() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.send(member, "SUBSCRIBE\nid:1\ndestination:/sub/chat/room/8\n\n\0");
        net.settle();
        net.made.clear();
        net.send(member, "DISCONNECT\nreceipt:bye\n\n\0");
        assert_eq!(net.events("7"), [(member, "DISCONNECT\nreceipt:bye\n".to_owned())]);
        assert_eq!(net.events("8"), [(member, "DISCONNECT\nreceipt:bye\n".to_owned())]);
        net.settle();
        let receipt = "RECEIPT\nreceipt-id:bye\n\n\0";
        let close = |member| Outgoing::Close { member, code: 1000, reason: "DISCONNECT".into() };
        net.room_sends("7", vec![text(&[member], receipt), close(member)]);
        assert!(net.received(member).is_empty(), "one room has answered, not both");
        assert!(net.sockets.closed(member).is_none());
        net.room_sends("8", vec![text(&[member], receipt), close(member)]);
        assert_eq!(net.received(member), [receipt]);
        assert_eq!(net.sockets.closed(member).map(|c| c.0), Some(1000));
        net.settle();
        assert!(net.made.is_empty(), "no Left: the rooms ended it on its DISCONNECT");
    }
}

gateway_test! {
    fn disconnect_without_rooms_is_answered_by_the_gateway() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "DISCONNECT\nreceipt:77\n\n\0");
        assert_eq!(net.received(member), ["RECEIPT\nreceipt-id:77\n\n\0"]);
        assert_eq!(net.sockets.closed(member).map(|c| c.0), Some(1000));
        assert!(net.made.is_empty());
    }
}

gateway_test! {
    fn a_transaction_is_bound_to_its_first_frames_room_and_may_not_span_two() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "BEGIN\ntransaction:t\nreceipt:r\n\n\0");
        assert_eq!(net.received(member), ["RECEIPT\nreceipt-id:r\n\n\0"], "BEGIN is kept at the gateway");
        assert!(net.made.is_empty());
        net.send(member, "SEND\ndestination:/sub/chat/room/7\ntransaction:t\n\none\0");
        let events: Vec<String> = net.events("7").into_iter().map(|(_, e)| e).collect();
        assert_eq!(events[2], "BEGIN\ntransaction:t\n");
        assert!(events[3].starts_with("SEND\ndestination:/sub/chat/room/7\ntransaction:t\n"));
        net.settle();
        net.send(member, "SEND\ndestination:/sub/chat/room/8\ntransaction:t\n\ntwo\0");
        let got = net.received(member);
        assert!(got[0].starts_with("ERROR\n") && got[0].contains("message:transaction spans rooms"), "{got:?}");
        assert!(net.sockets.closed(member).is_some());
        assert_eq!(net.events("7"), [(member, "left".to_owned())]);
        assert!(net.events("8").is_empty(), "nothing of it reached room 8");
    }
}

gateway_test! {
    fn commit_goes_to_the_transactions_room_and_an_unbound_one_is_answered_here() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "BEGIN\ntransaction:t\n\n\0");
        net.send(member, "SEND\ndestination:/sub/chat/room/7\ntransaction:t\n\none\0");
        net.settle();
        net.made.clear();
        net.send(member, "COMMIT\ntransaction:t\nreceipt:c\n\n\0");
        assert_eq!(net.events("7"), [(member, "COMMIT\ntransaction:t\nreceipt:c\n".to_owned())]);
        net.send(member, "BEGIN\ntransaction:u\n\n\0");
        net.send(member, "ABORT\ntransaction:u\nreceipt:a\n\n\0");
        assert_eq!(net.received(member), ["RECEIPT\nreceipt-id:a\n\n\0"]);
        net.settle();
        assert!(net.made.is_empty());
    }
}

// ---- SockJS ------------------------------------------------------------------------------

gateway_test! {
    fn sockjs_sockets_are_framed_both_ways() {
        let mut net = Net::new();
        let member = net.open_sockjs();
        assert_eq!(net.received(member), ["o"]);
        net.send(member, r#"["CONNECT\naccept-version:1.2\n\n\u0000"]"#);
        let got = net.received(member);
        assert!(got[0].starts_with(r#"a["CONNECTED\n"#), "{got:?}");
        net.send(member, r#"["SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\u0000"]"#);
        net.settle();
        let plain = net.connected();
        net.send(plain, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.settle();
        let message = "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/sub/chat/room/7\ncontent-length:2\n\nhi\0";
        net.room_sends("7", vec![text(&[member, plain], message)]);
        assert_eq!(net.received(plain), [message]);
        assert_eq!(
            net.received(member),
            [stomp_rooms::sockjs::messages_frame([message])]
        );
        net.send(member, "not json");
        assert_eq!(net.received(member), [r#"c[1002,"Broken framing."]"#]);
        assert_eq!(net.sockets.closed(member).map(|c| c.0), Some(1002));
    }
}

gateway_test! {
    fn sockjs_clients_get_heart_beats_from_the_gateway() {
        let mut net = Net::new();
        let member = net.open_sockjs();
        let connected_at = net.now;
        net.send(member, r#"["CONNECT\naccept-version:1.2\nheart-beat:5000,5000\n\n\u0000"]"#);
        net.received(member);
        // Its pings come framed, and the platform answers only a bare "\n".
        let due = connected_at + 5_000;
        assert_eq!(net.alarm, Some(due));
        net.alarm(due);
        assert_eq!(net.received(member), [r#"a["\n"]"#]);
    }
}

// ---- eviction -----------------------------------------------------------------------------

gateway_test! {
    fn a_session_survives_eviction_with_its_rooms_and_subscriptions() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\nack:client\n\n\0");
        net.settle();
        net.send(member, "SUBSCRIBE\nid:1\ndestination:/topic/news\n\n\0");
        net.settle();
        net.made.clear();
        let message = "MESSAGE\nsubscription:0\nmessage-id:5\ndestination:/sub/chat/room/7\nack:a5\ncontent-length:0\n\n\0";
        net.room_sends("7", vec![text(&[member], message)]);
        assert_eq!(net.received(member), [message.replace("ack:a5", "ack:7/a5")]);
        // Room 7 is joined already: no second join, and the ack goes where it came from.
        net.send(member, "ACK\nid:7/a5\n\n\0");
        net.settle();
        net.send(member, "UNSUBSCRIBE\nid:0\n\n\0");
        net.settle();
        assert_eq!(
            net.events("7"),
            [(member, "ACK\nid:a5\n".to_owned()), (member, "UNSUBSCRIBE\nid:0\n".to_owned())]
        );
        net.send(member, "SEND\ndestination:/topic/news\n\nx\0");
        assert_eq!(net.events("ws-stomp").len(), 1, "joined before: the SEND alone");
        net.settle();
        if net.evict {
            assert!(net.host.wakes() > 3, "woken {} times", net.host.wakes());
        } else {
            assert_eq!(net.host.wakes(), 1);
        }
    }
}

// ---- bounds -------------------------------------------------------------------------------

gateway_test! {
    fn a_rooms_outbox_is_bounded_while_its_call_is_in_flight() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        assert_eq!(net.calls_to("7").len(), 1, "in flight, and not answered");
        let body = "x".repeat(1_000_000);
        let send = format!("SEND\ndestination:/sub/chat/room/7\n\n{body}\0");
        let fit = MAX_ROOM_OUTBOX_BYTES / (send.len() + 64);
        for _ in 0..fit {
            net.send(member, &send);
        }
        assert!(net.received(member).is_empty(), "{fit} frames fit");
        net.send(member, &send);
        let got = net.received(member);
        assert!(got[0].starts_with("ERROR\n") && got[0].contains("message:room busy"), "{got:?}");
        assert_eq!(net.sockets.closed(member).map(|c| c.0), Some(1013));
        net.settle();
        let queued = net.calls_to("7").concat();
        assert_eq!(queued.len(), fit + 1, "the frames that fit, then its Left");
        assert_eq!(queued.last(), Some(&MemberEvent::Left { member }));
    }
}

gateway_test! {
    fn every_unacknowledged_message_of_every_room_is_acknowledged_in_its_own_room() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\nack:client-individual\n\n\0");
        net.send(member, "SUBSCRIBE\nid:1\ndestination:/queue/work\nack:client-individual\n\n\0");
        net.settle();
        // A hundred unacknowledged messages from each of two rooms: the gateway remembers
        // none of them, and each ACK still reaches the room that sent its message.
        for id in 0..100 {
            let chat = format!("MESSAGE\nsubscription:0\nmessage-id:{id}\ndestination:/sub/chat/room/7\nack:{id}-0\ncontent-length:0\n\n\0");
            net.room_sends("7", vec![text(&[member], &chat)]);
            let work = format!("MESSAGE\nsubscription:1\nmessage-id:{id}\ndestination:/queue/work\nack:{id}-1\ncontent-length:0\n\n\0");
            net.room_sends("ws-stomp", vec![text(&[member], &work)]);
        }
        net.settle();
        net.made.clear();
        let (mut to_chat, mut to_endpoint) = (Vec::new(), Vec::new());
        for id in 0..100 {
            net.send(member, &format!("ACK\nid:7/{id}-0\n\n\0"));
            net.send(member, &format!("ACK\nid:ws-stomp/{id}-1\n\n\0"));
            to_chat.extend(net.events("7"));
            to_endpoint.extend(net.events("ws-stomp"));
            net.settle();
            net.made.clear();
        }
        assert_eq!(to_chat.len(), 100);
        assert_eq!(to_endpoint.len(), 100);
        assert_eq!(to_chat[99], (member, "ACK\nid:99-0\n".to_owned()));
        assert_eq!(to_endpoint[0], (member, "ACK\nid:0-1\n".to_owned()));
    }
}

gateway_test! {
    fn connect_headers_kept_for_rooms_are_bounded() {
        let mut net = Net::new();
        let member = net.open();
        let passcode = "p".repeat(MAX_KEPT_CONNECT_BYTES);
        net.send(member, &format!("CONNECT\naccept-version:1.2\nlogin:a\npasscode:{passcode}\n\n\0"));
        let got = net.received(member);
        assert!(got[0].contains("message:CONNECT too large"), "{got:?}");
        assert!(net.sockets.closed(member).is_some());
    }
}

/// Lets everyone in until a fixed time, as a token would.
struct ExpiresAt(u64);

impl Authenticator for ExpiresAt {
    fn authenticate(&self, _: &ConnectRequest) -> Result<Identity, String> {
        Ok(Identity {
            expires_ms: Some(self.0),
            ..Identity::default()
        })
    }
}

gateway_test! {
    fn a_connection_whose_token_expires_is_closed_by_the_gateway() {
        let mut net = Net::with(endpoint(), settings(), Rc::new(ExpiresAt(50_000)));
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        net.settle();
        net.made.clear();
        while let Some(at) = net.alarm.filter(|&at| at < 50_000) {
            net.alarm(at);
        }
        assert_eq!(net.alarm, Some(50_000));
        net.alarm(50_000);
        assert!(net.received(member)[0].contains("message:token expired"));
        assert_eq!(net.sockets.closed(member).map(|c| c.0), Some(1008));
        assert_eq!(net.events("7"), [(member, "left".to_owned())]);
    }
}

gateway_test! {
    fn partly_arrived_frames_are_bounded_for_all_members_together() {
        let mut settings = settings();
        settings.broker.budget.max_partial_bytes = 1_000;
        let mut net = Net::with(endpoint(), settings, Rc::new(AllowAll));
        if net.evict {
            // Partly-arrived frames live in memory only: an eviction (after 10 s of quiet)
            // drops them, so there is nothing to count across one.
            return;
        }
        let first = net.connected();
        let second = net.connected();
        let half = format!("SEND\ndestination:/topic/x\n\n{}", "x".repeat(600));
        net.send(first, &half);
        assert!(net.sockets.closed(first).is_none(), "600 bytes fit");
        net.send(second, &half);
        let got = net.received(second);
        assert!(got[0].contains("message:gateway busy"), "{got:?}");
        assert_eq!(net.sockets.closed(second).map(|c| c.0), Some(1013));
        net.send(first, "\0");
        assert_eq!(net.events("ws-stomp").len(), 3, "the first's frame completes");
    }
}

gateway_test! {
    fn sockets_past_the_rooms_connection_caps_are_refused_in_the_rooms_words() {
        let mut settings = settings();
        settings.broker.max_connections = 3;
        settings.broker.max_connections_per_address = 2;
        let mut net = Net::with(endpoint(), settings, Rc::new(AllowAll));
        let first = net.open();
        let second = net.open();
        // A third from the same address, that never joins a room, is not held.
        let third = net.open();
        let got = net.received(third);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("ERROR\n"), "{got:?}");
        assert!(got[0].contains("message:too many connections\n"), "{got:?}");
        assert!(got[0].contains("(max_connections_per_address)"), "{got:?}");
        assert_eq!(net.sockets.closed(third).map(|c| c.0), Some(1013));
        assert_eq!(net.sockets.closed(first), None);
        assert_eq!(net.sockets.closed(second), None);
        let turn = net
            .host
            .open(&mut net.sockets, Some("10.0.0.2".into()), false, net.now);
        let other = net.turn(turn).expect("accepted");
        assert_eq!(net.sockets.closed(other), None, "another address");
        let turn = net
            .host
            .open(&mut net.sockets, Some("10.0.0.3".into()), false, net.now);
        let fourth = net.turn(turn).expect("accepted");
        let got = net.received(fourth);
        assert!(got[0].contains("message:room full\n"), "{got:?}");
        assert!(got[0].contains("(max_connections)"), "{got:?}");
        assert_eq!(net.sockets.closed(fourth).map(|c| c.0), Some(1013));
        // A socket that closes frees its place.
        let turn = net.host.closed(&mut net.sockets, first, net.now);
        net.turn(turn);
        let again = net.open();
        assert_eq!(net.sockets.closed(again), None);
        let reply = net.connect(again);
        assert!(reply.starts_with("CONNECTED\n"), "{reply}");
    }
}

gateway_test! {
    fn a_members_first_frame_for_a_room_counts_its_join_against_the_rooms_outbox() {
        let subscribe = "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0";
        let filler = |body: &str| format!("SEND\ndestination:/sub/chat/room/7\n\n{body}\0");
        let body = "x".repeat(400_000);
        // What each frame takes in a call, measured on another gateway.
        let mut probe = Net::new();
        let scout = probe.connected();
        probe.send(scout, subscribe);
        probe.settle();
        probe.send(scout, &filler(&body));
        probe.settle();
        let sizes: Vec<usize> = probe
            .calls_to("7")
            .concat()
            .into_iter()
            .filter_map(|event| match event {
                MemberEvent::Data { bytes, .. } => Some(bytes.len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes.len(), 3, "CONNECT, SUBSCRIBE, SEND");
        let (subscribe_len, filler_len) = (sizes[1], sizes[2]);
        let overhead = filler_len - body.len();

        let mut net = Net::new();
        let filling = net.connected();
        let newcomer = net.connected();
        net.send(filling, subscribe);
        assert_eq!(net.calls_to("7").len(), 1, "in flight, and not answered");
        // Room 7's outbox is filled to leave room for the newcomer's SUBSCRIBE alone, not for
        // its join and CONNECT too.
        let gap = 16 + subscribe_len + 8;
        let each = 16 + filler_len;
        let whole = (MAX_ROOM_OUTBOX_BYTES - gap) / each - 1;
        for _ in 0..whole {
            net.send(filling, &filler(&body));
        }
        let rest = MAX_ROOM_OUTBOX_BYTES - gap - whole * each;
        net.send(filling, &filler(&"x".repeat(rest - 16 - overhead)));
        assert!(net.received(filling).is_empty(), "the filling fits");
        net.send(newcomer, subscribe);
        let got = net.received(newcomer);
        assert!(
            got.first().is_some_and(|f| f.starts_with("ERROR\n") && f.contains("message:room busy")),
            "{got:?}"
        );
        assert_eq!(net.sockets.closed(newcomer).map(|c| c.0), Some(1013));
        net.settle();
        let joined = net.calls_to("7").concat();
        assert!(
            !joined.contains(&MemberEvent::Left { member: newcomer }),
            "the newcomer never joined room 7"
        );
    }
}

gateway_test! {
    fn a_call_to_a_room_unanswered_for_a_minute_counts_as_failed() {
        let mut net = Net::new();
        let member = net.connected();
        net.send(member, "SUBSCRIBE\nid:0\ndestination:/sub/chat/room/7\n\n\0");
        assert_eq!(net.calls_to("7").len(), 1);
        let sent = net.now;
        assert!(
            net.alarm.is_some_and(|at| at <= sent + 60_000),
            "the alarm covers the call in flight: {:?}",
            net.alarm
        );
        net.alarm(sent + 59_999);
        assert!(net.received(member).is_empty());
        assert_eq!(net.sockets.closed(member), None);
        // Its answer never comes (lost on the way).
        net.in_flight.clear();
        net.alarm(sent + 60_000);
        let got = net.received(member);
        assert!(
            got.first().is_some_and(|f| f.starts_with("ERROR\n") && f.contains("message:lost room 7")),
            "{got:?}"
        );
        assert_eq!(net.sockets.closed(member).map(|c| c.0), Some(1011));
    }
}

gateway_test! {
fn the_alarm_follows_the_earliest_member_deadline_as_members_open_connect_beat_and_leave() {
    let mut net = Net::new();
    let timeout = settings().broker.connect_timeout_ms;
    let first_opened = net.now;
    let first = net.open();
    assert_eq!(net.alarm, Some(first_opened + timeout), "the first's CONNECT deadline");
    net.now += 2_000;
    let second_opened = net.now;
    let second = net.open();
    assert_eq!(net.alarm, Some(first_opened + timeout), "the earlier deadline stays first");
    // The first connects without heart-beats: it has no deadline left, so when the alarm
    // fires it asks for the second's CONNECT deadline next.
    assert!(net.connect(first).starts_with("CONNECTED\n"));
    net.alarm(first_opened + timeout);
    assert_eq!(net.sockets.closed(first), None);
    assert_eq!(net.sockets.closed(second), None, "not due yet");
    assert_eq!(net.alarm, Some(second_opened + timeout));
    // The second connects asking for a heart-beat every 5 s: the alarm set for its CONNECT
    // fires, finds it connected, and asks for the heart-beat it is owed.
    let beat_due = net.now + 5_000;
    net.send(second, "CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,5000\n\n\0");
    assert!(net.received(second)[0].starts_with("CONNECTED\n"));
    net.alarm(second_opened + timeout);
    assert_eq!(net.sockets.closed(second), None);
    assert_eq!(net.alarm, Some(beat_due));
    net.alarm(beat_due);
    assert_eq!(net.received(second), vec!["\n".to_owned()], "the heart-beat it was owed");
    assert_eq!(net.alarm, Some(beat_due + 5_000), "and the next one");
    // Once the second leaves, no member has a deadline: the next alarm asks for none.
    let turn = net.host.closed(&mut net.sockets, second, net.now);
    net.turn(turn);
    let turn = net.host.alarm(&mut net.sockets, beat_due + 5_000);
    assert_eq!(turn.alarm, None, "no alarm is asked for");
    net.turn(turn);
    assert!(net.received(first).is_empty());
}
}
