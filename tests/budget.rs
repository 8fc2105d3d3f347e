//! The room's budget: everything a client can make a room hold is counted before it is held,
//! and a client that passes a cap gets an ERROR naming it while everyone else carries on and
//! nothing already accepted is lost. Each rule runs kept in memory and evicted after every
//! step (what was stored is counted again at every wake).

mod support;

use stomp_rooms::room::http::{HttpOutcome, HttpSettings};
use stomp_rooms::room::record;
use stomp_rooms::room::testing::SocketCall;
use stomp_rooms::room::{Budget, Config, PublishRate, QueueOverflow, Settings};
use stomp_rooms::stomp::{Command, Frame, Limits};
use support::http::{body_json, get, ids, post, respond, text, with_header};
use support::{error_of, SimulatedRoom};

/// A room with these caps (and no publish rate, unless a test sets one).
fn room_with(budget: Budget) -> SimulatedRoom {
    SimulatedRoom::with_config(Config {
        budget,
        publish_rate: PublishRate::UNLIMITED,
        ..Config::default()
    })
}

fn receipts(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.command == Command::Receipt)
        .filter_map(|f| f.header("receipt-id").map(str::to_owned))
        .collect()
}

/// The stored row of a message with this body, as the budget counts it.
fn row(destination: &str, body: &str) -> u64 {
    let headers = [
        ("sender".to_owned(), "s1".to_owned()),
        ("timestamp".to_owned(), "1000".to_owned()),
    ];
    record::message_row_bytes_of(destination, &headers, body.len())
}

// ---- queues ------------------------------------------------------------------------------

room_test! {
fn a_queue_nobody_consumes_refuses_past_its_message_cap_and_loses_nothing_accepted() {
    let mut room = room_with(Budget {
        max_queue_messages: 3,
        ..Budget::default()
    });
    room.connect(1, "");
    for n in 1..=3 {
        room.frame(1, &format!("SEND\ndestination:/queue/jobs\nreceipt:r{n}"), &format!("job {n}"));
    }
    assert_eq!(receipts(&room.take(1)), ["r1", "r2", "r3"]);
    room.frame(1, "SEND\ndestination:/queue/jobs\nreceipt:r4", "job 4");
    let frames = room.take(1);
    let (message, detail) = error_of(&frames);
    assert_eq!(message, "queue full");
    assert!(detail.contains("budget.max_queue_messages"), "{detail}");
    assert!(receipts(&frames).is_empty(), "no RECEIPT for what was refused");
    assert_eq!(room.closed(1).map(|(code, _)| code), Some(1013), "try again later");
    assert_eq!(room.store.queued().len(), 3, "nothing accepted is lost, nothing refused kept");
    // The room serves everyone else, and the queue drains to a consumer as before.
    room.connect(2, "");
    room.subscribe(2, "q", "/queue/jobs");
    assert_eq!(room.bodies(2), ["job 1", "job 2", "job 3"]);
    room.connect(3, "");
    room.publish(3, "/queue/jobs", "job 5");
    assert_eq!(room.bodies(2), ["job 5"], "a drained queue takes messages again");
}
}

room_test! {
fn queues_are_held_to_their_bytes_and_all_queues_to_theirs() {
    let one = row("/queue/a", "xxxxxxxx");
    let mut room = room_with(Budget {
        max_queue_bytes: 2 * one,
        max_queued_bytes: 3 * one,
        ..Budget::default()
    });
    room.connect(1, "");
    room.publish(1, "/queue/a", "xxxxxxxx");
    room.publish(1, "/queue/a", "xxxxxxxx");
    room.publish(1, "/queue/a", "xxxxxxxx");
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "queue full");
    assert!(detail.contains("budget.max_queue_bytes"), "{detail}");
    room.connect(2, "");
    room.publish(2, "/queue/b", "xxxxxxxx");
    room.publish(2, "/queue/b", "xxxxxxxx");
    let (message, detail) = error_of(&room.take(2));
    assert_eq!(message, "queue full");
    assert!(detail.contains("budget.max_queued_bytes"), "{detail}");
    assert_eq!(room.store.queued().len(), 3);
}
}

room_test! {
fn a_full_queue_set_to_drop_oldest_drops_its_oldest_waiting_messages() {
    let mut room = room_with(Budget {
        max_queue_messages: 2,
        queue_overflow: QueueOverflow::DropOldest,
        ..Budget::default()
    });
    room.connect(1, "");
    for n in 1..=4 {
        room.publish(1, "/queue/jobs", &format!("job {n}"));
    }
    assert!(room.take(1).is_empty(), "nothing refused");
    assert_eq!(room.store.queued().len(), 2);
    room.connect(2, "");
    room.subscribe(2, "q", "/queue/jobs");
    assert_eq!(room.bodies(2), ["job 3", "job 4"]);
}
}

room_test! {
fn drop_oldest_makes_room_in_all_queues_from_the_full_one_or_drops_nothing() {
    let one = row("/queue/a", "xxxxxxxx");
    let mut room = room_with(Budget {
        max_queue_bytes: 10 * one,
        max_queued_bytes: 3 * one,
        queue_overflow: QueueOverflow::DropOldest,
        ..Budget::default()
    });
    room.connect(1, "");
    room.publish(1, "/queue/a", "xxxxxxxx");
    room.publish(1, "/queue/b", "xxxxxxxx");
    room.publish(1, "/queue/b", "xxxxxxxx");
    // All queues are full: /queue/b's oldest makes room for its next.
    room.publish(1, "/queue/b", "xxxxxxxx");
    assert!(room.take(1).is_empty(), "nothing refused");
    assert_eq!(room.store.queued().len(), 3);
    // A new queue cannot drop anything of its own: refused, and nothing of the others dropped.
    room.publish(1, "/queue/c", "xxxxxxxx");
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "queue full");
    assert!(detail.contains("budget.max_queued_bytes"), "{detail}");
    assert_eq!(room.store.queued().len(), 3, "nothing dropped for a message refused anyway");
}
}

room_test! {
fn a_full_queue_answers_an_http_publish_with_507() {
    let mut room = room_with(Budget {
        max_queue_messages: 1,
        ..Budget::default()
    });
    assert_eq!(respond(room.http(post("/queue/jobs", "one"))).status, 201);
    let refused = respond(room.http(post("/queue/jobs", "two")));
    assert_eq!(refused.status, 507, "{}", text(&refused));
    assert!(text(&refused).contains("budget.max_queue_messages"));
    assert_eq!(room.store.queued().len(), 1);
}
}

// ---- transactions --------------------------------------------------------------------------

room_test! {
fn staged_frames_are_held_to_a_connection_s_bytes_and_the_room_s() {
    let body = "b".repeat(1000);
    let frame = Frame::new(Command::Send)
        .with_header("destination", "/topic/t")
        .with_header("transaction", "tx")
        .with_body(body.clone());
    let one = record::staged_row_bytes("tx", &frame);
    let mut room = room_with(Budget {
        max_staged_bytes: 2 * one,
        max_room_staged_bytes: 3 * one,
        ..Budget::default()
    });
    room.connect(1, "");
    room.frame(1, "BEGIN\ntransaction:tx", "");
    for _ in 0..3 {
        room.frame(1, "SEND\ndestination:/topic/t\ntransaction:tx", &body);
    }
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "transaction too large");
    assert!(detail.contains("budget.max_staged_bytes"), "{detail}");
    assert!(room.store.staged().is_empty(), "its transaction aborted with it");
    // Two connections, each within its own cap, meet the room's.
    for conn in [2, 3] {
        room.connect(conn, "");
        room.frame(conn, "BEGIN\ntransaction:tx", "");
        room.frame(conn, "SEND\ndestination:/topic/t\ntransaction:tx", &body);
        room.frame(conn, "SEND\ndestination:/topic/t\ntransaction:tx", &body);
    }
    assert!(room.is_open(2));
    let (message, detail) = error_of(&room.take(3));
    assert_eq!(message, "room busy");
    assert!(detail.contains("budget.max_room_staged_bytes"), "{detail}");
    assert_eq!(room.store.staged().len(), 2, "connection 2's frames, all of them");
    room.subscribe(2, "t", "/topic/t");
    room.frame(2, "COMMIT\ntransaction:tx", "");
    assert_eq!(room.bodies(2), [body.clone(), body]);
}
}

room_test! {
fn an_ack_staged_in_a_transaction_keeps_only_the_headers_that_name_its_message() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.frame(1, "BEGIN\ntransaction:tx", "");
    let junk: String = (0..100).map(|n| format!("junk{n}:{}\n", "j".repeat(500))).collect();
    room.raw(1, format!("ACK\nid:7-0\ntransaction:tx\n{junk}\n\0").as_bytes());
    let staged = room.store.staged();
    assert_eq!(staged.len(), 1);
    let kept = record::decode_frame(&staged[0].record).expect("a record");
    assert_eq!(
        kept.headers,
        [("id".to_owned(), "7-0".to_owned()), ("transaction".to_owned(), "tx".to_owned())]
    );
    assert!(staged[0].record.len() < 64, "{} bytes", staged[0].record.len());
}
}

// ---- partly-arrived frames -------------------------------------------------------------------

room_test! {
fn a_frame_arriving_in_pieces_is_stored_at_a_cost_linear_in_what_arrives() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/big");
    let frame = format!("SEND\ndestination:/topic/big\n\n{}\0", "x".repeat(64 * 1024));
    let written_before: u64 = room.store.written.iter().sum();
    let pieces: Vec<&[u8]> = frame.as_bytes().chunks(1024).collect();
    let (last, first) = pieces.split_last().unwrap();
    for piece in first {
        room.raw(1, piece);
    }
    let written: u64 = room.store.written.iter().sum::<u64>() - written_before;
    let arrived = (frame.len() - last.len()) as u64;
    let most = arrived + first.len() as u64 * record::ROW_OVERHEAD;
    assert!(written <= most, "{written} bytes written for {arrived} arrived");
    assert_eq!(room.store.partial_of(room.conn(1)).len() as u64, arrived);
    room.raw(1, last);
    assert_eq!(room.bodies(2).len(), 1);
    assert!(room.store.partials().is_empty(), "a whole frame leaves no pieces");
}
}

room_test! {
fn a_frame_arriving_a_byte_at_a_time_counts_each_piece_s_row_against_the_budget() {
    let mut room = room_with(Budget {
        max_partial_bytes: 10_000,
        ..Budget::default()
    });
    room.connect(1, "");
    let frame = "SEND\ndestination:/topic/t\n\n".repeat(10);
    let mut sent = 0;
    for byte in frame.as_bytes() {
        if !room.is_open(1) {
            break;
        }
        room.raw(1, std::slice::from_ref(byte));
        sent += 1;
    }
    let (message, _) = error_of(&room.take(1));
    assert_eq!(message, "room busy");
    let most = 10_000 / (1 + record::ROW_OVERHEAD);
    assert!(sent <= most + 1, "{sent} one-byte pieces held, each a row");
    assert!(room.store.partials().is_empty(), "its pieces went with it");
}
}

room_test! {
fn the_partial_frame_of_a_connection_the_room_closes_is_forgotten_with_it() {
    let mut room = room_with(Budget::default());
    room.open(1);
    room.raw(1, b"SEND\ndestination:/topic/t\n\nnever ends");
    assert_eq!(room.store.partials().len(), 1);
    room.advance(30_000);
    assert!(!room.is_open(1), "closed for its missing CONNECT");
    assert!(room.store.partials().is_empty(), "{:?}", room.store.partials());
    assert_eq!(room.stats()["held"]["partial_bytes"], 0);
}
}

room_test! {
fn partly_arrived_frames_of_all_connections_are_held_to_the_room_s_budget() {
    // Each half frame is 928 bytes, in one piece (a row of its own): two fit, three do not.
    let mut room = room_with(Budget {
        max_partial_bytes: 2 * (928 + record::ROW_OVERHEAD) + 100,
        ..Budget::default()
    });
    let half = format!("SEND\ndestination:/topic/t\n\n{}", "x".repeat(900));
    for conn in [1, 2] {
        room.connect(conn, "");
        room.raw(conn, half.as_bytes());
    }
    room.connect(3, "");
    room.raw(3, half.as_bytes());
    let (message, detail) = error_of(&room.take(3));
    assert_eq!(message, "room busy");
    assert!(detail.contains("budget.max_partial_bytes"), "{detail}");
    assert_eq!(room.store.partials().len(), 2);
    // The others' frames complete as they would have.
    room.connect(4, "");
    room.subscribe(4, "s", "/topic/t");
    room.raw(1, b"end\0");
    assert_eq!(room.bodies(4), [format!("{}end", "x".repeat(900))]);
    assert_eq!(room.store.partials().len(), 1);
}
}

// ---- frames and rates ------------------------------------------------------------------------

room_test! {
fn a_frame_over_max_frame_bytes_is_refused_though_each_of_its_messages_is_not() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/t");
    // 30 header lines under max_header_line_bytes, 1.8 MiB in all, NUL in the same message:
    // sent as two messages, neither over a frame's size by itself.
    let line = format!("h:{}\n", "v".repeat(63 * 1024));
    let head: String = std::iter::repeat_n(line, 30).collect();
    let frame = format!("SEND\ndestination:/topic/t\n{head}\nbody\0");
    let (first, second) = frame.as_bytes().split_at(frame.len() / 2);
    room.raw(1, first);
    room.raw(1, second);
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "frame too large");
    assert!(detail.contains("max_frame_bytes"), "{detail}");
    assert!(room.take(2).is_empty(), "nothing delivered");
    assert!(room.history("/topic/t").is_empty());
}
}

room_test! {
fn a_message_larger_than_a_frame_is_refused_before_it_is_buffered() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    let frames = "SEND\ndestination:/topic/t\n\nx\0".repeat(100_000);
    room.raw(1, frames.as_bytes());
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "message too large");
    assert!(detail.contains("max_frame_bytes"), "{detail}");
    assert!(room.history("/topic/t").is_empty(), "none of its frames taken");
}
}

room_test! {
fn headers_count_toward_the_byte_rate() {
    let mut room = SimulatedRoom::with_config(Config {
        publish_rate: PublishRate {
            bytes_per_s: 10_000,
            bytes_burst: 20_000,
            ..PublishRate::UNLIMITED
        },
        ..Config::default()
    });
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/t");
    let headers: String = (0..10).map(|n| format!("h{n}:{}\n", "v".repeat(900))).collect();
    for _ in 0..3 {
        room.raw(1, format!("SEND\ndestination:/topic/t\n{headers}\n\0").as_bytes());
    }
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "rate limit exceeded");
    assert!(detail.contains("10000 bytes per second"), "{detail}");
    assert_eq!(room.take(2).len(), 2, "the empty-bodied SENDs within the burst");
}
}

room_test! {
fn every_frame_counts_toward_the_frame_rate() {
    let mut room = SimulatedRoom::with_config(Config {
        publish_rate: PublishRate {
            frames_per_s: 10,
            frames_burst: 20,
            ..PublishRate::UNLIMITED
        },
        ..Config::default()
    });
    room.connect(1, "");
    room.connect(2, "");
    let flood = "SUBSCRIBE\nid:x\ndestination:/topic/t\n\n\0UNSUBSCRIBE\nid:x\n\n\0".repeat(11);
    room.raw(1, flood.as_bytes());
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "rate limit exceeded");
    assert!(detail.contains("10 frames per second (burst 20)"), "{detail}");
    room.publish(2, "/topic/t", "served as before");
    assert!(room.is_open(2));
}
}

room_test! {
fn presence_snapshots_count_toward_the_subscriber_s_byte_rate() {
    let mut room = SimulatedRoom::with_config(Config {
        publish_rate: PublishRate {
            bytes_per_s: 1_000,
            bytes_burst: 5_000,
            ..PublishRate::UNLIMITED
        },
        max_connections_per_address: 0,
        ..Config::default()
    });
    for conn in 1..=40 {
        room.connect(conn, "");
    }
    // A snapshot of 40 members is about 2.4 KB: the burst holds two.
    for _ in 0..3 {
        room.raw(1, b"SUBSCRIBE\nid:p\ndestination:/presence\n\n\0UNSUBSCRIBE\nid:p\n\n\0");
    }
    let frames = room.take(1);
    let snapshots = frames.iter().filter(|f| f.command == Command::Message).count();
    assert_eq!(snapshots, 2, "two snapshots, then the rate");
    assert_eq!(error_of(&frames).0, "rate limit exceeded");
}
}

// ---- stored rows -----------------------------------------------------------------------------

room_test! {
fn a_flood_of_control_character_headers_cannot_fail_an_innocent_commit() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.connect(2, "");
    // Each header value is 60 KiB of control characters: six bytes each in JSON, one here.
    let value = "\u{1}".repeat(60 * 1024);
    let headers: String = (0..15).map(|n| format!("h{n}:{value}\n")).collect();
    for _ in 0..3 {
        room.raw(1, format!("SEND\ndestination:/topic/t\n{headers}\nx\0").as_bytes());
    }
    room.frame(2, "SEND\ndestination:/topic/t\nreceipt:mine", "innocent");
    assert_eq!(receipts(&room.take(2)), ["mine"]);
    assert!(room.failures.is_empty(), "{:?}", room.failures);
    let stored = room.history("/topic/t");
    assert_eq!(stored.last().map(|m| m.body.as_slice()), Some(b"innocent".as_slice()));
    assert_eq!(stored.len(), 4, "the flood's messages too, each row within the limit");
}
}

room_test! {
fn a_message_too_large_to_store_is_refused_to_its_sender_alone() {
    let mut room = SimulatedRoom::with_config(Config {
        budget: Budget {
            max_row_bytes: 2_000,
            ..Budget::default()
        },
        limits: Limits {
            max_frame_bytes: 4_096,
            ..Limits::default()
        },
        publish_rate: PublishRate::UNLIMITED,
        ..Config::default()
    });
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/t");
    room.frame(1, "SEND\ndestination:/topic/t\nreceipt:big", &"x".repeat(3_000));
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "message too large");
    assert!(detail.contains("budget.max_row_bytes"), "{detail}");
    assert!(room.take(2).is_empty(), "refused before its fan-out");
    room.frame(2, "SEND\ndestination:/topic/t\nreceipt:fine", "fits");
    assert_eq!(receipts(&room.take(2)), ["fine"]);
    assert_eq!(room.history("/topic/t").len(), 1);
}
}

room_test! {
fn history_past_its_destinations_gives_way_least_recently_used_first() {
    let mut room = room_with(Budget {
        max_history_destinations: 2,
        ..Budget::default()
    });
    room.connect(1, "");
    for (to, body) in [("/topic/a", "1"), ("/topic/b", "2"), ("/topic/a", "3"), ("/topic/c", "4")] {
        room.frame(1, &format!("SEND\ndestination:{to}\nreceipt:{body}"), body);
    }
    assert_eq!(receipts(&room.take(1)), ["1", "2", "3", "4"], "nothing refused");
    let bodies = |room: &SimulatedRoom, to: &str| -> Vec<String> {
        room.history(to).into_iter().map(|m| String::from_utf8(m.body).unwrap()).collect()
    };
    assert!(bodies(&room, "/topic/b").is_empty(), "its newest message was the oldest");
    assert_eq!(bodies(&room, "/topic/a"), ["1", "3"]);
    assert_eq!(bodies(&room, "/topic/c"), ["4"]);
    assert_eq!(room.stats()["held"]["history_destinations"], 2);
}
}

room_test! {
fn queues_past_their_number_are_refused_and_a_drained_queue_frees_its_place() {
    let mut room = room_with(Budget {
        max_queues: 1,
        ..Budget::default()
    });
    room.connect(1, "");
    room.publish(1, "/queue/q1", "1");
    room.publish(1, "/queue/q2", "2");
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "too many queues");
    assert!(detail.contains("budget.max_queues"), "{detail}");
    room.connect(2, "");
    room.subscribe(2, "q", "/queue/q1");
    assert_eq!(room.bodies(2), ["1"]);
    room.frame(2, "SEND\ndestination:/queue/q2\nreceipt:r", "3");
    assert_eq!(receipts(&room.take(2)), ["r"]);
}
}

room_test! {
fn a_topic_s_history_is_trimmed_to_its_bytes_as_well_as_its_messages() {
    let body = "x".repeat(1_000);
    let one = row("/topic/t", &body);
    let mut room = room_with(Budget {
        max_history_bytes: 5 * one,
        ..Budget::default()
    });
    room.connect(1, "");
    for _ in 0..20 {
        room.frame(1, "SEND\ndestination:/topic/t\nreceipt:r", &body);
    }
    room.take(1);
    let stored = room.history("/topic/t");
    assert!(stored.len() <= 6, "{} rows of {one} bytes kept", stored.len());
    let bytes: u64 = stored.iter().map(record::message_row_bytes).sum();
    assert!(bytes <= 5 * one + one, "{bytes}");
    assert_eq!(room.stats()["held"]["history_bytes"].as_u64(), Some(bytes), "the ledger agrees with storage");
}
}

// ---- reads -------------------------------------------------------------------------------------

/// A room whose reads hold at most three 1,000-byte messages.
fn small_reads() -> (SimulatedRoom, String) {
    let body = "x".repeat(1_000);
    let one = row("/topic/t", &body);
    let room = room_with(Budget {
        max_read_bytes: 3 * one + one / 2,
        max_row_bytes: one + 100,
        max_history_bytes: 100 * one,
        ..Budget::default()
    });
    (room, body)
}

room_test! {
fn a_replay_reads_at_most_the_read_budget_and_says_what_it_left_out() {
    let (mut room, body) = small_reads();
    room.connect(1, "");
    for _ in 0..10 {
        room.publish(1, "/topic/t", &body);
    }
    room.connect(2, "");
    room.frame(2, "SUBSCRIBE\nid:s\ndestination:/topic/t\nreplay-last:10", "");
    let replayed = room.take(2);
    assert_eq!(replayed.len(), 3, "the newest that fit, next to the live ones");
    assert_eq!(replayed[0].header("replay-skipped"), Some("7"));
    assert_eq!(replayed[0].header("message-id"), Some("8"));
    assert_eq!(replayed[2].header("message-id"), Some("10"));
    assert_eq!(replayed[1].header("replay-skipped"), None);
}
}

room_test! {
fn a_poll_pages_forward_within_the_read_budget() {
    let (mut room, body) = small_reads();
    room.connect(1, "");
    for _ in 0..7 {
        room.publish(1, "/topic/t", &body);
    }
    let mut seen = Vec::new();
    let mut after = 0;
    for page in 0.. {
        let answer = body_json(&respond(room.http(get(&format!("/topic/t?after={after}")))));
        seen.extend(ids(&answer));
        after = answer["next_after"].as_u64().unwrap();
        if answer["more"] != true {
            assert_eq!(page, 2, "three pages of at most three");
            break;
        }
    }
    assert_eq!(seen, (1..=7).collect::<Vec<u64>>(), "every message once, in order");
    let newest = body_json(&respond(room.http(get("/topic/t?last=7"))));
    assert_eq!(ids(&newest), [5, 6, 7]);
    assert_eq!(newest["skipped"], 4);
}
}

room_test! {
fn an_event_stream_s_replay_within_the_read_budget_names_what_it_skipped() {
    let (mut room, body) = small_reads();
    room.connect(1, "");
    for _ in 0..5 {
        room.publish(1, "/topic/t", &body);
    }
    let request = with_header(get("/topic/t?after=0"), "accept", "text/event-stream");
    let Some(HttpOutcome::Stream { head, .. }) = room.http(request) else {
        panic!("expected a stream");
    };
    let start = text(&head);
    assert!(start.contains("event: skipped\ndata: {\"skipped\":2}\n\n"), "{start}");
    assert!(start.contains("id: 3\n") && start.contains("id: 5\n") && !start.contains("id: 2\n"));
}
}

// ---- event streams ----------------------------------------------------------------------------

#[test]
fn a_stream_whose_client_reads_nothing_ends_past_its_backlog_and_the_most_backlogged_first() {
    let mut room = SimulatedRoom::with_settings(Settings {
        http: HttpSettings {
            max_stream_backlog_bytes: 5_000,
            max_backlog_bytes: 7_000,
            ..HttpSettings::default()
        },
        broker: Config {
            publish_rate: PublishRate::UNLIMITED,
            ..Config::default()
        },
        ..Settings::default()
    });
    let open = |room: &mut SimulatedRoom| {
        let request = with_header(get("/topic/t"), "accept", "text/event-stream");
        match room.http(request) {
            Some(HttpOutcome::Stream { listener, .. }) => listener,
            other => panic!("expected a stream, got {other:?}"),
        }
    };
    let (slow, slower, reader) = (open(&mut room), open(&mut room), open(&mut room));
    room.sockets.slow_streams.insert(slow, 0);
    room.sockets.slow_streams.insert(slower, 1_000);
    room.connect(1, "");
    let ended = |room: &SimulatedRoom, id| {
        room.sockets
            .log
            .iter()
            .any(|call| matches!(call, SocketCall::End { listener } if *listener == id))
    };
    for _ in 0..3 {
        room.publish(1, "/topic/t", &"x".repeat(1_000));
    }
    assert!(
        ended(&room, slower),
        "the two slow ones together leave more than 7,000 unread"
    );
    assert!(!ended(&room, slow) && !ended(&room, reader));
    for _ in 0..3 {
        room.publish(1, "/topic/t", &"x".repeat(1_000));
    }
    assert!(ended(&room, slow), "past its own 5,000");
    assert!(
        !ended(&room, reader),
        "a client that reads keeps its stream"
    );
    assert_eq!(room.stats()["open_requests"]["streams"], 1);
}

// ---- crashes and ids -----------------------------------------------------------------------------

#[test]
fn message_and_session_ids_are_never_given_twice_after_a_crash() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/t");
    for n in 0..20 {
        room.publish(1, "/topic/t", &format!("{n}"));
    }
    let seen: Vec<u64> = room
        .take(2)
        .iter()
        .filter_map(|f| f.header("message-id")?.parse().ok())
        .collect();
    let newest_seen = *seen.iter().max().unwrap();
    assert!(
        room.history("/topic/t").len() < 20,
        "some history rows were still deferred"
    );
    room.restart();
    assert!(
        !room.is_open(1) && !room.is_open(2),
        "a crash closes every socket"
    );
    let connected = room.connect(3, "");
    let session: u64 = connected.header("session").unwrap()[1..].parse().unwrap();
    assert!(
        session > 2,
        "session id s{session} was given before the crash"
    );
    room.subscribe(3, "s", "/topic/t");
    room.connect(4, "");
    room.publish(4, "/topic/t", "after the crash");
    let first_after: u64 = room.take(3)[0]
        .header("message-id")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        first_after > newest_seen,
        "id {first_after} after {newest_seen} was seen"
    );
}

#[test]
fn a_crash_loses_at_most_unreceipted_history_and_nothing_a_receipt_promised() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.frame(1, "SEND\ndestination:/topic/t\nreceipt:a", "kept");
    room.frame(1, "SEND\ndestination:/queue/q", "queued");
    room.frame(1, "BEGIN\ntransaction:tx", "");
    room.frame(1, "SEND\ndestination:/topic/t\ntransaction:tx", "staged");
    room.publish(1, "/topic/t", "maybe lost");
    assert_eq!(receipts(&room.take(1)), ["a"]);
    assert_eq!(
        room.store.staged().len(),
        1,
        "staged frames are stored at once"
    );
    room.restart();
    let bodies: Vec<Vec<u8>> = room
        .history("/topic/t")
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        bodies,
        [b"kept".to_vec()],
        "the unreceipted row was still deferred"
    );
    assert_eq!(
        room.store.queued().len(),
        1,
        "a queue message commits at once"
    );
    room.connect(2, "");
    room.subscribe(2, "q", "/queue/q");
    assert_eq!(room.bodies(2), ["queued"]);
    assert!(
        room.store.staged().is_empty(),
        "the crashed connection's transaction is gone"
    );
}

#[test]
fn after_a_quiet_spell_the_room_s_alarm_brings_the_ceilings_down_so_ids_continue_exactly() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/t");
    room.publish(1, "/topic/t", "before");
    assert_eq!(room.take(2)[0].header("message-id"), Some("1"));
    // The platform's alarm, not an eviction's flush, after 2 s of quiet; then a crash.
    room.advance(stomp_rooms::room::FLUSH_DEADLINE_MS);
    room.restart();
    assert_eq!(room.connect(3, "").header("session"), Some("s3"));
    room.subscribe(3, "s", "/topic/t");
    room.connect(4, "");
    room.publish(4, "/topic/t", "after");
    assert_eq!(room.take(3)[0].header("message-id"), Some("2"));
}

#[test]
fn a_ceiling_met_exactly_by_quiet_time_settles_instead_of_waking_the_room_again_and_again() {
    let mut room = room_with(Budget::default());
    room.open(1);
    // Opening sockets writes nothing: the ids run up to the ceiling raised by the first.
    for client in 2..=stomp_rooms::room::ID_HEADROOM + 1 {
        room.open(client);
        room.close(client);
    }
    room.advance(stomp_rooms::room::FLUSH_DEADLINE_MS);
    let alarms = room.stats()["events_since_wake"]["alarms"]
        .as_u64()
        .unwrap();
    room.advance(60_000);
    let later = room.stats()["events_since_wake"]["alarms"]
        .as_u64()
        .unwrap();
    assert!(
        later - alarms <= 2,
        "{} alarms in a minute of quiet",
        later - alarms
    );
}

#[test]
fn an_evicted_room_continues_its_ids_exactly() {
    support::with_eviction(support::Eviction::EveryStep, || {
        let mut room = room_with(Budget::default());
        room.connect(1, "");
        room.connect(2, "");
        room.subscribe(2, "s", "/topic/t");
        for _ in 0..3 {
            room.publish(1, "/topic/t", "m");
        }
        let frames = room.take(2);
        let ids: Vec<&str> = frames
            .iter()
            .filter_map(|f| f.header("message-id"))
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(room.connect(3, "").header("session"), Some("s3"));
    });
}

// ---- sockets and the alarm ----------------------------------------------------------------------

room_test! {
fn a_socket_the_client_closed_is_let_go() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.connect(2, "");
    room.close(1);
    assert!(!room.sockets.handles.contains(&room.conn(1)), "{:?}", room.sockets.handles);
    assert!(room.sockets.handles.contains(&room.conn(2)));
}
}

room_test! {
fn a_sender_s_own_binary_message_held_for_its_receipt_arrives_binary() {
    let mut room = room_with(Budget::default());
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/t");
    room.take(1);
    // The RECEIPT waits for the commit, and so does every later frame to the same client.
    let send = |receipt: &str| {
        format!("SEND\ndestination:/topic/t\n{receipt}content-length:2\n\n\x00\x01\0")
    };
    let message = [send("receipt:r\n"), send("")].concat();
    room.raw_binary(1, message.as_bytes());
    let received = room.take_received(1);
    let kinds: Vec<(Command, bool)> = received
        .iter()
        .filter_map(|r| Some((r.frame.as_ref()?.command, r.binary)))
        .collect();
    assert_eq!(
        kinds,
        [
            (Command::Message, true),
            (Command::Receipt, false),
            (Command::Message, true)
        ],
        "binary in, binary out, held or not"
    );
}
}

#[test]
fn an_alarm_the_platform_did_not_set_is_asked_for_again() {
    use std::rc::Rc;
    use stomp_rooms::room::testing::{MemorySockets, MemoryStorage};
    use stomp_rooms::room::{self, AlarmChange, AllowAll, Peer};
    let (mut store, mut sockets) = (MemoryStorage::default(), MemorySockets::default());
    let mut engine = room::RoomEngine::wake(
        Settings::default(),
        Rc::new(AllowAll),
        &mut store,
        &mut sockets,
        0,
    )
    .unwrap();
    engine
        .open(&mut store, &mut sockets, Peer::default(), 0)
        .unwrap();
    let Some(AlarmChange::Set(at)) = engine.alarm_change(0) else {
        panic!("a deadline to meet");
    };
    assert_eq!(
        engine.alarm_change(0),
        None,
        "set, as far as the room knows"
    );
    engine.alarm_failed();
    assert_eq!(
        engine.alarm_change(0),
        Some(AlarmChange::Set(at)),
        "asked for again"
    );
}

#[test]
fn the_platform_s_socket_limit_refuses_a_socket_and_the_room_carries_on() {
    let mut room = SimulatedRoom::with_config(Config {
        max_connections: 0,
        max_connections_per_address: 0,
        ..Config::default()
    });
    for client in 1..=stomp_rooms::room::budget::PLATFORM_SOCKETS as u64 {
        room.open(client);
    }
    let over = stomp_rooms::room::budget::PLATFORM_SOCKETS as u64 + 1;
    room.open(over);
    assert!(!room.is_open(over), "refused by the platform");
    assert!(room.failures.is_empty());
    room.raw(1, b"CONNECT\naccept-version:1.2\n\n\0");
    assert_eq!(room.take(1)[0].command, Command::Connected);
}

// ---- settings ------------------------------------------------------------------------------------

#[test]
fn settings_whose_budget_cannot_work_are_refused_naming_the_problem() {
    assert_eq!(Settings::default().check(), Ok(()));
    let cases = [
        (
            Budget {
                max_row_bytes: 3_000_000,
                ..Budget::default()
            },
            Limits::default(),
            "over the platform's",
        ),
        (
            Budget::default(),
            Limits {
                max_frame_bytes: 1_900_000,
                ..Limits::default()
            },
            "does not fit a row",
        ),
        (
            Budget {
                max_read_bytes: 1_000,
                ..Budget::default()
            },
            Limits::default(),
            "budget.max_read_bytes",
        ),
        (
            Budget {
                max_history_destinations: 10_000,
                ..Budget::default()
            },
            Limits::default(),
            "over the 8589934592 a room may",
        ),
        (
            Budget {
                max_idempotency_keys: 100_001,
                ..Budget::default()
            },
            Limits::default(),
            "budget.max_idempotency_keys (100001) is over 100000",
        ),
    ];
    for (budget, limits, problem) in cases {
        let settings = Settings {
            broker: Config {
                budget,
                limits,
                ..Config::default()
            },
            ..Settings::default()
        };
        let refused = settings.check().unwrap_err();
        assert!(refused.contains(problem), "{refused}");
    }
    for misspelt in [
        r#"{"budget": {"max_queue_message": 5}}"#,
        r#"{"limits": {"max_frame_byte": 5}}"#,
        r#"{"budget": {"queue_overflow": "drop-newest"}}"#,
    ] {
        assert!(
            serde_json::from_str::<Settings>(misspelt).is_err(),
            "{misspelt} is refused, not ignored"
        );
    }
}

room_test! {
fn a_poll_s_answer_stays_within_the_read_budget_once_encoded_as_json() {
    // Control characters take one byte in a row and six in JSON.
    let body = "\u{1}".repeat(200);
    let one = row("/topic/t", &body);
    let mut room = room_with(Budget {
        max_read_bytes: 6 * one,
        ..Budget::default()
    });
    room.connect(1, "");
    for _ in 0..3 {
        room.frame(1, "SEND\ndestination:/topic/t\nreceipt:r", &body);
    }
    let answer = respond(room.http(get("/topic/t?after=0")));
    assert!(answer.body.len() as u64 <= 6 * one, "{} bytes", answer.body.len());
    let answer = body_json(&answer);
    assert_eq!(ids(&answer), [1], "the rows fit the read, their JSON does not");
    assert_eq!(answer["more"], true);
    let next = body_json(&respond(room.http(get("/topic/t?after=1"))));
    assert_eq!(ids(&next), [2]);
}
}

#[test]
fn settings_whose_wake_could_load_more_than_half_an_isolate_are_refused_naming_each_part() {
    // The defaults load at most about 41 MB: 32 MiB of queues, staged and partial frames,
    // 10,000 idempotency keys, and the webhooks' 4 MiB outbox when they are on.
    assert_eq!(Settings::default().check(), Ok(()));
    let heavy = Settings {
        broker: Config {
            budget: Budget {
                max_queued_bytes: 48 * 1024 * 1024,
                max_idempotency_keys: 50_000,
                ..Budget::default()
            },
            ..Config::default()
        },
        ..Settings::default()
    };
    let refused = heavy.check().unwrap_err();
    for part in [
        "budget.max_queued_bytes",
        "budget.max_room_staged_bytes",
        "budget.max_partial_bytes",
        "budget.max_idempotency_keys",
        "webhooks.max_outbox_bytes",
        "67108864",
    ] {
        assert!(refused.contains(part), "{part} in: {refused}");
    }
    let lighter = Settings {
        broker: Config {
            budget: Budget {
                max_queued_bytes: 40 * 1024 * 1024,
                max_idempotency_keys: 1_000,
                ..Budget::default()
            },
            ..Config::default()
        },
        ..Settings::default()
    };
    assert_eq!(
        lighter.check(),
        Ok(()),
        "smaller queues with fewer keys fit"
    );
}
