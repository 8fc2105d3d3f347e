//! Rooms and gateways together: the real room and gateway hosts in a simulated network of
//! objects (tests/support/network.rs), with calls delayed, delivered out of order across pairs
//! of objects, and objects evicted or crashed between steps.

mod support;

use proptest::prelude::*;
use stomp_rooms::room::Settings;
use support::network::{Client, Network};

const CONNECT: &str = "CONNECT\naccept-version:1.2\nhost:x\n\n\0";

fn settings(value: serde_json::Value) -> Settings {
    let settings: Settings = serde_json::from_value(value).expect("valid settings");
    settings.check().expect("settings that work");
    settings
}

/// A big room's settings: two sockets on the room's own object, two on each gateway.
fn sharded() -> Settings {
    settings(serde_json::json!({
        "scaling": { "members_per_object": 2, "members_per_gateway": 2 },
        "max_connections_per_address": 0,
    }))
}

fn unsharded() -> Settings {
    settings(serde_json::json!({
        "scaling": { "members_per_object": 0 },
        "max_connections_per_address": 0,
    }))
}

fn frame(head: &str, body: &str) -> String {
    format!("{head}\n\n{body}\0")
}

/// The bodies of the MESSAGE frames a client was sent since the last take.
fn bodies(net: &mut Network, client: &Client) -> Vec<String> {
    net.take(client)
        .iter()
        .filter(|text| text.starts_with("MESSAGE\n"))
        .map(|text| {
            let (_, body) = text.split_once("\n\n").unwrap_or_default();
            body.trim_end_matches('\0').to_owned()
        })
        .collect()
}

fn where_is(client: &Client) -> &str {
    match client {
        Client::Direct { .. } => "direct",
        Client::OnGateway { gateway, .. } => gateway,
    }
}

#[test]
fn a_room_past_its_threshold_puts_new_sockets_on_gateways_and_everyone_gets_every_message_in_order_through_a_gateways_eviction(
) {
    let mut net = Network::new(sharded()).with_seed(7);
    let clients: Vec<Client> = (0..6).map(|_| net.open_direct("big")).collect();
    let places: Vec<&str> = clients.iter().map(where_is).collect();
    assert_eq!(
        places,
        [
            "direct",
            "direct",
            "shard:big:0",
            "shard:big:0",
            "shard:big:1",
            "shard:big:1"
        ]
    );
    for (i, client) in clients.iter().enumerate() {
        net.send(client, CONNECT);
        net.send(
            client,
            &frame(
                &format!("SUBSCRIBE\nid:0\ndestination:/topic/chat\nreceipt:s{i}"),
                "",
            ),
        );
    }
    net.settle();
    for client in &clients {
        let got = net.take(client);
        assert!(got[0].starts_with("CONNECTED\n"), "{got:?}");
        assert!(got.iter().any(|t| t.starts_with("RECEIPT\n")), "{got:?}");
    }
    // The publisher is on a gateway; calls are delivered a few at a time, in random order
    // across pairs of objects, and the first gateway is evicted halfway.
    let publisher = clients[4].clone();
    for n in 0..20 {
        net.send(
            &publisher,
            &frame("SEND\ndestination:/topic/chat", &format!("m{n}")),
        );
        for _ in 0..(n % 3) {
            net.deliver_one();
        }
        if n == 10 {
            net.settle();
            net.evict_gateway("shard:big:0");
        }
    }
    net.settle();
    let expected: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
    for client in &clients {
        assert_eq!(bodies(&mut net, client), expected, "{client:?}");
    }
    // The room fanned out once per gateway per call, not once per member.
    let stats = net.rooms.get_mut("big").map(|room| {
        room.host
            .engine()
            .map(|engine| engine.stats())
            .unwrap_or_default()
    });
    let members = &stats.unwrap_or_default()["members"];
    assert_eq!(members["shard:big:0"], 2, "{members}");
    assert_eq!(members["shard:big:1"], 2, "{members}");
}

#[test]
fn a_crashed_room_still_serves_its_members_on_gateways_with_the_subscriptions_it_receipted() {
    let mut net = Network::new(sharded()).with_seed(3);
    let clients: Vec<Client> = (0..4).map(|_| net.open_direct("big")).collect();
    let (speaker, listener) = (&clients[2], &clients[3]);
    assert!(matches!(listener, Client::OnGateway { .. }));
    for client in [speaker, listener] {
        net.send(client, CONNECT);
    }
    net.send(
        listener,
        &frame("SUBSCRIBE\nid:0\ndestination:/topic/chat\nreceipt:r", ""),
    );
    net.settle();
    assert!(net
        .take(listener)
        .iter()
        .any(|t| t.starts_with("RECEIPT\n")));
    net.send(
        speaker,
        &frame("SEND\ndestination:/topic/chat\nreceipt:s1", "before"),
    );
    net.settle();
    net.crash_room("big");
    net.send(
        speaker,
        &frame("SEND\ndestination:/topic/chat\nreceipt:s2", "after"),
    );
    net.settle();
    assert_eq!(bodies(&mut net, listener), ["before", "after"]);
    let ids: Vec<String> = net
        .take(speaker)
        .iter()
        .filter_map(|t| {
            t.lines()
                .find(|l| l.starts_with("receipt-id:"))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        ids,
        ["receipt-id:s1", "receipt-id:s2"],
        "both SENDs were receipted"
    );
    // The direct sockets closed with the object; the gateways' did not.
    assert!(!net.is_open(&clients[0]));
    assert!(net.is_open(speaker) && net.is_open(listener));
}

#[test]
fn the_seed_apps_chat_rooms_each_live_in_an_object_of_their_own() {
    let mut net = Network::new(settings(serde_json::json!({
        "endpoints": ["/ws-stomp"],
        "destinations": {
            "topics": ["/sub/"],
            "application": { "/pub/chat/message": "/sub/chat/room/{roomId}" },
        },
        "scaling": { "room_destinations": ["/sub/chat/room/{room}"] },
    })))
    .with_seed(11);
    let alice = net.open_on("endpoint:ws-stomp:0");
    let bob = net.open_on("endpoint:ws-stomp:1");
    for client in [&alice, &bob] {
        net.send(client, CONNECT);
    }
    // One socket subscribed to two chat rooms; another to one of them.
    net.send(
        &alice,
        &frame("SUBSCRIBE\nid:a\ndestination:/sub/chat/room/1", ""),
    );
    net.send(
        &alice,
        &frame("SUBSCRIBE\nid:b\ndestination:/sub/chat/room/2", ""),
    );
    net.send(
        &bob,
        &frame("SUBSCRIBE\nid:a\ndestination:/sub/chat/room/1", ""),
    );
    net.settle();
    for (room, text) in [("1", "one"), ("2", "two"), ("1", "uno")] {
        let body = format!(r#"{{"roomId":"{room}","message":"{text}"}}"#);
        net.send(
            &bob,
            &frame("SEND\ndestination:/pub/chat/message\nreceipt:r", &body),
        );
    }
    net.settle();
    let texts = |net: &mut Network, client: &Client| -> Vec<String> {
        bodies(net, client)
            .iter()
            .map(|body| {
                let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                json["message"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    };
    let mut to_alice = texts(&mut net, &alice);
    to_alice.sort();
    assert_eq!(to_alice, ["one", "two", "uno"]);
    assert_eq!(texts(&mut net, &bob), ["one", "uno"]);
    // Each chat room's messages are stored in its own object only.
    net.evict_quiet();
    let history = |net: &Network, room: &str, destination: &str| -> usize {
        net.rooms
            .get(room)
            .map_or(0, |node| node.store.history_of(destination).len())
    };
    assert_eq!(history(&net, "1", "/sub/chat/room/1"), 2);
    assert_eq!(history(&net, "2", "/sub/chat/room/2"), 1);
    assert_eq!(history(&net, "1", "/sub/chat/room/2"), 0);
    assert_eq!(history(&net, "2", "/sub/chat/room/1"), 0);
    assert!(
        !net.rooms.contains_key("ws-stomp"),
        "no frame went to the endpoint's own room"
    );
}

#[test]
fn a_member_that_leaves_a_gateway_leaves_every_room_it_joined() {
    let mut net = Network::new(settings(serde_json::json!({
        "endpoints": ["/ws-stomp"],
        "destinations": { "topics": ["/sub/"] },
        "scaling": { "room_destinations": ["/sub/chat/room/{room}"] },
    })));
    let watcher = net.open_on("endpoint:ws-stomp:0");
    let leaver = net.open_on("endpoint:ws-stomp:1");
    net.send(&watcher, CONNECT);
    net.send(&leaver, CONNECT);
    net.send(
        &watcher,
        &frame("SUBSCRIBE\nid:p\ndestination:/presence", ""),
    );
    for room in ["1", "2"] {
        net.send(
            &leaver,
            &frame(
                &format!("SUBSCRIBE\nid:{room}\ndestination:/sub/chat/room/{room}"),
                "",
            ),
        );
    }
    net.settle();
    for room in ["1", "2"] {
        assert_eq!(
            connections_in(&net, room),
            Some(1),
            "room {room} holds the member"
        );
    }
    net.close(&leaver);
    net.settle();
    for room in ["1", "2"] {
        assert_eq!(
            connections_in(&net, room),
            Some(0),
            "room {room} let the member go"
        );
    }
}

/// A room with a presence watcher and a queue consumer of its own, and a member on a shard
/// gateway holding the queue's only message unacknowledged; the gateway then crashes (its
/// sockets dropped without close events, its `Left`s lost), and time passes before anything
/// opens on it again. Returns the watcher, the consumer and the member.
fn a_job_held_on_a_gateway_that_crashes(net: &mut Network) -> (Client, Client, Client) {
    let clients: Vec<Client> = (0..3).map(|_| net.open_direct("big")).collect();
    let (watcher, consumer, member) = (&clients[0], &clients[1], &clients[2]);
    assert_eq!(where_is(member), "shard:big:0");
    for client in &clients {
        net.send(client, CONNECT);
    }
    net.send(
        watcher,
        &frame("SUBSCRIBE\nid:p\ndestination:/presence", ""),
    );
    let queue = "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual\nreceipt:q";
    net.send(member, &frame(queue, ""));
    net.settle();
    net.send(
        watcher,
        &frame("SEND\ndestination:/queue/work\nreceipt:s", "job"),
    );
    net.settle();
    assert_eq!(bodies(net, member), ["job"]);
    net.send(consumer, &frame(queue, ""));
    net.settle();
    for client in &clients {
        net.take(client);
    }
    net.crash_gateway("shard:big:0");
    net.advance(1_000);
    assert!(!net.is_open(member));
    (watcher.clone(), consumer.clone(), member.clone())
}

/// The presence events' types a client was sent since the last take.
fn presence(net: &mut Network, client: &Client) -> Vec<String> {
    bodies(net, client)
        .iter()
        .filter_map(|body| serde_json::from_str::<serde_json::Value>(body).ok())
        .filter_map(|event| event["type"].as_str().map(str::to_owned))
        .collect()
}

fn members_of(net: &Network, room: &str) -> serde_json::Value {
    net.rooms[room]
        .host
        .engine()
        .map(|engine| engine.stats()["members"].clone())
        .unwrap_or_default()
}

#[test]
fn members_of_a_crashed_gateway_leave_the_room_at_its_next_liveness_sweep() {
    let mut net = Network::new(sharded()).with_seed(5);
    let (watcher, consumer, _) = a_job_held_on_a_gateway_that_crashes(&mut net);
    net.settle();
    assert_eq!(members_of(&net, "big")["shard:big:0"], 1, "not yet");
    net.advance(sharded().liveness_check_ms);
    net.settle();
    assert_eq!(presence(&mut net, &watcher), ["leave"]);
    assert_eq!(bodies(&mut net, &consumer), ["job"]);
    assert_eq!(members_of(&net, "big"), serde_json::json!({}));
}

#[test]
fn members_of_a_crashed_gateway_leave_the_room_when_it_wakes() {
    let mut net = Network::new(sharded()).with_seed(9);
    let (watcher, consumer, _) = a_job_held_on_a_gateway_that_crashes(&mut net);
    // Past the quiet spell an eviction needs, before the next sweep.
    net.advance(20_000);
    net.evict_quiet();
    net.send(
        &consumer,
        &frame("SEND\ndestination:/topic/x", "wakes the room"),
    );
    net.settle();
    assert_eq!(presence(&mut net, &watcher), ["leave"]);
    assert_eq!(bodies(&mut net, &consumer), ["job"]);
    assert_eq!(members_of(&net, "big"), serde_json::json!({}));
}

/// The connections a room's engine holds (its members among them); `None` while it is asleep.
fn connections_in(net: &Network, room: &str) -> Option<u64> {
    let engine = net.rooms[room].host.engine()?;
    engine.stats()["connections"].as_u64()
}

/// What a client saw, comparable between a room on one object and the same room sharded:
/// frames as sent, less the headers that name a session (their numbering differs).
fn comparable(frames: Vec<String>) -> Vec<String> {
    frames
        .into_iter()
        .map(|text| {
            let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            let head: Vec<&str> = head
                .lines()
                .filter(|line| !line.starts_with("session:") && !line.starts_with("sender:"))
                .collect();
            format!("{}\n\n{body}", head.join("\n"))
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Step {
    Subscribe {
        client: usize,
        topic: u8,
    },
    Unsubscribe {
        client: usize,
        topic: u8,
    },
    Send {
        client: usize,
        topic: u8,
        receipt: bool,
    },
    Evict,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6usize, 0..2u8).prop_map(|(client, topic)| Step::Subscribe { client, topic }),
        (0..6usize, 0..2u8).prop_map(|(client, topic)| Step::Unsubscribe { client, topic }),
        (0..6usize, 0..3u8, any::<bool>()).prop_map(|(client, topic, receipt)| Step::Send {
            client,
            topic,
            receipt
        }),
        Just(Step::Evict),
    ]
}

/// Runs the steps against a room of six clients and returns what each saw.
fn run(settings: Settings, steps: &[Step]) -> Vec<Vec<String>> {
    let mut net = Network::new(settings);
    let clients: Vec<Client> = (0..6).map(|_| net.open_direct("room")).collect();
    for client in &clients {
        net.send(client, CONNECT);
        net.settle();
    }
    // Topics only: which of a queue's competing consumers gets a message follows the order
    // the room numbered them in, which differs when members join by their first frame (a
    // queue's promise, one consumer each, is tests/members.rs's).
    let destination = |topic: u8| match topic {
        0 => "/topic/a",
        1 => "/topic/b",
        _ => "/topic/nobody",
    };
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Subscribe { client, topic } => {
                let ack = if *topic == 1 {
                    "client-individual"
                } else {
                    "auto"
                };
                let head = format!(
                    "SUBSCRIBE\nid:{topic}\ndestination:{}\nack:{ack}\nreceipt:sub{n}",
                    destination(*topic)
                );
                net.send(&clients[*client], &frame(&head, ""));
            }
            Step::Unsubscribe { client, topic } => {
                let head = format!("UNSUBSCRIBE\nid:{topic}\nreceipt:unsub{n}");
                net.send(&clients[*client], &frame(&head, ""));
            }
            Step::Send {
                client,
                topic,
                receipt,
            } => {
                let mut head = format!("SEND\ndestination:{}", destination(*topic));
                if *receipt {
                    head.push_str(&format!("\nreceipt:send{n}"));
                }
                net.send(&clients[*client], &frame(&head, &format!("body {n}")));
            }
            Step::Evict => net.evict_quiet(),
        }
        net.settle();
        net.advance(1);
    }
    clients
        .iter()
        .map(|client| comparable(net.take(client)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The same traffic through a room on one object and through the same room sharded over
    /// two gateways gives every client the same frames.
    #[test]
    fn a_sharded_room_sends_every_client_what_one_object_would(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let one_object = run(unsharded(), &steps);
        let sharded = run(sharded(), &steps);
        prop_assert_eq!(one_object, sharded);
    }
}
