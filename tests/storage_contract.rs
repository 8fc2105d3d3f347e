//! One contract for the room's storage, run on each implementation: the in-memory storage the
//! native tests run the room on, and the SQL the Durable Object runs (on SQLite itself, with
//! the platform's limits: see `support/sqlite.rs`). Whatever the room may rely on is here, so
//! a room tested in memory behaves the same on SQLite.
//!
//! `Stored` lists cursors, address rates and history summaries in no promised order (the room
//! puts them in maps): they are compared sorted (`support/storage.rs`).

#[path = "support/sqlite.rs"]
mod sqlite;
#[path = "support/storage.rs"]
mod storage;

use stomp_rooms::room::budget::PLATFORM_ROW_BYTES;
use stomp_rooms::room::record::message_row_bytes;
use stomp_rooms::room::{
    Counter, HistoryRead, HistoryUsage, IdempotencyKey, PartialFrame, QueuedMessage, ReadFrom,
    StagedFrame, Storage, Stored, StoredMember, Throttle, WebhookRow, Write,
};
use stomp_rooms::stomp::Message;
use storage::{message, sorted_load as load};

/// Each case, as a test on each storage.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[test]
            fn $case() {
                super::$case(&mut stomp_rooms::room::testing::MemoryStorage::default());
            })*
        }
        mod sql {
            $(#[test]
            fn $case() {
                super::$case(&mut super::sqlite::sql_store());
            })*
        }
    };
}

contract![
    a_new_store_holds_nothing,
    counters_round_trip,
    refusal_counts_round_trip_each_under_its_own_key,
    archived_messages_read_back_whole,
    history_reads_from_either_end_within_count_and_bytes,
    a_history_read_holds_nothing_when_its_first_row_is_over_its_bytes,
    history_counts_after_an_id,
    trims_keep_the_newest_rows_within_bytes_and_always_the_newest,
    a_dropped_history_is_forgotten,
    history_remembers_the_highest_id_it_lost_to_trims_and_drops,
    queue_messages_round_trip_with_their_redelivery,
    queue_cursors_are_kept_until_zero,
    staged_frames_load_in_staging_order_until_unstaged,
    partial_frames_are_joined_from_their_pieces_until_reset,
    address_rates_round_trip_and_full_ones_are_forgotten,
    idempotency_keys_round_trip_replace_their_key_and_are_forgotten_below_an_id,
    a_commit_with_a_row_over_the_limit_changes_nothing,
    writes_apply_in_order_within_one_commit,
    webhook_events_members_and_room_round_trip_until_forgotten,
    gateway_members_round_trip_by_connection_until_gone,
];

fn commit(store: &mut dyn Storage, writes: &[Write]) {
    store
        .commit(writes)
        .unwrap_or_else(|error| panic!("commit of {writes:?} failed: {error}"));
}

fn read(store: &dyn Storage, destination: &str, read: HistoryRead) -> Vec<u64> {
    let messages = store.history(destination, read).expect("history");
    messages.iter().map(|m| m.id).collect()
}

fn all(from: ReadFrom) -> HistoryRead {
    HistoryRead {
        after: 0,
        count: u32::MAX,
        max_bytes: u64::MAX,
        from,
    }
}

fn usage_of(messages: &[&Message]) -> HistoryUsage {
    let mut usage = HistoryUsage::default();
    for message in messages {
        usage.add(message.id, message_row_bytes(message));
    }
    usage
}

fn a_new_store_holds_nothing(store: &mut dyn Storage) {
    let expected = Stored {
        counters: Counter::ALL.iter().map(|&c| (c, 0)).collect(),
        ..Stored::default()
    };
    assert_eq!(load(store), expected);
    assert_eq!(
        read(store, "/topic/a", all(ReadFrom::Newest)),
        Vec::<u64>::new()
    );
    assert_eq!(store.history_count("/topic/a", 0), Ok(0));
    assert_eq!(store.history_usage("/topic/a"), Ok(HistoryUsage::default()));
}

fn counters_round_trip(store: &mut dyn Storage) {
    // The largest integer a JavaScript number holds exactly: the Durable Object's limit.
    let largest = (1 << 53) - 1;
    commit(
        store,
        &[
            Write::Counter(Counter::LastMessageId, largest),
            Write::Counter(Counter::LastConn, 7),
            Write::Counter(Counter::Wakes, 1),
        ],
    );
    commit(store, &[Write::Counter(Counter::Wakes, 2)]);
    let stored = load(store);
    assert_eq!(stored.counter(Counter::LastMessageId), largest);
    assert_eq!(stored.counter(Counter::LastConn), 7);
    assert_eq!(stored.counter(Counter::Wakes), 2, "the second write wins");
    assert_eq!(stored.counter(Counter::LivenessSweep), 0, "never written");
    assert_eq!(stored.counters.len(), Counter::ALL.len());
}

fn refusal_counts_round_trip_each_under_its_own_key(store: &mut dyn Storage) {
    use stomp_rooms::room::log::Refusal;
    commit(
        store,
        &[
            Write::Counter(Counter::Refusals(Refusal::TooLarge), 3),
            Write::Counter(Counter::Refusals(Refusal::RateLimit), 1),
            Write::Counter(Counter::Wakes, 4),
        ],
    );
    commit(
        store,
        &[Write::Counter(Counter::Refusals(Refusal::TooLarge), 5)],
    );
    let stored = load(store);
    assert_eq!(stored.counter(Counter::Refusals(Refusal::TooLarge)), 5);
    assert_eq!(stored.counter(Counter::Refusals(Refusal::RateLimit)), 1);
    assert_eq!(stored.counter(Counter::Refusals(Refusal::Protocol)), 0);
    assert_eq!(stored.counter(Counter::Wakes), 4);
}

fn archived_messages_read_back_whole(store: &mut dyn Storage) {
    let odd = Message {
        id: 2,
        destination: "/topic/é 🎉".to_owned(),
        headers: vec![
            ("".to_owned(), "".to_owned()),
            (
                "line\nbreak".to_owned(),
                "colon:\\ \"quoted\" \r".to_owned(),
            ),
            (
                "content-type".to_owned(),
                "application/octet-stream".to_owned(),
            ),
        ],
        body: vec![0, 255, 0, 10, 0],
        binary: true,
    };
    let plain = message(1, "/topic/a", "hello");
    let empty = Message {
        headers: Vec::new(),
        body: Vec::new(),
        ..message(3, "/topic/a", "")
    };
    commit(
        store,
        &[
            Write::Archive(plain.clone()),
            Write::Archive(odd.clone()),
            Write::Archive(empty.clone()),
        ],
    );
    let history = |destination| {
        store
            .history(destination, all(ReadFrom::Oldest))
            .expect("history")
    };
    assert_eq!(history("/topic/a"), vec![plain.clone(), empty.clone()]);
    assert_eq!(history("/topic/é 🎉"), vec![odd.clone()]);
    let stored = load(store);
    assert_eq!(stored.newest_message_id, 3);
    assert_eq!(
        stored.history,
        vec![
            ("/topic/a".to_owned(), usage_of(&[&plain, &empty])),
            ("/topic/é 🎉".to_owned(), usage_of(&[&odd])),
        ]
    );
    assert_eq!(
        store.history_usage("/topic/a"),
        Ok(usage_of(&[&plain, &empty]))
    );
    assert_eq!(
        store.history_usage("/topic/a"),
        Ok(HistoryUsage {
            rows: 2,
            bytes: message_row_bytes(&plain) + message_row_bytes(&empty),
            newest: 3
        })
    );
}

/// `/topic/a` holds ids 1, 3, 5, 7, 9 with bodies of growing size; `/topic/b` the even ids.
fn interleaved(store: &mut dyn Storage) -> Vec<Message> {
    let writes: Vec<Write> = (1..=10)
        .map(|id| {
            let destination = if id % 2 == 1 { "/topic/a" } else { "/topic/b" };
            Write::Archive(message(id, destination, &"x".repeat(id as usize * 10)))
        })
        .collect();
    commit(store, &writes);
    writes
        .into_iter()
        .filter_map(|write| match write {
            Write::Archive(m) if m.destination == "/topic/a" => Some(m),
            _ => None,
        })
        .collect()
}

fn history_reads_from_either_end_within_count_and_bytes(store: &mut dyn Storage) {
    let a = interleaved(store);
    let row = |id: u64| message_row_bytes(&a[(id as usize - 1) / 2]);
    let (newest_two, oldest_two) = (row(9) + row(7), row(3) + row(5));
    let (all_bytes, none) = (u64::MAX, Vec::<u64>::new());
    let reads = [
        (
            "/topic/a",
            0,
            9,
            all_bytes,
            ReadFrom::Oldest,
            vec![1, 3, 5, 7, 9],
        ),
        (
            "/topic/a",
            0,
            9,
            all_bytes,
            ReadFrom::Newest,
            vec![1, 3, 5, 7, 9],
        ),
        (
            "/topic/b",
            0,
            9,
            all_bytes,
            ReadFrom::Newest,
            vec![2, 4, 6, 8, 10],
        ),
        // By count: the newest, or the oldest after an id; oldest first either way.
        ("/topic/a", 0, 2, all_bytes, ReadFrom::Newest, vec![7, 9]),
        ("/topic/a", 0, 2, all_bytes, ReadFrom::Oldest, vec![1, 3]),
        ("/topic/a", 3, 2, all_bytes, ReadFrom::Oldest, vec![5, 7]),
        ("/topic/a", 4, 9, all_bytes, ReadFrom::Newest, vec![5, 7, 9]),
        ("/topic/a", 9, 9, all_bytes, ReadFrom::Oldest, none.clone()),
        ("/topic/a", 0, 0, all_bytes, ReadFrom::Newest, none),
        // By bytes: rows are taken from the end the read starts at while they fit, exactly.
        ("/topic/a", 0, 9, newest_two, ReadFrom::Newest, vec![7, 9]),
        ("/topic/a", 0, 9, newest_two - 1, ReadFrom::Newest, vec![9]),
        ("/topic/a", 1, 9, oldest_two, ReadFrom::Oldest, vec![3, 5]),
        ("/topic/a", 1, 9, oldest_two - 1, ReadFrom::Oldest, vec![3]),
        // Count and bytes together: whichever stops first.
        ("/topic/a", 0, 1, newest_two, ReadFrom::Newest, vec![9]),
    ];
    for (destination, after, count, max_bytes, from, expected) in reads {
        let asked = HistoryRead {
            after,
            count,
            max_bytes,
            from,
        };
        assert_eq!(
            read(store, destination, asked),
            expected,
            "{destination} {asked:?}"
        );
    }
}

/// [`HistoryRead`] says "at least one when there is one"; neither storage gives one that is
/// over the read's bytes. The room never asks for less than a row (its budget sees to it).
fn a_history_read_holds_nothing_when_its_first_row_is_over_its_bytes(store: &mut dyn Storage) {
    let a = interleaved(store);
    let newest = message_row_bytes(&a[4]);
    let oldest = message_row_bytes(&a[0]);
    for (from, bytes) in [(ReadFrom::Newest, newest), (ReadFrom::Oldest, oldest)] {
        let read_of = |max_bytes| HistoryRead {
            after: 0,
            count: 9,
            max_bytes,
            from,
        };
        assert_eq!(
            read(store, "/topic/a", read_of(bytes - 1)),
            Vec::<u64>::new()
        );
        assert_eq!(read(store, "/topic/a", read_of(bytes)).len(), 1);
    }
}

fn history_counts_after_an_id(store: &mut dyn Storage) {
    interleaved(store);
    assert_eq!(store.history_count("/topic/a", 0), Ok(5));
    assert_eq!(store.history_count("/topic/a", 4), Ok(3));
    assert_eq!(store.history_count("/topic/a", 9), Ok(0));
    assert_eq!(store.history_count("/topic/b", 9), Ok(1));
    assert_eq!(store.history_count("/topic/none", 0), Ok(0));
}

fn trims_keep_the_newest_rows_within_bytes_and_always_the_newest(store: &mut dyn Storage) {
    let a = interleaved(store);
    let row = |id: u64| message_row_bytes(&a[(id as usize - 1) / 2]);
    let trim = |keep_rows, keep_bytes| Write::TrimHistory {
        destination: "/topic/a".to_owned(),
        keep_rows,
        keep_bytes,
    };
    commit(store, &[trim(4, u64::MAX)]);
    assert_eq!(read(store, "/topic/a", all(ReadFrom::Oldest)), [3, 5, 7, 9]);
    commit(store, &[trim(9, row(9) + row(7) + row(5))]);
    assert_eq!(read(store, "/topic/a", all(ReadFrom::Oldest)), [5, 7, 9]);
    commit(store, &[trim(9, row(9) + row(7) - 1)]);
    assert_eq!(read(store, "/topic/a", all(ReadFrom::Oldest)), [9]);
    commit(store, &[trim(0, 0)]);
    assert_eq!(
        read(store, "/topic/a", all(ReadFrom::Oldest)),
        [9],
        "the newest stays"
    );
    let usage = HistoryUsage {
        rows: 1,
        bytes: row(9),
        newest: 9,
    };
    assert_eq!(store.history_usage("/topic/a"), Ok(usage));
    let stored = load(store);
    assert_eq!(stored.history[0], ("/topic/a".to_owned(), usage));
    assert_eq!(
        stored.history[1].1.rows, 5,
        "another destination is not trimmed"
    );
    assert_eq!(store.history_count("/topic/b", 0), Ok(5));
}

fn a_dropped_history_is_forgotten(store: &mut dyn Storage) {
    interleaved(store);
    commit(
        store,
        &[Write::DropHistory {
            destination: "/topic/a".to_owned(),
        }],
    );
    assert_eq!(
        read(store, "/topic/a", all(ReadFrom::Oldest)),
        Vec::<u64>::new()
    );
    assert_eq!(store.history_usage("/topic/a"), Ok(HistoryUsage::default()));
    let stored = load(store);
    let destinations: Vec<&str> = stored.history.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(destinations, ["/topic/b"]);
    assert_eq!(stored.newest_message_id, 10);
}

fn history_remembers_the_highest_id_it_lost_to_trims_and_drops(store: &mut dyn Storage) {
    interleaved(store);
    let lost = |store: &dyn Storage, destination: &str| store.history_lost(destination).unwrap();
    let trim = |destination: &str, keep_rows| Write::TrimHistory {
        destination: destination.to_owned(),
        keep_rows,
        keep_bytes: u64::MAX,
    };
    let drop = |destination: &str| Write::DropHistory {
        destination: destination.to_owned(),
    };
    assert_eq!((lost(store, "/topic/a"), lost(store, "/topic/b")), (0, 0));
    commit(store, &[trim("/topic/a", 3)]);
    assert_eq!(lost(store, "/topic/a"), 3, "1 and 3 trimmed");
    assert_eq!(
        lost(store, "/topic/b"),
        0,
        "another destination lost nothing"
    );
    commit(store, &[trim("/topic/a", 9)]);
    assert_eq!(
        lost(store, "/topic/a"),
        3,
        "a trim that deletes nothing forgets nothing"
    );
    commit(
        store,
        &[
            Write::Archive(message(11, "/topic/a", "11")),
            Write::Archive(message(13, "/topic/a", "13")),
            trim("/topic/a", 2),
        ],
    );
    assert_eq!(
        lost(store, "/topic/a"),
        9,
        "trimmed in the commit that archived"
    );
    commit(
        store,
        &[
            Write::Archive(message(21, "/topic/c", "21")),
            Write::Archive(message(23, "/topic/c", "23")),
            trim("/topic/c", 1),
        ],
    );
    assert_eq!(
        lost(store, "/topic/c"),
        21,
        "a history trimmed in its first commit"
    );
    assert_eq!(load(store).history.len(), 3);
    commit(store, &[drop("/topic/a")]);
    assert_eq!(lost(store, "/topic/a"), 13, "the newest it held");
    assert_eq!(
        lost(store, "/topic/b"),
        13,
        "a dropped history's mark stands for every destination"
    );
    assert_eq!(lost(store, "/topic/c"), 21);
    commit(store, &[Write::Archive(message(31, "/topic/a", "31"))]);
    assert_eq!(
        lost(store, "/topic/a"),
        13,
        "kept after the destination comes back"
    );
    commit(store, &[drop("/topic/c")]);
    assert_eq!(lost(store, "/topic/b"), 23);
    assert_eq!(
        load(store).history.len(),
        2,
        "a dropped history keeps no summary"
    );
}

fn queue_messages_round_trip_with_their_redelivery(store: &mut dyn Storage) {
    let first = message(11, "/queue/jobs", "one");
    let second = Message {
        binary: true,
        body: vec![0, 1, 2],
        ..message(12, "/queue/jobs", "")
    };
    let third = message(13, "/queue/other", "three");
    let fourth = message(14, "/queue/jobs", "four");
    commit(store, &[Write::Archive(message(20, "/topic/a", "newest"))]);
    commit(
        store,
        &[
            Write::Enqueue(first.clone()),
            Write::Enqueue(second.clone()),
            Write::Enqueue(third.clone()),
            Write::Enqueue(fourth.clone()),
        ],
    );
    commit(
        store,
        &[
            Write::Requeue {
                message_id: 11,
                avoid: Some((7, u32::MAX)),
            },
            Write::Requeue {
                message_id: 13,
                avoid: None,
            },
            Write::Dequeue { message_id: 12 },
        ],
    );
    let stored = load(store);
    let queued = |message: &Message, redelivered, avoid| QueuedMessage {
        message: message.clone(),
        redelivered,
        avoid,
    };
    assert_eq!(
        stored.queued,
        vec![
            queued(&first, true, Some((7, u32::MAX))),
            queued(&third, true, None),
            queued(&fourth, false, None),
        ]
    );
    assert_eq!(stored.newest_message_id, 20, "history's newest is newer");
    commit(
        store,
        &[Write::Enqueue(message(21, "/queue/jobs", "newest"))],
    );
    assert_eq!(load(store).newest_message_id, 21, "and now the queue's");
    assert_eq!(
        read(store, "/queue/jobs", all(ReadFrom::Oldest)),
        Vec::<u64>::new(),
        "not history"
    );
}

fn queue_cursors_are_kept_until_zero(store: &mut dyn Storage) {
    let cursor = |destination: &str, next| Write::QueueCursor {
        destination: destination.to_owned(),
        next,
    };
    commit(store, &[cursor("/queue/b", 3), cursor("/queue/a", 1)]);
    commit(store, &[cursor("/queue/b", 4)]);
    assert_eq!(
        load(store).cursors,
        [("/queue/a".to_owned(), 1), ("/queue/b".to_owned(), 4)]
    );
    commit(store, &[cursor("/queue/a", 0)]);
    assert_eq!(load(store).cursors, [("/queue/b".to_owned(), 4)]);
}

fn staged_frames_load_in_staging_order_until_unstaged(store: &mut dyn Storage) {
    let staged = |conn, transaction: &str, record: &[u8], binary| StagedFrame {
        conn,
        transaction: transaction.to_owned(),
        record: record.to_vec(),
        binary,
    };
    let frames = [
        staged(2, "tx", b"\x01\x00first", false),
        staged(1, "tx", b"second", true),
        staged(2, "other", b"", false),
        staged(2, "tx", &[0, 255, 0], true),
    ];
    let writes: Vec<Write> = frames
        .iter()
        .map(|f| Write::Stage {
            conn: f.conn,
            transaction: f.transaction.clone(),
            record: f.record.clone(),
            binary: f.binary,
        })
        .collect();
    commit(store, &writes[..2]);
    commit(store, &writes[2..]);
    assert_eq!(load(store).staged, frames);
    commit(
        store,
        &[Write::Unstage {
            conn: 2,
            transaction: "tx".to_owned(),
        }],
    );
    assert_eq!(load(store).staged, [frames[1].clone(), frames[2].clone()]);
}

fn partial_frames_are_joined_from_their_pieces_until_reset(store: &mut dyn Storage) {
    let append = |conn, bytes: &[u8]| Write::PartialAppend {
        conn,
        bytes: bytes.to_vec(),
    };
    let reset = |conn, bytes: &[u8]| Write::PartialReset {
        conn,
        bytes: bytes.to_vec(),
    };
    commit(store, &[append(9, b"SEND\n"), append(4, b"\0\xff")]);
    commit(store, &[append(9, b"destination:/topic/a\n")]);
    commit(store, &[append(9, b"\n")]);
    let partial = |conn, bytes: &[u8], pieces| PartialFrame {
        conn,
        bytes: bytes.to_vec(),
        pieces,
    };
    assert_eq!(
        load(store).partials,
        [
            partial(4, b"\0\xff", 1),
            partial(9, b"SEND\ndestination:/topic/a\n\n", 3)
        ]
    );
    commit(store, &[reset(9, b"SUBSCRIBE\n"), reset(4, b"")]);
    assert_eq!(load(store).partials, [partial(9, b"SUBSCRIBE\n", 1)]);
    commit(store, &[append(9, b"")]);
    assert_eq!(
        load(store).partials,
        [partial(9, b"SUBSCRIBE\n", 2)],
        "an empty piece is a piece"
    );
}

fn address_rates_round_trip_and_full_ones_are_forgotten(store: &mut dyn Storage) {
    let throttle = |messages_us, frames_us, bytes_us| Throttle {
        messages_us,
        frames_us,
        bytes_us,
    };
    let rate = |address: &str, throttle| Write::AddressRate {
        address: address.to_owned(),
        throttle,
    };
    commit(
        store,
        &[
            rate("10.0.0.1", throttle(100, 0, 0)),
            rate("2001:db8::1", throttle(50, 300, 50)),
            rate("10.0.0.2", throttle(1, 2, 250)),
        ],
    );
    commit(store, &[rate("10.0.0.1", throttle(200, 0, 200))]);
    assert_eq!(
        load(store).address_rates,
        [
            ("10.0.0.1".to_owned(), throttle(200, 0, 200)),
            ("10.0.0.2".to_owned(), throttle(1, 2, 250)),
            ("2001:db8::1".to_owned(), throttle(50, 300, 50)),
        ]
    );
    // Full by 250: every bucket is empty by then (at or before it).
    commit(store, &[Write::ForgetFullAddressRates { now_us: 250 }]);
    assert_eq!(
        load(store).address_rates,
        [("2001:db8::1".to_owned(), throttle(50, 300, 50))]
    );
}

fn idempotency_keys_round_trip_replace_their_key_and_are_forgotten_below_an_id(
    store: &mut dyn Storage,
) {
    let key = |key: &str, destination: &str, message_id, at_ms| IdempotencyKey {
        key: key.to_owned(),
        destination: destination.to_owned(),
        message_id,
        at_ms,
    };
    let longest = "k".repeat(stomp_rooms::room::MAX_IDEMPOTENCY_KEY_BYTES);
    commit(
        store,
        &[
            Write::IdempotencyKey(key("b", "/queue/q", 3, 1_500)),
            Write::IdempotencyKey(key("a", "/topic/a", 2, 1_000)),
            Write::IdempotencyKey(key(&longest, "/user/s1/inbox", 4, 2_000)),
        ],
    );
    assert_eq!(
        load(store).idempotency_keys,
        [
            key("a", "/topic/a", 2, 1_000),
            key("b", "/queue/q", 3, 1_500),
            key(&longest, "/user/s1/inbox", 4, 2_000),
        ],
        "by message id"
    );
    // A key used again (its window over) names its new message.
    commit(
        store,
        &[Write::IdempotencyKey(key("a", "/topic/b", 7, 9_000))],
    );
    commit(store, &[Write::ForgetIdempotencyKeys { below_id: 4 }]);
    assert_eq!(
        load(store).idempotency_keys,
        [
            key(&longest, "/user/s1/inbox", 4, 2_000),
            key("a", "/topic/b", 7, 9_000),
        ]
    );
    commit(store, &[Write::ForgetIdempotencyKeys { below_id: 8 }]);
    assert_eq!(load(store).idempotency_keys, []);
}

fn a_commit_with_a_row_over_the_limit_changes_nothing(store: &mut dyn Storage) {
    commit(
        store,
        &[
            Write::Counter(Counter::Wakes, 1),
            Write::Archive(message(1, "/topic/a", "kept")),
            Write::Enqueue(message(2, "/queue/q", "kept")),
        ],
    );
    let before = load(store);
    let over = Message {
        body: vec![b'x'; PLATFORM_ROW_BYTES as usize],
        ..message(5, "/topic/a", "")
    };
    let refused = store.commit(&[
        Write::Counter(Counter::Wakes, 2),
        Write::Archive(message(3, "/topic/a", "small")),
        Write::Dequeue { message_id: 2 },
        Write::PartialAppend {
            conn: 1,
            bytes: b"SEND".to_vec(),
        },
        Write::Archive(over),
    ]);
    let error = refused.expect_err("a row over the platform's limit is refused");
    assert!(error.0.contains("too big"), "{error}");
    assert_eq!(load(store), before, "nothing of the commit stays");
    assert_eq!(read(store, "/topic/a", all(ReadFrom::Oldest)), [1]);
    // Storage goes on: the next commit is applied.
    commit(store, &[Write::Archive(message(3, "/topic/a", "small"))]);
    assert_eq!(read(store, "/topic/a", all(ReadFrom::Oldest)), [1, 3]);
}

fn writes_apply_in_order_within_one_commit(store: &mut dyn Storage) {
    let first = message(1, "/topic/a", "first");
    let second = message(2, "/topic/a", "second");
    commit(
        store,
        &[
            Write::Archive(first.clone()),
            Write::Archive(second.clone()),
            Write::TrimHistory {
                destination: "/topic/a".to_owned(),
                keep_rows: 1,
                keep_bytes: u64::MAX,
            },
            Write::Archive(message(3, "/topic/b", "other")),
            Write::DropHistory {
                destination: "/topic/b".to_owned(),
            },
            Write::Enqueue(message(4, "/queue/q", "gone")),
            Write::Requeue {
                message_id: 4,
                avoid: None,
            },
            Write::Dequeue { message_id: 4 },
            Write::PartialAppend {
                conn: 1,
                bytes: b"old".to_vec(),
            },
            Write::PartialReset {
                conn: 1,
                bytes: b"new".to_vec(),
            },
            Write::Counter(Counter::LastConn, 1),
            Write::Counter(Counter::LastConn, 2),
        ],
    );
    let stored = load(store);
    assert_eq!(
        stored.history,
        [("/topic/a".to_owned(), usage_of(&[&second]))]
    );
    assert_eq!(stored.queued, []);
    assert_eq!(stored.partials[0].bytes, b"new");
    assert_eq!(stored.partials[0].pieces, 1);
    assert_eq!(stored.counter(Counter::LastConn), 2);
    assert_eq!(
        stored.newest_message_id, 2,
        "what was dropped or dequeued counts no more"
    );
}

fn webhook_events_members_and_room_round_trip_until_forgotten(store: &mut dyn Storage) {
    let row = |seq: u64| WebhookRow {
        seq,
        at_ms: 1_000 + seq,
        json: format!(r#"{{"id":"lobby.{seq}","data":{{"body":"é 🎉 \"quoted\""}}}}"#),
    };
    commit(
        store,
        &[
            Write::WebhookEvent(row(1)),
            Write::WebhookEvent(row(2)),
            Write::WebhookEvent(row(3)),
            Write::Counter(Counter::WebhookLastEvent, 3),
            Write::WebhookMember {
                conn: 4,
                data: r#"{"session":"s4"}"#.into(),
            },
            Write::WebhookMember {
                conn: 2,
                data: r#"{"session":"s2"}"#.into(),
            },
            Write::WebhookRoom("lobby".into()),
        ],
    );
    let stored = load(store);
    assert_eq!(stored.webhook_events, vec![row(1), row(2), row(3)]);
    assert_eq!(stored.counter(Counter::WebhookLastEvent), 3);
    assert_eq!(
        stored.webhook_members,
        vec![
            (2, r#"{"session":"s2"}"#.to_owned()),
            (4, r#"{"session":"s4"}"#.to_owned())
        ]
    );
    assert_eq!(stored.webhook_room.as_deref(), Some("lobby"));
    commit(
        store,
        &[
            Write::WebhookForget { through: 2 },
            Write::WebhookMemberGone { conn: 2 },
            Write::WebhookRoom("lobby-2".into()),
        ],
    );
    let stored = load(store);
    assert_eq!(
        stored.webhook_events,
        vec![row(3)],
        "delivered or dropped: gone"
    );
    assert_eq!(
        stored.webhook_members,
        vec![(4, r#"{"session":"s4"}"#.to_owned())]
    );
    assert_eq!(stored.webhook_room.as_deref(), Some("lobby-2"), "one name");
}

fn gateway_members_round_trip_by_connection_until_gone(store: &mut dyn Storage) {
    let member = |conn: u64, gateway: &str, member: u64, session: &str| StoredMember {
        conn,
        gateway: gateway.to_owned(),
        member,
        session: session.to_owned(),
    };
    commit(
        store,
        &[
            Write::Member(member(9, "shard:lobby:1", 3, r#"{"conn":9}"#)),
            Write::Member(member(
                4,
                "endpoint:ws-stomp:0",
                1 << 40,
                r#"{"conn":4,"é":"🎉"}"#,
            )),
            Write::Member(member(9, "shard:lobby:1", 3, r#"{"conn":9,"subs":[]}"#)),
        ],
    );
    assert_eq!(
        load(store).members,
        vec![
            member(4, "endpoint:ws-stomp:0", 1 << 40, r#"{"conn":4,"é":"🎉"}"#),
            member(9, "shard:lobby:1", 3, r#"{"conn":9,"subs":[]}"#),
        ],
        "by connection, the latest session of each"
    );
    commit(store, &[Write::MemberGone { conn: 4 }]);
    assert_eq!(
        load(store).members,
        vec![member(9, "shard:lobby:1", 3, r#"{"conn":9,"subs":[]}"#)]
    );
}
