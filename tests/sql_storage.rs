//! What only the SQL store has: its schema, the migration of databases earlier versions left
//! behind, and when it needs a transaction; run on SQLite itself, with the platform's limits
//! and its JavaScript numbers (see `support/sqlite.rs`). The storage contract both stores keep
//! is in `storage_contract.rs`.

#[path = "support/sqlite.rs"]
mod sqlite;
#[path = "support/storage.rs"]
mod storage;

use sqlite::NativeSql;
use stomp_rooms::room::record::ROW_OVERHEAD;
use stomp_rooms::room::sql::schema::{
    schema_v4, SCHEMA_KEY, SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V6, SCHEMA_V7, SCHEMA_VERSION,
};
use stomp_rooms::room::sql::{SqlDatabase, SqlValue};
use stomp_rooms::room::{
    Counter, HistoryRead, HistoryUsage, QueuedMessage, ReadFrom, Storage, Throttle, Write,
};
use stomp_rooms::stomp::Message;
use storage::message;

fn run(database: &NativeSql, sql: &str, params: Vec<SqlValue>) -> Vec<Vec<SqlValue>> {
    database
        .query(sql, params)
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

fn recorded_version(database: &NativeSql) -> Vec<Vec<SqlValue>> {
    run(
        database,
        "SELECT value FROM meta WHERE key = ?",
        vec![SCHEMA_KEY.into()],
    )
}

fn oldest_first(store: &dyn Storage, destination: &str) -> Vec<Message> {
    let read = HistoryRead {
        after: 0,
        count: u32::MAX,
        max_bytes: u64::MAX,
        from: ReadFrom::Oldest,
    };
    store.history(destination, read).expect("history")
}

#[test]
fn a_new_database_records_the_current_schema() {
    let database = NativeSql::new();
    database.open();
    assert_eq!(
        recorded_version(&database),
        [[SqlValue::Integer(SCHEMA_VERSION as i64)]]
    );
}

#[test]
fn waking_on_a_current_database_writes_nothing() {
    let database = NativeSql::new();
    let mut store = database.open();
    store
        .commit(&[Write::Archive(message(1, "/topic/a", "hello"))])
        .expect("commit");
    let (changes, stored) = (database.changes(), store.load());
    let woken = database.open();
    assert_eq!(database.changes(), changes, "the wake wrote");
    assert_eq!(woken.load(), stored);
}

/// Headers as versions 1 to 3 stored them: JSON.
const JSON_HEADERS: &str = r#"[["content-type","text/plain"],["x-odd","a:b\nc"]]"#;

/// A database as version 1 left it (which recorded no version), with a row of each kind.
fn version_1() -> NativeSql {
    let database = NativeSql::new();
    run(&database, SCHEMA_V1, vec![]);
    let insert_message = |table: &str, id: i64, destination: &str, body: SqlValue, binary| {
        let sql = format!(
            "INSERT INTO {table} (id, destination, headers, body, is_binary) VALUES (?, ?, ?, ?, ?)"
        );
        run(
            &database,
            &sql,
            vec![
                SqlValue::Integer(id),
                destination.into(),
                JSON_HEADERS.into(),
                body,
                SqlValue::Integer(binary),
            ],
        );
    };
    insert_message(
        "history",
        1,
        "/topic/a",
        SqlValue::Blob(b"hello".to_vec()),
        0,
    );
    insert_message("history", 2, "/topic/b", SqlValue::Blob(vec![0, 255]), 1);
    // Some early rows held a text body.
    insert_message("history", 3, "/topic/a", "text body".into(), 0);
    insert_message("queued", 4, "/queue/q", SqlValue::Blob(b"job".to_vec()), 0);
    run(
        &database,
        "INSERT INTO staged (conn, tx, frame, is_binary) VALUES (1, 'tx', 'SEND\\ndestination:/topic/a\\n\\nescaped', 0)",
        vec![],
    );
    run(
        &database,
        "INSERT INTO partial (conn, bytes) VALUES (1, X'53454E44')",
        vec![],
    );
    for (counter, value) in [(Counter::LastMessageId, 4), (Counter::LastConn, 9)] {
        run(
            &database,
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            vec![counter.key().into(), SqlValue::Integer(value)],
        );
    }
    database
}

/// Version 1's database, at version 2: message 4 was redelivered, avoiding (7, 2).
fn version_2() -> NativeSql {
    let database = version_1();
    run(&database, SCHEMA_V2, vec![]);
    run(
        &database,
        "UPDATE queued SET redelivered = 1, avoid_conn = 7, avoid_handle = 2 WHERE id = 4",
        vec![],
    );
    run(
        &database,
        "INSERT INTO queue_cursor (destination, next) VALUES ('/queue/q', 3)",
        vec![],
    );
    record_version(&database, 2);
    database
}

/// Version 2's database, at version 3, with an address's publish rate.
fn version_3() -> NativeSql {
    let database = version_2();
    run(&database, SCHEMA_V3, vec![]);
    run(
        &database,
        "INSERT INTO address_rate (address, messages_us, bytes_us) VALUES ('10.0.0.1', 500, 700)",
        vec![],
    );
    record_version(&database, 3);
    database
}

/// Version 3's database, at version 4 (sizes and summaries), before trims were remembered.
fn version_4() -> NativeSql {
    let database = version_3();
    run(&database, &schema_v4(), vec![]);
    record_version(&database, 4);
    database
}

fn record_version(database: &NativeSql, version: i64) {
    run(
        database,
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        vec![SCHEMA_KEY.into(), SqlValue::Integer(version)],
    );
}

/// A message as versions 1 to 3 stored it, read back.
fn old_message(id: u64, destination: &str, body: &[u8], binary: bool) -> Message {
    Message {
        id,
        destination: destination.to_owned(),
        headers: vec![
            ("content-type".to_owned(), "text/plain".to_owned()),
            ("x-odd".to_owned(), "a:b\nc".to_owned()),
        ],
        body: body.to_vec(),
        binary,
    }
}

/// The size the migration gives a row of an earlier version: its JSON headers as they are.
fn old_row_bytes(destination: &str, body: &[u8]) -> u64 {
    (destination.len() + JSON_HEADERS.len() + body.len()) as u64 + ROW_OVERHEAD
}

/// What every earlier version's database holds after the migration, whatever the version.
fn assert_migrated_history_and_counters(database: &NativeSql) {
    let store = database.open();
    assert_eq!(
        recorded_version(database),
        [[SqlValue::Integer(SCHEMA_VERSION as i64)]]
    );
    assert_eq!(
        oldest_first(&store, "/topic/a"),
        [
            old_message(1, "/topic/a", b"hello", false),
            old_message(3, "/topic/a", b"text body", false)
        ]
    );
    assert_eq!(
        oldest_first(&store, "/topic/b"),
        [old_message(2, "/topic/b", &[0, 255], true)]
    );
    let usage_of_a = HistoryUsage {
        rows: 2,
        bytes: old_row_bytes("/topic/a", b"hello") + old_row_bytes("/topic/a", b"text body"),
        newest: 3,
    };
    assert_eq!(store.history_usage("/topic/a"), Ok(usage_of_a));
    let stored = storage::sorted_load(&store);
    assert_eq!(stored.history[0], ("/topic/a".to_owned(), usage_of_a));
    assert_eq!(stored.history[1].1.rows, 1);
    assert_eq!(stored.counter(Counter::LastMessageId), 4);
    assert_eq!(stored.counter(Counter::LastConn), 9);
    assert_eq!(stored.newest_message_id, 4);
    assert_eq!(
        stored.staged,
        [],
        "escaped frames of closed sockets are dropped"
    );
    assert_eq!(
        stored.partials,
        [],
        "so are partial frames of the old layout"
    );
}

#[test]
fn a_version_1_database_is_migrated() {
    let database = version_1();
    assert_eq!(recorded_version(&database), Vec::<Vec<SqlValue>>::new());
    assert_migrated_history_and_counters(&database);
    let stored = database.open().load().expect("load");
    let queued = QueuedMessage {
        message: old_message(4, "/queue/q", b"job", false),
        redelivered: false,
        avoid: None,
    };
    assert_eq!(stored.queued, [queued]);
    assert_eq!(stored.cursors, []);
    assert_eq!(stored.address_rates, []);
}

#[test]
fn a_version_2_database_is_migrated() {
    let database = version_2();
    assert_migrated_history_and_counters(&database);
    let stored = database.open().load().expect("load");
    let queued = QueuedMessage {
        message: old_message(4, "/queue/q", b"job", false),
        redelivered: true,
        avoid: Some((7, 2)),
    };
    assert_eq!(stored.queued, [queued]);
    assert_eq!(stored.cursors, [("/queue/q".to_owned(), 3)]);
}

#[test]
fn a_version_3_database_is_migrated() {
    let database = version_3();
    assert_migrated_history_and_counters(&database);
    let stored = database.open().load().expect("load");
    let throttle = Throttle {
        messages_us: 500,
        frames_us: 0,
        bytes_us: 700,
    };
    assert_eq!(stored.address_rates, [("10.0.0.1".to_owned(), throttle)]);
}

/// An idempotency key, to store and read back.
fn a_key() -> stomp_rooms::room::IdempotencyKey {
    stomp_rooms::room::IdempotencyKey {
        key: "k".to_owned(),
        destination: "/topic/a".to_owned(),
        message_id: 5,
        at_ms: 1_000,
    }
}

#[test]
fn a_version_4_database_is_migrated_and_keeps_idempotency_keys() {
    let database = version_3();
    run(&database, &schema_v4(), vec![]);
    record_version(&database, 4);
    assert_migrated_history_and_counters(&database);
    let mut store = database.open();
    let key = a_key();
    store
        .commit(&[Write::IdempotencyKey(key.clone())])
        .expect("commit");
    assert_eq!(store.load().expect("load").idempotency_keys, [key]);
}

#[test]
fn a_version_4_database_is_migrated_knowing_of_no_trim_before_it() {
    let database = version_4();
    assert_migrated_history_and_counters(&database);
    let mut store = database.open();
    assert_eq!(store.history_lost("/topic/a"), Ok(0));
    store
        .commit(&[Write::TrimHistory {
            destination: "/topic/a".to_owned(),
            keep_rows: 1,
            keep_bytes: u64::MAX,
        }])
        .expect("commit");
    assert_eq!(
        store.history_lost("/topic/a"),
        Ok(1),
        "trims from now on are"
    );
    assert_eq!(store.history_lost("/topic/b"), Ok(0));
}

/// A database a build from before the merge left at version 6 (version 6's trim marks, but
/// neither version 5's idempotency keys nor version 7's webhooks) wakes with both, and keeps
/// the keys committed to it across the next wake.
#[test]
fn a_version_6_database_without_the_idempotency_table_wakes_and_keeps_keys() {
    let database = version_4();
    run(&database, SCHEMA_V6, vec![]);
    record_version(&database, 6);
    let tables = |database: &NativeSql| {
        run(
            database,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN \
             ('idempotency_key', 'webhook_outbox') ORDER BY name",
            vec![],
        )
    };
    assert!(tables(&database).is_empty());
    assert_migrated_history_and_counters(&database);
    let mut store = database.open();
    assert_eq!(tables(&database).len(), 2);
    let key = a_key();
    store
        .commit(&[Write::IdempotencyKey(key.clone())])
        .expect("commit");
    let woken = database.open();
    assert_eq!(woken.load().expect("load").idempotency_keys, [key]);
    assert_eq!(
        recorded_version(&database),
        [[SqlValue::Integer(SCHEMA_VERSION as i64)]]
    );
}

/// A database the webhooks branch left at version 5 (its tables, but neither the idempotency
/// keys another branch numbered 5 nor version 6's trim marks) wakes with both.
#[test]
fn a_version_5_database_of_webhooks_alone_wakes_with_keys_and_trim_marks() {
    let database = version_4();
    run(&database, SCHEMA_V7, vec![]);
    record_version(&database, 5);
    assert_migrated_history_and_counters(&database);
    let mut store = database.open();
    let key = a_key();
    store
        .commit(&[
            Write::IdempotencyKey(key.clone()),
            Write::TrimHistory {
                destination: "/topic/a".to_owned(),
                keep_rows: 1,
                keep_bytes: u64::MAX,
            },
        ])
        .expect("commit");
    let woken = database.open();
    assert_eq!(woken.load().expect("load").idempotency_keys, [key]);
    assert_eq!(woken.history_lost("/topic/a"), Ok(1));
}

#[test]
fn a_migrated_history_takes_new_messages_and_is_trimmed_by_its_sizes() {
    let database = version_1();
    let mut store = database.open();
    let new = message(5, "/topic/a", "new");
    store
        .commit(&[
            Write::Archive(new.clone()),
            Write::TrimHistory {
                destination: "/topic/a".to_owned(),
                keep_rows: 2,
                keep_bytes: u64::MAX,
            },
        ])
        .expect("commit");
    assert_eq!(
        oldest_first(&store, "/topic/a"),
        [old_message(3, "/topic/a", b"text body", false), new.clone()]
    );
    let usage = HistoryUsage {
        rows: 2,
        bytes: old_row_bytes("/topic/a", b"text body")
            + stomp_rooms::room::record::message_row_bytes(&new),
        newest: 5,
    };
    assert_eq!(store.history_usage("/topic/a"), Ok(usage));
    assert_eq!(store.history_lost("/topic/a"), Ok(1));
}

#[test]
fn message_counts_count_history_and_queues() {
    let database = NativeSql::new();
    let mut store = database.open();
    assert_eq!(store.message_counts(), Ok((0, 0)));
    store
        .commit(&[
            Write::Archive(message(1, "/topic/a", "one")),
            Write::Archive(message(2, "/topic/b", "two")),
            Write::Enqueue(message(3, "/queue/q", "three")),
        ])
        .expect("commit");
    assert_eq!(store.message_counts(), Ok((2, 1)));
}

#[test]
fn a_commit_of_one_statement_needs_no_transaction() {
    let database = NativeSql::new();
    let mut store = database.open();
    let begun = database.transactions();
    let counter = |value| Write::Counter(Counter::Wakes, value);
    store.commit(&[counter(1)]).expect("commit");
    assert_eq!(
        database.transactions(),
        begun,
        "one statement is atomic by itself"
    );
    store.commit(&[counter(2), counter(3)]).expect("commit");
    assert_eq!(database.transactions(), begun + 1);
    // An archive is two statements more: the destination's summary is recounted with it.
    store
        .commit(&[Write::Archive(message(1, "/topic/a", "one"))])
        .expect("commit");
    assert_eq!(database.transactions(), begun + 2);
}

/// A group commit of 33 archives (over two destinations, a queued message among them) is
/// three INSERTs of history rows, within the platform's 100 parameters each, not 33: each
/// statement is a call across to the runtime. Every row is kept, in order.
#[test]
fn a_group_commit_inserts_its_archives_sixteen_rows_to_a_statement() {
    let database = NativeSql::new();
    let mut store = database.open();
    let destination = |id: u64| if id % 2 == 0 { "/topic/a" } else { "/topic/b" };
    let mut writes: Vec<Write> = (1..=20)
        .map(|id| Write::Archive(message(id, destination(id), &format!("m{id}"))))
        .collect();
    writes.push(Write::Enqueue(message(21, "/queue/q", "queued")));
    writes.extend(
        (22..=34).map(|id| Write::Archive(message(id, destination(id), &format!("m{id}")))),
    );
    let before = database.statements();
    store.commit(&writes).expect("commit");
    // 16 + 4 archives, the enqueue, 13 archives; then each destination's summary (2 each).
    assert_eq!(database.statements() - before, 3 + 1 + 4);
    for name in ["/topic/a", "/topic/b"] {
        let ids: Vec<u64> = oldest_first(&store, name).iter().map(|m| m.id).collect();
        let expected: Vec<u64> = (1..=34)
            .filter(|&id| id != 21 && destination(id) == name)
            .collect();
        assert_eq!(ids, expected, "{name}");
        let bodies: Vec<Vec<u8>> = oldest_first(&store, name)
            .into_iter()
            .map(|m| m.body)
            .collect();
        let written: Vec<Vec<u8>> = expected
            .iter()
            .map(|id| format!("m{id}").into_bytes())
            .collect();
        assert_eq!(bodies, written, "{name}");
    }
    assert_eq!(store.message_counts(), Ok((33, 1)));
}

/// The native database refuses what the platform's does, so the store is not tested on SQL
/// the Durable Object would refuse.
#[test]
fn sql_may_not_begin_transactions_or_run_pragmas() {
    let database = NativeSql::new();
    for sql in ["BEGIN", "SAVEPOINT s", "PRAGMA user_version = 1"] {
        assert!(database.query(sql, vec![]).is_err(), "{sql} was run");
    }
    assert!(
        database.query("SELECT ?", vec![]).is_err(),
        "a statement short of a parameter"
    );
}

/// Numbers cross as JavaScript numbers: exact up to 2^53, then rounded and read as floats.
#[test]
fn integers_are_exact_up_to_2_to_the_53() {
    let database = NativeSql::new();
    let safe = sqlite::MAX_SAFE_INTEGER;
    let rows = run(
        &database,
        "SELECT ?, ? + 2",
        vec![SqlValue::Integer(safe), SqlValue::Integer(safe)],
    );
    assert_eq!(
        rows,
        [[SqlValue::Integer(safe), SqlValue::Real((safe + 2) as f64)]]
    );
}
