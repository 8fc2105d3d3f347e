//! The room's side of gateway objects: members (sockets held by gateways) are connections of
//! the room like its own sockets, what the room sends them travels in one call at a time per
//! gateway, each message once per gateway, and a gateway that fails or falls behind is
//! forgotten without holding up the rest of the room.

mod support;

use std::collections::BTreeMap;

use stomp_rooms::relay::{GatewayAnswer, MemberEvent, Outgoing, RoomAnswer, ToRoom};
use stomp_rooms::room::members::{Placement, CALL_TIMEOUT_MS, MAX_GATEWAY_OUTBOX_BYTES};
use stomp_rooms::room::members::{LEASED_SOCKETS, LEASE_MS, MAX_LEASED_SOCKETS};
use stomp_rooms::room::{PublishRate, Settings, Storage};
use stomp_rooms::stomp::Command;
use support::gateways::{member, SimulatedGateways};
use support::{Eviction, SimulatedRoom};

const A: &str = "shard:lobby:0";
const B: &str = "endpoint:ws-stomp:3";

/// `/stats`' members by gateway (left out of a room without any).
fn members_by_gateway(room: &mut SimulatedRoom) -> BTreeMap<String, usize> {
    serde_json::from_value(room.stats()["members"].clone()).unwrap_or_default()
}

fn presence_events(frames: &[stomp_rooms::stomp::Frame]) -> Vec<serde_json::Value> {
    frames
        .iter()
        .map(|f| serde_json::from_slice(&f.body).unwrap())
        .collect()
}

room_test! {
fn members_of_two_gateways_and_a_direct_socket_get_every_message_in_order() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    let connected = gateways.join(&mut room, A, 7);
    assert_eq!(connected.command, Command::Connected);
    gateways.join(&mut room, B, 7);
    gateways.join(&mut room, B, 8);
    for (gateway, id) in [(A, 7), (B, 7), (B, 8)] {
        gateways.frame(&mut room, gateway, id, "SUBSCRIBE\nid:m\ndestination:/topic/chat", "");
    }
    room.publish(1, "/topic/chat", "one");
    gateways.deliver(&mut room);
    gateways.frame(&mut room, A, 7, "SEND\ndestination:/topic/chat", "two");
    room.publish(1, "/topic/chat", "three");
    gateways.deliver(&mut room);
    gateways.frame(&mut room, B, 8, "SEND\ndestination:/topic/chat", "four");
    let all = ["one", "two", "three", "four"];
    assert_eq!(room.bodies(1), all);
    for (gateway, id) in [(A, 7), (B, 7), (B, 8)] {
        assert_eq!(gateways.bodies(gateway, id), all, "{gateway} {id}");
    }
}
}

#[test]
fn a_message_to_three_members_of_one_gateway_is_one_send_naming_all_three() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    for id in [1, 2, 3] {
        gateways.join(&mut room, A, id);
        gateways.frame(
            &mut room,
            A,
            id,
            "SUBSCRIBE\nid:m\ndestination:/topic/chat",
            "",
        );
    }
    gateways.calls.clear();
    room.publish(1, "/topic/chat", "hello");
    gateways.deliver(&mut room);
    assert_eq!(gateways.calls.len(), 1);
    let (gateway, call) = &gateways.calls[0];
    assert_eq!(gateway, A);
    assert_eq!(call.room, "lobby");
    match call.items.as_slice() {
        [Outgoing::Send { members, bytes, .. }] => {
            assert_eq!(members, &[1, 2, 3]);
            assert!(bytes.starts_with(b"MESSAGE\n"));
        }
        items => panic!("one send for the three: {items:?}"),
    }
}

/// Calls in flight keep the object in memory (the platform does not evict an object awaiting
/// a fetch), so this runs kept in memory; the room is evicted once the calls are answered.
#[test]
fn one_call_in_flight_per_gateway_and_what_comes_meanwhile_waits_for_the_next() {
    support::with_eviction(Eviction::EveryStep, || {
        let mut room = SimulatedRoom::new();
        let mut gateways = SimulatedGateways::default();
        room.connect(1, "");
        gateways.join(&mut room, A, 1);
        gateways.join(&mut room, B, 1);
        for gateway in [A, B] {
            gateways.frame(
                &mut room,
                gateway,
                1,
                "SUBSCRIBE\nid:m\ndestination:/topic/chat",
                "",
            );
        }
        room.publish(1, "/topic/chat", "one");
        let first = std::mem::take(&mut room.gateway_calls);
        assert_eq!(first.len(), 2, "one call to each gateway");
        room.publish(1, "/topic/chat", "two");
        room.publish(1, "/topic/chat", "three");
        assert!(
            room.gateway_calls.is_empty(),
            "each gateway has a call in flight"
        );
        // A answers: its next call carries both messages that waited; B's still waits.
        let (gateway, call) = first.iter().find(|(g, _)| g == A).unwrap();
        gateways.receive(gateway, call);
        room.gateway_answered(A, Ok(GatewayAnswer::default()));
        let next = std::mem::take(&mut room.gateway_calls);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].0, A);
        assert_eq!(next[0].1.items.len(), 2, "two and three in one call");
        gateways.receive(A, &next[0].1);
        room.gateway_answered(A, Ok(GatewayAnswer::default()));
        let (gateway, call) = first.iter().find(|(g, _)| g == B).unwrap();
        gateways.receive(gateway, call);
        room.gateway_answered(B, Ok(GatewayAnswer::default()));
        gateways.deliver(&mut room);
        for gateway in [A, B] {
            assert_eq!(gateways.bodies(gateway, 1), ["one", "two", "three"]);
        }
        assert_eq!(room.stats()["gateway_calls"]["failed"], 0);
    });
}

room_test! {
fn a_receipt_after_a_members_subscribe_survives_a_crash() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, A, 5);
    gateways.frame(
        &mut room,
        A,
        5,
        "SUBSCRIBE\nid:m\ndestination:/topic/chat\nreceipt:r1",
        "",
    );
    let receipt = gateways.take(A, 5);
    assert_eq!(receipt.len(), 1);
    assert_eq!(receipt[0].command, Command::Receipt);
    room.restart();
    room.connect(1, "");
    room.publish(1, "/topic/chat", "after the crash");
    gateways.deliver(&mut room);
    assert_eq!(gateways.bodies(A, 5), ["after the crash"]);
    assert_eq!(room.stats()["members"], serde_json::json!({ A: 1 }));
}
}

room_test! {
fn presence_lists_members_and_says_when_they_leave() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "login:alice\n");
    gateways.join(&mut room, A, 9);
    room.subscribe(1, "p", "/presence");
    let snapshot = presence_events(&room.take(1));
    assert_eq!(snapshot[0]["members"].as_array().unwrap().len(), 2, "{snapshot:?}");
    gateways.join(&mut room, B, 9);
    gateways.leave(&mut room, A, 9);
    let events = presence_events(&room.take(1));
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["join", "leave"]);
    assert_eq!(room.stats()["members"], serde_json::json!({ B: 1 }));
}
}

room_test! {
fn members_ack_and_nack_queue_messages() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    for (gateway, id) in [(A, 1), (B, 1)] {
        gateways.join(&mut room, gateway, id);
        gateways.frame(
            &mut room,
            gateway,
            id,
            "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
            "",
        );
    }
    room.publish(1, "/queue/work", "job");
    gateways.deliver(&mut room);
    let first = gateways.take(A, 1);
    assert_eq!(first.len(), 1, "round robin starts with the first consumer");
    let ack = first[0].header("ack").unwrap().to_owned();
    gateways.frame(&mut room, A, 1, &format!("NACK\nid:{ack}"), "");
    let second = gateways.take(B, 1);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].header("redelivered"), Some("true"));
    let ack = second[0].header("ack").unwrap().to_owned();
    gateways.frame(&mut room, B, 1, &format!("ACK\nid:{ack}"), "");
    assert!(room.store.queued_ids().is_empty(), "acknowledged, so no longer stored");
}
}

room_test! {
fn a_failed_call_forgets_only_that_gateways_members() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    room.subscribe(1, "p", "/presence");
    for (gateway, id) in [(A, 1), (A, 2), (B, 1)] {
        gateways.join(&mut room, gateway, id);
        gateways.frame(
            &mut room,
            gateway,
            id,
            "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client",
            "",
        );
    }
    room.take(1);
    room.publish(1, "/queue/work", "job");
    let calls = std::mem::take(&mut room.gateway_calls);
    let sends = |call: &stomp_rooms::relay::ToGateway| {
        call.items.iter().any(|item| matches!(item, Outgoing::Send { .. }))
    };
    let (to_a, probes): (Vec<_>, Vec<_>) = calls.into_iter().partition(|(g, _)| g == A);
    assert!(to_a.len() == 1 && sends(&to_a[0].1), "the job went to A's first member");
    // Woken for the publish (evicted), the room probed B as well: B answers.
    for (gateway, call) in probes {
        assert!(!sends(&call), "{call:?}");
        gateways.receive(&gateway, &call);
        room.gateway_answered(&gateway, Ok(GatewayAnswer::default()));
    }
    room.gateway_answered(A, Err("the gateway object is gone".to_owned()));
    // Both of A's members left; the job they held went to B's.
    let events = presence_events(&room.take(1));
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["leave", "leave"]);
    gateways.deliver(&mut room);
    assert_eq!(gateways.bodies(B, 1), ["job"]);
    assert!(gateways.take(A, 1).is_empty());
    // A's next call closes the sockets of the members the room forgot.
    let closed: Vec<_> = gateways.closed.keys().cloned().collect();
    assert_eq!(closed, [member(A, 1), member(A, 2)]);
    room.publish(1, "/queue/work", "next");
    gateways.deliver(&mut room);
    assert!(gateways.take(A, 2).is_empty());
    assert_eq!(room.stats()["members"], serde_json::json!({ B: 1 }));
    // A member the room forgot is unknown to it.
    let answer = room.gateway_call(&ToRoom {
        gateway: A.to_owned(),
        events: vec![MemberEvent::Data {
            member: 2,
            binary: false,
            bytes: b"SEND\ndestination:/topic/x\n\nhi\0".to_vec(),
        }],
    });
    assert_eq!(answer, Some(RoomAnswer { unknown: vec![2] }));
}
}

room_test! {
fn members_the_gateway_no_longer_holds_are_forgotten() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    room.subscribe(1, "p", "/presence");
    gateways.join(&mut room, A, 1);
    gateways.join(&mut room, A, 2);
    gateways.frame(&mut room, A, 1, "SUBSCRIBE\nid:m\ndestination:/topic/chat", "");
    room.take(1);
    gateways.gone.insert(A.to_owned(), vec![1]);
    room.publish(1, "/topic/chat", "hi");
    gateways.deliver(&mut room);
    let events = presence_events(&room.take(1));
    let kinds: Vec<String> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["leave"], "{events:?}");
    assert_eq!(room.stats()["members"], serde_json::json!({ A: 1 }));
}
}

room_test! {
fn a_room_answers_unknown_for_members_it_does_not_hold() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, A, 1);
    let answer = room.gateway_call(&ToRoom {
        gateway: A.to_owned(),
        events: vec![
            MemberEvent::Data {
                member: 1,
                binary: false,
                bytes: b"SEND\ndestination:/topic/x\n\nknown\0".to_vec(),
            },
            MemberEvent::Data {
                member: 40,
                binary: false,
                bytes: b"SEND\ndestination:/topic/x\n\nnot known\0".to_vec(),
            },
            MemberEvent::Left { member: 41 },
        ],
    });
    assert_eq!(answer, Some(RoomAnswer { unknown: vec![40, 41] }));
    // The same member id from another gateway is another socket.
    let answer = room.gateway_call(&ToRoom {
        gateway: B.to_owned(),
        events: vec![MemberEvent::Left { member: 1 }],
    });
    assert_eq!(answer, Some(RoomAnswer { unknown: vec![1] }));
    assert_eq!(room.history("/topic/x").len(), 1);
}
}

/// A gateway that never answers (its call stays in flight) falls behind: past the bound its
/// members are forgotten, and the rest of the room is served as before. The call in flight
/// keeps the object in memory.
#[test]
fn a_gateway_whose_outbox_passes_its_bound_is_forgotten() {
    let mut settings = Settings::default();
    settings.broker.publish_rate = PublishRate::UNLIMITED;
    let mut room = SimulatedRoom::with_settings(settings);
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/big");
    room.subscribe(2, "p", "/presence");
    gateways.join(&mut room, A, 1);
    gateways.join(&mut room, B, 1);
    for gateway in [A, B] {
        gateways.frame(
            &mut room,
            gateway,
            1,
            "SUBSCRIBE\nid:m\ndestination:/topic/big",
            "",
        );
    }
    room.take(2);
    let body = "x".repeat(500_000);
    room.publish(1, "/topic/big", &body);
    // A's call stays in flight; B answers every call.
    room.gateway_calls.retain(|(gateway, _)| gateway != A);
    gateways.calls.clear();
    let sends = MAX_GATEWAY_OUTBOX_BYTES / body.len() + 1;
    for _ in 0..sends {
        room.publish(1, "/topic/big", &body);
        gateways.deliver(&mut room);
    }
    let kinds: Vec<String> = room
        .take(2)
        .iter()
        .filter(|f| f.header("destination") == Some("/presence"))
        .map(|f| {
            serde_json::from_slice::<serde_json::Value>(&f.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["leave"], "A's member left");
    assert_eq!(room.stats()["members"], serde_json::json!({ B: 1 }));
    assert_eq!(
        gateways.bodies(B, 1).len(),
        sends + 1,
        "B got every message"
    );
    assert!(
        gateways.take(A, 1).is_empty(),
        "nothing more for A's member"
    );
    assert!(
        gateways.calls.iter().all(|(gateway, _)| gateway != A),
        "no second call to A while its first is in flight"
    );
    room.gateway_answered(A, Ok(GatewayAnswer::default()));
    gateways.deliver(&mut room);
    let closed: Vec<_> = gateways.closed.keys().cloned().collect();
    assert_eq!(
        closed,
        [member(A, 1)],
        "A is told to close its member's socket, once its call in flight is answered"
    );
}

room_test! {
fn members_have_no_heart_beats_and_are_never_closed_for_silence() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, A, 1);
    gateways.frame(&mut room, A, 1, "SUBSCRIBE\nid:m\ndestination:/topic/chat", "");
    // An hour, the gateway answering the room's calls (its probes) as they come.
    for _ in 0..120 {
        room.advance(30_000);
        gateways.deliver(&mut room);
    }
    assert!(gateways.closed.is_empty(), "{:?}", gateways.closed);
    let beats = gateways.calls.iter().flat_map(|(_, call)| &call.items).any(|item| {
        matches!(item, Outgoing::Send { bytes, .. } if bytes.iter().all(|&b| b == b'\n'))
    });
    assert!(!beats, "no heart-beat for a member");
    room.connect(1, "");
    room.publish(1, "/topic/chat", "still here");
    gateways.deliver(&mut room);
    assert_eq!(gateways.bodies(A, 1), ["still here"]);
}
}

room_test! {
fn a_room_full_of_direct_sockets_places_the_next_on_its_shards() {
    let mut settings = Settings::default();
    settings.scaling.members_per_object = 2;
    settings.scaling.members_per_gateway = 2;
    let mut room = SimulatedRoom::with_settings(settings);
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    assert_eq!(room.placement(), Placement::Here);
    room.connect(2, "");
    assert_eq!(room.placement(), Placement::Gateway("shard:lobby:0".into()));
    gateways.join(&mut room, "shard:lobby:0", 1);
    assert_eq!(room.placement(), Placement::Gateway("shard:lobby:0".into()));
    gateways.join(&mut room, "shard:lobby:0", 2);
    assert_eq!(room.placement(), Placement::Gateway("shard:lobby:1".into()));
    gateways.join(&mut room, "shard:lobby:1", 1);
    gateways.leave(&mut room, "shard:lobby:0", 2);
    assert_eq!(room.placement(), Placement::Gateway("shard:lobby:0".into()), "the fewest");
    room.close(2);
    assert_eq!(room.placement(), Placement::Here, "a direct socket left");
    let members: BTreeMap<String, usize> =
        serde_json::from_value(room.stats()["members"].clone()).unwrap();
    assert_eq!(members.values().sum::<usize>(), 2);
}
}

room_test! {
fn a_member_the_room_closes_is_closed_by_its_gateway() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, A, 1);
    gateways.frame(&mut room, A, 1, "BOGUS", "");
    let frames = gateways.take(A, 1);
    assert_eq!(frames[0].command, Command::Error);
    assert!(gateways.closed.contains_key(&member(A, 1)));
    assert_eq!(members_by_gateway(&mut room), BTreeMap::new());
    assert!(Storage::load(&room.store).unwrap().members.is_empty());
}
}

room_test! {
fn a_members_disconnect_with_a_receipt_leaves_storage_with_its_commit() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, A, 1);
    gateways.frame(&mut room, A, 1, "SUBSCRIBE\nid:m\ndestination:/topic/chat", "");
    gateways.frame(&mut room, A, 1, "DISCONNECT\nreceipt:bye", "");
    let frames = gateways.take(A, 1);
    assert_eq!(frames.last().map(|f| f.command), Some(Command::Receipt));
    assert!(gateways.closed.contains_key(&member(A, 1)));
    room.restart();
    assert!(Storage::load(&room.store).unwrap().members.is_empty());
    assert_eq!(members_by_gateway(&mut room), BTreeMap::new());
}
}

room_test! {
fn a_members_unacknowledged_queue_message_is_still_its_own_after_a_crash() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    gateways.join(&mut room, A, 1);
    gateways.subscribe(&mut room, A, 1, "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual\nreceipt:r");
    room.frame(1, "SEND\ndestination:/queue/work\nreceipt:sent", "job");
    gateways.deliver(&mut room);
    let job = gateways.take(A, 1);
    assert_eq!(job.len(), 1);
    let ack = job[0].header("ack").unwrap().to_owned();
    room.restart();
    gateways.frame(&mut room, A, 1, &format!("ACK\nid:{ack}\nreceipt:acked"), "");
    let answer = gateways.take(A, 1);
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(answer[0].command, Command::Receipt);
    assert!(room.store.queued_ids().is_empty());
}
}

/// A crash loses the call in flight and what waited behind it (as it loses what a socket's
/// send had not yet carried); an answer to that call, should one reach the new engine, is not
/// its own and is ignored, and the room calls the gateway afresh with what comes next.
#[test]
fn after_a_crash_a_stale_answer_is_ignored_and_the_next_message_goes_in_a_new_call() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    gateways.join(&mut room, A, 1);
    gateways.subscribe(
        &mut room,
        A,
        1,
        "SUBSCRIBE\nid:m\ndestination:/topic/chat\nreceipt:r",
    );
    room.publish(1, "/topic/chat", "lost in flight");
    let in_flight = std::mem::take(&mut room.gateway_calls);
    assert_eq!(in_flight.len(), 1);
    room.restart();
    room.gateway_answered(A, Err("the room restarted".to_owned()));
    room.connect(2, "");
    room.publish(2, "/topic/chat", "after");
    gateways.deliver(&mut room);
    assert_eq!(gateways.bodies(A, 1), ["after"]);
}

/// Kept in memory: an eviction commits what waits, so each evicted step would commit anyway.
#[test]
fn a_members_publishes_share_commits_as_a_sockets_do() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, A, 1);
    gateways.subscribe(
        &mut room,
        A,
        1,
        "SUBSCRIBE\nid:m\ndestination:/topic/chat\nreceipt:r",
    );
    let before = room.store.commits.len();
    for n in 0..10 {
        gateways.frame(
            &mut room,
            A,
            1,
            "SEND\ndestination:/topic/chat",
            &n.to_string(),
        );
    }
    assert!(
        room.store.commits.len() - before <= 2,
        "{} commits for 10 messages",
        room.store.commits.len() - before
    );
    room.restart();
    room.connect(1, "");
    room.publish(1, "/topic/chat", "still subscribed");
    gateways.deliver(&mut room);
    assert_eq!(gateways.bodies(A, 1).last().unwrap(), "still subscribed");
}

/// A member of A that holds an unacknowledged queue message, one of B that could take it, and
/// a direct socket watching presence.
fn a_job_held_by_a_member_of_a(room: &mut SimulatedRoom, gateways: &mut SimulatedGateways) {
    room.connect(1, "");
    room.subscribe(1, "p", "/presence");
    gateways.join(room, A, 1);
    gateways.frame(
        room,
        A,
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual\nreceipt:r",
        "",
    );
    gateways.take(A, 1);
    room.frame(1, "SEND\ndestination:/queue/work\nreceipt:sent", "job");
    gateways.deliver(room);
    assert_eq!(gateways.bodies(A, 1), ["job"]);
    gateways.join(room, B, 1);
    gateways.frame(
        room,
        B,
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual\nreceipt:r",
        "",
    );
    gateways.take(B, 1);
    room.take(1);
}

room_test! {
fn members_of_a_gateway_that_restarted_leave_at_the_rooms_next_liveness_sweep() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    a_job_held_by_a_member_of_a(&mut room, &mut gateways);
    gateways.deliver(&mut room);
    // A's sockets went with its restart, and the `Left` it owed the room with them.
    gateways.restart(A);
    // Time passes to the next sweep, the gateways answering the room's calls as they come.
    for _ in 0..10 {
        room.advance(Settings::default().liveness_check_ms / 10);
        gateways.deliver(&mut room);
    }
    let events = presence_events(&room.take(1));
    let kinds: Vec<String> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["leave"], "{events:?}");
    assert_eq!(gateways.bodies(B, 1), ["job"], "the job went to B's member");
    assert_eq!(members_by_gateway(&mut room), BTreeMap::from([(B.to_owned(), 1)]));
    assert_eq!(Storage::load(&room.store).unwrap().members.len(), 1);
}
}

/// A deploy restarts the room and its gateways together: the room, woken, asks each gateway
/// at once which of its members it still holds.
#[test]
fn members_of_a_gateway_that_restarted_leave_when_the_room_wakes() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    a_job_held_by_a_member_of_a(&mut room, &mut gateways);
    gateways.deliver(&mut room);
    // Later than a sweep's moments ago, earlier than the next sweep.
    room.advance(20_000);
    gateways.restart(A);
    room.restart();
    gateways.frame(
        &mut room,
        B,
        1,
        "SEND\ndestination:/topic/x\nreceipt:w",
        "wakes it",
    );
    let frames = gateways.take(B, 1);
    let commands: Vec<Command> = frames.iter().map(|f| f.command).collect();
    assert_eq!(commands, [Command::Receipt, Command::Message], "{frames:?}");
    assert_eq!(frames[1].body, b"job");
    assert_eq!(
        members_by_gateway(&mut room),
        BTreeMap::from([(B.to_owned(), 1)])
    );
}

room_test! {
fn a_probe_names_each_member_of_a_gateway_once_however_many_sweeps_pass() {
    // Sweeps every 5 s, so that several pass before an unanswered call counts as failed.
    let sweep = 5_000;
    let mut room = SimulatedRoom::with_settings(Settings {
        liveness_check_ms: sweep,
        ..Settings::default()
    });
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, A, 1);
    gateways.join(&mut room, A, 2);
    gateways.join(&mut room, B, 1);
    gateways.deliver(&mut room);
    // A's calls go unanswered meanwhile: the probes of later sweeps replace the waiting one.
    room.advance(sweep);
    let first = std::mem::take(&mut room.gateway_calls);
    room.advance(10 * sweep);
    let probes = |calls: &[(String, stomp_rooms::relay::ToGateway)], gateway: &str| {
        calls
            .iter()
            .filter(|(g, _)| g == gateway)
            .flat_map(|(_, call)| &call.items)
            .filter_map(|item| match item {
                Outgoing::Probe { members } => Some(members.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(probes(&first, A), [vec![1, 2]]);
    assert_eq!(probes(&first, B), [vec![1]]);
    assert!(room.gateway_calls.is_empty(), "one call in flight per gateway");
    room.gateway_answered(A, Ok(GatewayAnswer::default()));
    assert_eq!(probes(&room.gateway_calls, A), [vec![1, 2]], "one probe waited");
    room.gateway_answered(B, Ok(GatewayAnswer::default()));
    gateways.deliver(&mut room);
    assert_eq!(members_by_gateway(&mut room).values().sum::<usize>(), 3);
}
}

/// Kept in memory: placements not yet joined are counted in memory only.
#[test]
fn a_socket_placed_on_a_shard_that_never_joins_stops_counting_there() {
    let mut settings = Settings::default();
    settings.scaling.members_per_object = 1;
    settings.scaling.members_per_gateway = 2;
    let timeout = settings.broker.connect_timeout_ms;
    let mut room = SimulatedRoom::with_settings(settings);
    room.connect(1, "");
    let shard = |k: u32| Placement::Gateway(format!("shard:lobby:{k}"));
    assert_eq!(room.placement(), shard(0));
    assert_eq!(room.placement(), shard(0));
    assert_eq!(room.placement(), shard(1), "two on their way to shard 0");
    // None of them ever joins (their clients went, or never sent CONNECT).
    room.advance(timeout + 10_001);
    assert_eq!(
        room.placement(),
        shard(0),
        "the ones that never came are let go"
    );
}

/// Kept in memory: placements (and so leases) are counted in memory only.
#[test]
fn a_room_lends_the_router_a_shard_s_next_sockets_within_its_share_counted_as_placed() {
    let mut settings = Settings::default();
    settings.scaling.members_per_object = 1;
    settings.scaling.members_per_gateway = 20;
    let timeout = settings.broker.connect_timeout_ms;
    let mut room = SimulatedRoom::with_settings(settings);
    room.connect(1, "");
    let shard = |k: u32| Placement::Gateway(format!("shard:lobby:{k}"));
    assert_eq!(room.placement(), shard(0));
    assert_eq!(
        room.lease("shard:lobby:0"),
        LEASED_SOCKETS,
        "16 more, 17 of 20 on their way"
    );
    assert_eq!(room.placement(), shard(0), "the 18th");
    room.advance(LEASE_MS);
    assert_eq!(room.placement(), shard(0), "the 19th");
    assert_eq!(
        room.lease("shard:lobby:0"),
        1,
        "no more than its share of 20"
    );
    assert_eq!(
        room.placement(),
        shard(1),
        "shard 0 has its 20 on their way"
    );
    assert_eq!(room.lease("shard:lobby:1"), LEASED_SOCKETS);
    // Lent sockets that never come are let go as any placed socket is.
    room.advance(timeout + 10_001);
    assert_eq!(room.placement(), shard(0));
}

/// The router holds one lease of a room's at a time and asks the room again only once it is
/// used up; while a lease is out, every other socket that asks (a burst, or another router) is
/// placed alone. Lending to each of them would count as on their way a lease's worth of
/// sockets per ask, that never come: a storm of 1,000 sockets past a full room's own was
/// spread over 11 shards instead of 1. Kept in memory: placements and leases are.
#[test]
fn a_burst_of_sockets_past_a_full_room_is_lent_once_per_lease_and_stays_on_one_shard() {
    let mut settings = Settings::default();
    settings.scaling.members_per_object = 1;
    let mut room = SimulatedRoom::with_settings(settings);
    room.connect(1, "");
    let shard = |k: u32| Placement::Gateway(format!("shard:lobby:{k}"));
    // 200 sockets ask at once, as a router sends them while the first answer is under way.
    let mut lent = Vec::new();
    for _ in 0..200 {
        assert_eq!(room.placement(), shard(0), "1,000 fit on shard 0");
        lent.push(room.lease("shard:lobby:0"));
    }
    assert_eq!(
        lent[0], LEASED_SOCKETS,
        "the first is lent the next sockets"
    );
    assert!(
        lent[1..].iter().all(|&n| n == 0),
        "the others are placed alone while that lease lasts: {lent:?}"
    );
    for _ in 0..(1_000 - 200 - LEASED_SOCKETS) {
        assert_eq!(room.placement(), shard(0));
    }
    assert_eq!(room.placement(), shard(1), "shard 0 holds its 1,000");
}

/// A lease is as large as the asks the last one left uncovered (a router past its lease asks
/// for each socket), within [`MAX_LEASED_SOCKETS`] and the shard's share: a steady storm is
/// soon one hop per socket, not two.
#[test]
fn a_room_lends_as_many_sockets_as_it_was_asked_for_since_its_last_lease() {
    let mut settings = Settings::default();
    settings.scaling.members_per_object = 1;
    settings.scaling.members_per_gateway = 10_000;
    let mut room = SimulatedRoom::with_settings(settings);
    room.connect(1, "");
    let ask = |room: &mut SimulatedRoom| {
        room.placement();
        room.lease("shard:lobby:0")
    };
    assert_eq!(ask(&mut room), LEASED_SOCKETS);
    for _ in 0..99 {
        assert_eq!(ask(&mut room), 0);
    }
    room.advance(LEASE_MS);
    assert_eq!(ask(&mut room), 100, "the 99 asked alone and this one");
    for _ in 0..999 {
        ask(&mut room);
    }
    room.advance(LEASE_MS);
    assert_eq!(
        ask(&mut room),
        MAX_LEASED_SOCKETS,
        "a bound on sockets lent at once"
    );
}

#[test]
fn no_more_shards_open_than_max_connections_needs() {
    let mut settings = Settings::default();
    settings.scaling.members_per_object = 1;
    settings.scaling.members_per_gateway = 2;
    settings.broker.max_connections = 4;
    let mut room = SimulatedRoom::with_settings(settings);
    room.connect(1, "");
    let shard = |k: u32| Placement::Gateway(format!("shard:lobby:{k}"));
    let placed: Vec<Placement> = (0..5).map(|_| room.placement()).collect();
    assert_eq!(placed, [shard(0), shard(0), shard(1), shard(1), shard(0)]);
}

/// Kept in memory: placements not yet joined are counted in memory only.
#[test]
fn a_rebuild_after_a_failed_commit_keeps_the_sockets_on_their_way_to_a_shard() {
    let mut settings = Settings::default();
    settings.scaling.members_per_object = 1;
    settings.scaling.members_per_gateway = 2;
    let mut room = SimulatedRoom::with_settings(settings);
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    gateways.join(&mut room, A, 1);
    let shard = |k: u32| Placement::Gateway(format!("shard:lobby:{k}"));
    assert_eq!(
        room.placement(),
        shard(0),
        "one member there, one on its way"
    );
    room.store.fail_commits = 1;
    gateways.frame(
        &mut room,
        A,
        1,
        "SUBSCRIBE\nid:m\ndestination:/topic/chat",
        "",
    );
    room.publish(1, "/topic/chat", "after the failed commit");
    assert_eq!(
        members_by_gateway(&mut room),
        BTreeMap::from([(A.to_owned(), 1)])
    );
    assert_eq!(
        room.placement(),
        shard(1),
        "shard 0 still expects the one on its way"
    );
}

/// Kept in memory: a call in flight keeps the object in memory.
#[test]
fn a_call_to_a_gateway_unanswered_for_a_minute_counts_as_failed() {
    let mut room = SimulatedRoom::new();
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    gateways.join(&mut room, A, 1);
    gateways.frame(
        &mut room,
        A,
        1,
        "SUBSCRIBE\nid:m\ndestination:/topic/chat",
        "",
    );
    room.publish(1, "/topic/chat", "its answer is lost");
    let lost = std::mem::take(&mut room.gateway_calls);
    assert_eq!(lost.len(), 1);
    room.advance(CALL_TIMEOUT_MS - 1);
    assert_eq!(room.stats()["gateway_calls"]["failed"], 0);
    assert_eq!(
        members_by_gateway(&mut room),
        BTreeMap::from([(A.to_owned(), 1)])
    );
    room.advance(1);
    assert_eq!(room.stats()["gateway_calls"]["failed"], 1);
    assert_eq!(members_by_gateway(&mut room), BTreeMap::new());
    // The gateway's next call closes the member's socket.
    gateways.deliver(&mut room);
    let closed: Vec<_> = gateways.closed.keys().cloned().collect();
    assert_eq!(closed, [member(A, 1)]);
}
