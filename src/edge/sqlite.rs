//! The room's [`Storage`] in the Durable Object's SQLite database.
//!
//! | table | holds |
//! | --- | --- |
//! | `meta` | counters (see [`Counter`]) and the schema version |
//! | `history` | the last messages of each `/topic/` destination |
//! | `queued` | `/queue/` messages not yet delivered and acknowledged, with redelivery state |
//! | `queue_cursor` | each queue's round-robin position |
//! | `staged` | frames of open transactions |
//! | `partial` | a frame that has only partly arrived on a socket |
//!
//! An event's writes run inside one `transactionSync`: if any statement fails, SQLite rolls all
//! of them back. Writes are durable before any output the object sends after them (the
//! output gate), which is why the room sends its fan-out before it commits.

use wasm_bindgen::{closure::Closure, prelude::wasm_bindgen, JsCast, JsValue};
use worker::{js_sys, SqlStorage, SqlStorageValue};

use crate::room::{
    Counter, QueuedMessage, StagedFrame, Storage, StorageError, Stored, Throttle, Write,
};
use crate::stomp::{Decoded, Decoder, Frame, Limits, Message, Version};

/// The schema this code writes; older databases are migrated when the room wakes.
const SCHEMA_VERSION: u64 = 3;

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, destination TEXT NOT NULL, headers TEXT NOT NULL,
    body BLOB NOT NULL, is_binary INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS history_by_destination ON history (destination, id);
CREATE TABLE IF NOT EXISTS queued (
    id INTEGER PRIMARY KEY, destination TEXT NOT NULL, headers TEXT NOT NULL,
    body BLOB NOT NULL, is_binary INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS staged (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, conn INTEGER NOT NULL, tx TEXT NOT NULL,
    frame BLOB NOT NULL, is_binary INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS partial (conn INTEGER PRIMARY KEY, bytes BLOB NOT NULL);
";

/// Version 2: queue messages keep their redelivery state; queues their round-robin position.
const SCHEMA_V2: &str = "
ALTER TABLE queued ADD COLUMN redelivered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queued ADD COLUMN avoid_conn INTEGER;
ALTER TABLE queued ADD COLUMN avoid_handle INTEGER;
CREATE TABLE IF NOT EXISTS queue_cursor (destination TEXT PRIMARY KEY, next INTEGER NOT NULL);
";

/// Version 3: client addresses' publish rates over HTTP.
const SCHEMA_V3: &str = "
CREATE TABLE IF NOT EXISTS address_rate (
    address TEXT PRIMARY KEY, messages_us INTEGER NOT NULL, bytes_us INTEGER NOT NULL);
";

const SCHEMA_KEY: &str = "schema";

#[wasm_bindgen]
extern "C" {
    /// The Durable Object's storage, typed for the one call workers-rs does not bind.
    type TransactionalStorage;

    /// Runs `callback` in a SQLite transaction: if it throws, every write in it is undone.
    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(
        this: &TransactionalStorage,
        callback: &js_sys::Function,
    ) -> Result<JsValue, JsValue>;
}

pub struct SqliteStore {
    storage: worker::Storage,
    sql: SqlStorage,
}

type Statement = (&'static str, Vec<SqlStorageValue>);

impl SqliteStore {
    /// Opens the room's database, creating or migrating its tables when they are not current
    /// (a read on every other wake, so waking writes nothing).
    pub fn open(storage: worker::Storage) -> Result<Self, StorageError> {
        let store = Self {
            sql: storage.sql(),
            storage,
        };
        let version = store
            .rows(
                "SELECT value FROM meta WHERE key = ?",
                vec![SCHEMA_KEY.into()],
            )
            .ok()
            .and_then(|rows| rows.first().and_then(|row| row.first()).map(integer));
        if version != Some(SCHEMA_VERSION) {
            store.migrate(version.unwrap_or(0))?;
        }
        Ok(store)
    }

    fn migrate(&self, from: u64) -> Result<(), StorageError> {
        // A new database gets version 1's tables here; one from before `schema` was recorded
        // has them already. Either way, each later version adds to them.
        let mut statements: Vec<Statement> = vec![(SCHEMA_V1, vec![])];
        if from < 2 {
            statements.push((SCHEMA_V2, vec![]));
        }
        if from < 3 {
            statements.push((SCHEMA_V3, vec![]));
        }
        statements.push((
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![SCHEMA_KEY.into(), int(SCHEMA_VERSION)],
        ));
        self.in_transaction(statements)
    }

    /// Runs the statements all together or not at all.
    fn in_transaction(&self, mut statements: Vec<Statement>) -> Result<(), StorageError> {
        // One statement is atomic by itself: no savepoint, no closure (most events write one
        // row, and a transaction costs far more than the insert).
        if statements.len() == 1 {
            if let Some((query, bindings)) = statements.pop() {
                self.sql
                    .exec(query, bindings)
                    .map_err(|error| StorageError(error.to_string()))?;
            }
            return Ok(());
        }
        let sql = self.sql.clone();
        let callback = Closure::once(move || -> Result<(), JsValue> {
            for (query, bindings) in statements {
                sql.exec(query, bindings)
                    .map_err(|error| JsValue::from_str(&error.to_string()))?;
            }
            Ok(())
        });
        let storage: &TransactionalStorage = self.storage.as_raw().unchecked_ref();
        storage
            .transaction_sync(callback.as_ref().unchecked_ref())
            .map(|_| ())
            .map_err(|error| {
                StorageError(
                    error
                        .as_string()
                        .or_else(|| {
                            error
                                .dyn_ref::<js_sys::Error>()
                                .map(|e| String::from(e.message()))
                        })
                        .unwrap_or_else(|| format!("{error:?}")),
                )
            })
    }

    /// How many messages storage holds, for the stats endpoint: (history, queued).
    pub fn message_counts(&self) -> Result<(u64, u64), StorageError> {
        let rows = self.rows(
            "SELECT (SELECT count(*) FROM history), (SELECT count(*) FROM queued)",
            vec![],
        )?;
        match rows.first().map(Vec::as_slice) {
            Some([history, queued]) => Ok((integer(history), integer(queued))),
            _ => Ok((0, 0)),
        }
    }

    fn rows(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> Result<Vec<Vec<SqlStorageValue>>, StorageError> {
        let read = || -> worker::Result<Vec<Vec<SqlStorageValue>>> {
            self.sql.exec(query, bindings)?.raw().collect()
        };
        read().map_err(|error| StorageError(error.to_string()))
    }

    fn messages(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> Result<Vec<Message>, StorageError> {
        Ok(self
            .rows(query, bindings)?
            .iter()
            .filter_map(|row| message_from_row(row))
            .collect())
    }
}

impl Storage for SqliteStore {
    fn load(&self) -> Result<Stored, StorageError> {
        let counters = Counter::ALL
            .iter()
            .map(|&counter| {
                let rows = self.rows(
                    "SELECT value FROM meta WHERE key = ?",
                    vec![counter.key().into()],
                )?;
                let value = rows.first().and_then(|row| row.first()).map_or(0, integer);
                Ok((counter, value))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let newest = self.rows(
            "SELECT max((SELECT coalesce(max(id), 0) FROM history), (SELECT coalesce(max(id), 0) FROM queued))",
            vec![],
        )?;
        let queued = self
            .rows(
                "SELECT id, destination, headers, body, is_binary, redelivered, avoid_conn, avoid_handle
                 FROM queued ORDER BY id",
                vec![],
            )?
            .iter()
            .filter_map(|row| {
                let message = message_from_row(row.get(..5)?)?;
                let avoid = match (row.get(6)?, row.get(7)?) {
                    (SqlStorageValue::Integer(conn), SqlStorageValue::Integer(handle)) => Some((
                        u64::try_from(*conn).ok()?,
                        u32::try_from(*handle).ok()?,
                    )),
                    _ => None,
                };
                Some(QueuedMessage {
                    message,
                    redelivered: integer(row.get(5)?) != 0,
                    avoid,
                })
            })
            .collect();
        let cursors = self
            .rows("SELECT destination, next FROM queue_cursor", vec![])?
            .iter()
            .filter_map(|row| match row.as_slice() {
                [SqlStorageValue::String(destination), next] => {
                    Some((destination.clone(), integer(next)))
                }
                _ => None,
            })
            .collect();
        let staged = self
            .rows(
                "SELECT conn, tx, frame, is_binary FROM staged ORDER BY seq",
                vec![],
            )?
            .iter()
            .filter_map(|row| match row.as_slice() {
                [conn, SqlStorageValue::String(transaction), SqlStorageValue::Blob(bytes), binary] => {
                    Some(StagedFrame {
                        conn: integer(conn),
                        transaction: transaction.clone(),
                        frame: decode_staged(bytes)?,
                        binary: integer(binary) != 0,
                    })
                }
                _ => None,
            })
            .collect();
        let address_rates = self
            .rows(
                "SELECT address, messages_us, bytes_us FROM address_rate",
                vec![],
            )?
            .iter()
            .filter_map(|row| match row.as_slice() {
                [SqlStorageValue::String(address), messages, bytes] => Some((
                    address.clone(),
                    Throttle {
                        messages_us: integer(messages),
                        bytes_us: integer(bytes),
                    },
                )),
                _ => None,
            })
            .collect();
        let partials = self
            .rows("SELECT conn, bytes FROM partial", vec![])?
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [conn, SqlStorageValue::Blob(bytes)] => Some((integer(conn), bytes.clone())),
                _ => None,
            })
            .collect();
        Ok(Stored {
            counters,
            newest_message_id: newest
                .first()
                .and_then(|row| row.first())
                .map_or(0, integer),
            queued,
            cursors,
            staged,
            partials,
            address_rates,
        })
    }

    fn history(
        &self,
        destination: &str,
        after: u64,
        newest: u32,
    ) -> Result<Vec<Message>, StorageError> {
        self.messages(
            "SELECT * FROM (SELECT id, destination, headers, body, is_binary FROM history
             WHERE destination = ? AND id > ? ORDER BY id DESC LIMIT ?) ORDER BY id",
            vec![destination.into(), int(after), int(u64::from(newest))],
        )
    }

    fn history_len(&self, destination: &str) -> Result<u32, StorageError> {
        let rows = self.rows(
            "SELECT count(*) FROM history WHERE destination = ?",
            vec![destination.into()],
        )?;
        let count = rows.first().and_then(|row| row.first()).map_or(0, integer);
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        self.in_transaction(writes.iter().map(statement).collect())
    }
}

/// The SQL for one write.
fn statement(write: &Write) -> Statement {
    match write {
        Write::Counter(counter, value) => (
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![counter.key().into(), int(*value)],
        ),
        Write::Archive(message) => (
            "INSERT OR REPLACE INTO history (id, destination, headers, body, is_binary) VALUES (?, ?, ?, ?, ?)",
            message_values(message),
        ),
        // Keeps the newest `keep` (at least one, so the newest id survives trimming).
        Write::TrimHistory { destination, keep } => (
            "DELETE FROM history WHERE destination = ?1 AND id <= (
                 SELECT id FROM history WHERE destination = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            vec![destination.as_str().into(), int(u64::from((*keep).max(1)))],
        ),
        Write::Enqueue(message) => (
            "INSERT OR REPLACE INTO queued (id, destination, headers, body, is_binary) VALUES (?, ?, ?, ?, ?)",
            message_values(message),
        ),
        Write::Requeue { message_id, avoid } => (
            "UPDATE queued SET redelivered = 1, avoid_conn = ?, avoid_handle = ? WHERE id = ?",
            vec![
                avoid.map_or(SqlStorageValue::Null, |(conn, _)| int(conn)),
                avoid.map_or(SqlStorageValue::Null, |(_, handle)| int(u64::from(handle))),
                int(*message_id),
            ],
        ),
        Write::Dequeue { message_id } => ("DELETE FROM queued WHERE id = ?", vec![int(*message_id)]),
        Write::QueueCursor { destination, next: 0 } => (
            "DELETE FROM queue_cursor WHERE destination = ?",
            vec![destination.as_str().into()],
        ),
        Write::QueueCursor { destination, next } => (
            "INSERT INTO queue_cursor (destination, next) VALUES (?, ?) ON CONFLICT (destination) DO UPDATE SET next = excluded.next",
            vec![destination.as_str().into(), int(*next)],
        ),
        Write::Stage {
            conn,
            transaction,
            frame,
            binary,
        } => (
            "INSERT INTO staged (conn, tx, frame, is_binary) VALUES (?, ?, ?, ?)",
            vec![
                int(*conn),
                transaction.as_str().into(),
                SqlStorageValue::Blob(frame.encode(Some(Version::V1_2))),
                i64::from(*binary).into(),
            ],
        ),
        Write::Unstage { conn, transaction } => (
            "DELETE FROM staged WHERE conn = ? AND tx = ?",
            vec![int(*conn), transaction.as_str().into()],
        ),
        Write::Partial { conn, bytes } if bytes.is_empty() => {
            ("DELETE FROM partial WHERE conn = ?", vec![int(*conn)])
        }
        Write::Partial { conn, bytes } => (
            "INSERT OR REPLACE INTO partial (conn, bytes) VALUES (?, ?)",
            vec![int(*conn), SqlStorageValue::Blob(bytes.clone())],
        ),
        Write::AddressRate { address, throttle } => (
            "INSERT OR REPLACE INTO address_rate (address, messages_us, bytes_us) VALUES (?, ?, ?)",
            vec![
                address.as_str().into(),
                int(throttle.messages_us),
                int(throttle.bytes_us),
            ],
        ),
        Write::ForgetFullAddressRates { now_us } => (
            "DELETE FROM address_rate WHERE messages_us <= ?1 AND bytes_us <= ?1",
            vec![int(*now_us)],
        ),
    }
}

fn message_values(message: &Message) -> Vec<SqlStorageValue> {
    let headers = serde_json::to_string(&message.headers).unwrap_or_else(|_| "[]".to_owned());
    vec![
        int(message.id),
        message.destination.as_str().into(),
        headers.into(),
        SqlStorageValue::Blob(message.body.clone()),
        i64::from(message.binary).into(),
    ]
}

fn message_from_row(row: &[SqlStorageValue]) -> Option<Message> {
    match row {
        [id, SqlStorageValue::String(destination), SqlStorageValue::String(headers), body, binary] => {
            Some(Message {
                id: integer(id),
                destination: destination.clone(),
                headers: serde_json::from_str(headers).unwrap_or_default(),
                body: match body {
                    SqlStorageValue::Blob(bytes) => bytes.clone(),
                    SqlStorageValue::String(text) => text.clone().into_bytes(),
                    _ => Vec::new(),
                },
                binary: integer(binary) != 0,
            })
        }
        _ => None,
    }
}

/// A staged frame is stored as STOMP 1.2 bytes, which the room validated when it arrived.
fn decode_staged(bytes: &[u8]) -> Option<Frame> {
    let mut decoder = Decoder::new(Limits {
        max_frame_bytes: usize::MAX,
        ..Limits::default()
    });
    decoder.set_version(Version::V1_2);
    decoder.push(bytes);
    match decoder.next_item() {
        Ok(Some(Decoded::Frame(frame))) => Some(frame),
        _ => None,
    }
}

/// Ids and counters stay far below 2^53, so they are exact as JavaScript numbers.
fn int(value: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

fn integer(value: &SqlStorageValue) -> u64 {
    match value {
        SqlStorageValue::Integer(n) => u64::try_from(*n).unwrap_or(0),
        SqlStorageValue::Float(f) => *f as u64,
        SqlStorageValue::Boolean(b) => u64::from(*b),
        _ => 0,
    }
}
