//! The storage contract at random: the same random commits, kept to the room's promises (a
//! queue message is stored once, and only stored ones are requeued or dequeued), go to the
//! in-memory storage and to the SQL store over SQLite itself; after each, both read back the
//! same, whatever is asked of them.

#[path = "support/sqlite.rs"]
mod sqlite;
#[path = "support/storage.rs"]
mod storage;

use proptest::prelude::*;
use stomp_rooms::room::testing::MemoryStorage;
use stomp_rooms::room::{Counter, HistoryRead, IdempotencyKey, ReadFrom, Storage, Throttle, Write};
use stomp_rooms::stomp::Message;

const TOPICS: [&str; 3] = ["/topic/a", "/topic/b", "/topic/c"];
const QUEUES: [&str; 2] = ["/queue/a", "/queue/b"];

/// A write before the room's promises give it its ids.
#[derive(Debug, Clone)]
enum Step {
    Counter(usize, u64),
    Archive(usize, usize, bool),
    Trim(usize, u32, u64),
    Drop(usize),
    Enqueue(usize, usize),
    /// The `n`th stored queue message (modulo how many there are).
    Requeue(usize, Option<(u64, u32)>),
    Dequeue(usize),
    Cursor(usize, u64),
    Stage(u64, usize, usize, bool),
    Unstage(u64, usize),
    Append(u64, usize),
    Reset(u64, usize),
    Rate(usize, u64, u64, u64),
    ForgetRates(u64),
    /// An idempotency key (of a few) for a fresh message id.
    Key(usize, usize, u64),
    /// Forget the keys below the `n`th id given out.
    ForgetKeys(u64),
}

/// Steps, archives most often: reads and trims need histories of a few messages.
fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..Counter::ALL.len(), 0..1000u64).prop_map(|(c, v)| Step::Counter(c, v)),
        8 => (0..TOPICS.len(), 0..300usize, any::<bool>()).prop_map(|(d, n, b)| Step::Archive(d, n, b)),
        2 => (
            0..TOPICS.len(),
            0..5u32,
            prop_oneof![Just(u64::MAX), 0..2000u64]
        )
            .prop_map(|(d, rows, bytes)| Step::Trim(d, rows, bytes)),
        1 => (0..TOPICS.len()).prop_map(Step::Drop),
        3 => (0..QUEUES.len(), 0..300usize).prop_map(|(q, n)| Step::Enqueue(q, n)),
        1 => (any::<usize>(), proptest::option::of((0..4u64, 0..4u32)))
            .prop_map(|(i, avoid)| Step::Requeue(i, avoid)),
        1 => any::<usize>().prop_map(Step::Dequeue),
        1 => (0..QUEUES.len(), 0..3u64).prop_map(|(q, next)| Step::Cursor(q, next)),
        1 => (0..3u64, 0..2usize, 0..50usize, any::<bool>())
            .prop_map(|(c, t, n, b)| Step::Stage(c, t, n, b)),
        1 => (0..3u64, 0..2usize).prop_map(|(c, t)| Step::Unstage(c, t)),
        1 => (0..3u64, 0..20usize).prop_map(|(c, n)| Step::Append(c, n)),
        1 => (0..3u64, 0..20usize).prop_map(|(c, n)| Step::Reset(c, n)),
        1 => (0..3usize, 0..100u64, 0..100u64, 0..100u64)
            .prop_map(|(a, m, f, b)| Step::Rate(a, m, f, b)),
        1 => (0..100u64).prop_map(Step::ForgetRates),
        2 => (0..4usize, 0..TOPICS.len(), 0..10_000u64).prop_map(|(k, d, at)| Step::Key(k, d, at)),
        1 => (0..40u64).prop_map(Step::ForgetKeys),
    ]
}

/// Gives the steps their writes: fresh ids, and queue messages that are stored.
#[derive(Default)]
struct Promises {
    next_id: u64,
    queued: Vec<u64>,
}

impl Promises {
    fn write(&mut self, step: Step) -> Option<Write> {
        let message = |id, destination: &str, bytes: usize, binary| Message {
            id,
            destination: destination.to_owned(),
            headers: vec![("k".to_owned(), "v".repeat(bytes % 7))],
            body: vec![b'x'; bytes],
            binary,
        };
        Some(match step {
            Step::Counter(c, v) => Write::Counter(Counter::ALL[c], v),
            Step::Archive(d, n, b) => {
                self.next_id += 1;
                Write::Archive(message(self.next_id, TOPICS[d], n, b))
            }
            Step::Trim(d, keep_rows, keep_bytes) => Write::TrimHistory {
                destination: TOPICS[d].to_owned(),
                keep_rows,
                keep_bytes,
            },
            Step::Drop(d) => Write::DropHistory {
                destination: TOPICS[d].to_owned(),
            },
            Step::Enqueue(q, n) => {
                self.next_id += 1;
                self.queued.push(self.next_id);
                Write::Enqueue(message(self.next_id, QUEUES[q], n, false))
            }
            Step::Requeue(i, avoid) => Write::Requeue {
                message_id: *self.queued.get(i.checked_rem(self.queued.len())?)?,
                avoid,
            },
            Step::Dequeue(i) => Write::Dequeue {
                message_id: self.queued.remove(i.checked_rem(self.queued.len())?),
            },
            Step::Cursor(q, next) => Write::QueueCursor {
                destination: QUEUES[q].to_owned(),
                next,
            },
            Step::Stage(conn, t, n, binary) => Write::Stage {
                conn,
                transaction: format!("tx{t}"),
                record: vec![1; n],
                binary,
            },
            Step::Unstage(conn, t) => Write::Unstage {
                conn,
                transaction: format!("tx{t}"),
            },
            Step::Append(conn, n) => Write::PartialAppend {
                conn,
                bytes: vec![b'p'; n],
            },
            Step::Reset(conn, n) => Write::PartialReset {
                conn,
                bytes: vec![b'r'; n],
            },
            Step::Rate(a, messages_us, frames_us, bytes_us) => Write::AddressRate {
                address: format!("10.0.0.{a}"),
                throttle: Throttle {
                    messages_us,
                    frames_us,
                    bytes_us,
                },
            },
            Step::ForgetRates(now_us) => Write::ForgetFullAddressRates { now_us },
            Step::Key(k, d, at_ms) => {
                self.next_id += 1;
                Write::IdempotencyKey(IdempotencyKey {
                    key: format!("key-{k}"),
                    destination: TOPICS[d].to_owned(),
                    message_id: self.next_id,
                    at_ms,
                })
            }
            Step::ForgetKeys(below_id) => Write::ForgetIdempotencyKeys { below_id },
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn both_stores_read_back_the_same_after_the_same_commits(
        commits in prop::collection::vec(prop::collection::vec(step(), 1..5), 1..12),
        reads in prop::collection::vec((0..TOPICS.len(), 0..20u64, 0..6u32, 0..3000u64, any::<bool>()), 4),
    ) {
        let mut memory = MemoryStorage::default();
        let mut sql = sqlite::sql_store();
        let mut promises = Promises::default();
        for steps in commits {
            let writes: Vec<Write> = steps.into_iter().filter_map(|s| promises.write(s)).collect();
            memory.commit(&writes).expect("memory commits");
            sql.commit(&writes).expect("SQL commits");
            prop_assert_eq!(storage::sorted_load(&sql), storage::sorted_load(&memory), "after {:?}", writes);
            for &(d, after, count, max_bytes, newest) in &reads {
                let destination = TOPICS[d];
                let read = HistoryRead {
                    after,
                    count,
                    max_bytes,
                    from: if newest { ReadFrom::Newest } else { ReadFrom::Oldest },
                };
                prop_assert_eq!(sql.history(destination, read), memory.history(destination, read), "{:?}", read);
                prop_assert_eq!(sql.history_count(destination, after), memory.history_count(destination, after));
                prop_assert_eq!(sql.history_usage(destination), memory.history_usage(destination));
            }
        }
    }
}
