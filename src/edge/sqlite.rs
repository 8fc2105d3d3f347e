//! The room's [`Storage`] in the Durable Object's SQLite database.
//!
//! | table | holds |
//! | --- | --- |
//! | `meta` | counters (see [`Counter`]) and the schema version |
//! | `history` | the last messages of each `/topic/` destination, each with its row's size |
//! | `history_summary` | per destination: how many messages its history holds, and their bytes |
//! | `queued` | `/queue/` messages not yet delivered and acknowledged, with redelivery state |
//! | `queue_cursor` | each queue's round-robin position |
//! | `staged` | frames of open transactions, as records |
//! | `partial_piece` | the pieces of a frame that has only partly arrived on a socket |
//! | `address_rate` | client addresses' places against the publish rate over HTTP |
//!
//! Rows are laid out by the room ([`record`]): headers length-prefixed, nothing escaped, so a
//! row is exactly as large as the room counted it before writing it. This module decodes no
//! STOMP.
//!
//! An event's writes run inside one `transactionSync`: if any statement fails, SQLite rolls all
//! of them back. Writes are durable before any output the object sends after them (the
//! output gate), which is why the room sends its fan-out before it commits.

use wasm_bindgen::{closure::Closure, prelude::wasm_bindgen, JsCast, JsValue};
use worker::{js_sys, SqlStorage, SqlStorageValue};

use crate::room::record::{self, ROW_OVERHEAD};
use crate::room::{
    Counter, HistoryRead, HistoryUsage, PartialFrame, QueuedMessage, ReadFrom, StagedFrame,
    Storage, StorageError, Stored, Throttle, Write,
};
use crate::stomp::Message;

/// The schema this code writes; older databases are migrated when the room wakes.
const SCHEMA_VERSION: u64 = 4;

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

/// Version 4: history rows carry their size (indexed with the destination, so a read and a trim
/// find what fits without loading a body), a summary per destination for the wake, records for
/// staged frames (older, escaped frames belonged to sockets a deploy closed: dropped), partial
/// frames in pieces appended as they arrive, and the address rate's frame bucket.
fn schema_v4() -> String {
    format!(
        "
ALTER TABLE history ADD COLUMN size INTEGER;
UPDATE history SET size = length(CAST(destination AS BLOB)) + length(CAST(headers AS BLOB))
    + length(CAST(body AS BLOB)) + {ROW_OVERHEAD};
DROP INDEX IF EXISTS history_by_destination;
CREATE INDEX IF NOT EXISTS history_sizes ON history (destination, id, size);
CREATE TABLE IF NOT EXISTS history_summary (
    destination TEXT PRIMARY KEY, rows INTEGER NOT NULL, bytes INTEGER NOT NULL,
    newest INTEGER NOT NULL);
INSERT OR REPLACE INTO history_summary (destination, rows, bytes, newest)
    SELECT destination, count(*), sum(size), max(id) FROM history GROUP BY destination;
DELETE FROM staged;
DROP TABLE IF EXISTS partial;
CREATE TABLE IF NOT EXISTS partial_piece (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, conn INTEGER NOT NULL, bytes BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS partial_by_conn ON partial_piece (conn, seq);
ALTER TABLE address_rate ADD COLUMN frames_us INTEGER NOT NULL DEFAULT 0;
"
    )
}

const SCHEMA_KEY: &str = "schema";

/// Recounts a destination's history summary (after its archives and trims, in the same
/// transaction).
const SUMMARIZE: &str = "INSERT OR REPLACE INTO history_summary (destination, rows, bytes, newest)
    SELECT ?1, count(*), coalesce(sum(size), 0), coalesce(max(id), 0) FROM history
    WHERE destination = ?1";

/// Forgets the summary of a destination whose history is gone (it gave way to another's).
const FORGET_EMPTY_SUMMARY: &str =
    "DELETE FROM history_summary WHERE destination = ?1 AND rows = 0";

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

type Statement = (std::borrow::Cow<'static, str>, Vec<SqlStorageValue>);

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
        let mut statements: Vec<Statement> = vec![(SCHEMA_V1.into(), vec![])];
        if from < 2 {
            statements.push((SCHEMA_V2.into(), vec![]));
        }
        if from < 3 {
            statements.push((SCHEMA_V3.into(), vec![]));
        }
        if from < 4 {
            statements.push((schema_v4().into(), vec![]));
        }
        statements.push((
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value".into(),
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
                    .exec(&query, bindings)
                    .map_err(|error| StorageError(error.to_string()))?;
            }
            return Ok(());
        }
        let sql = self.sql.clone();
        let callback = Closure::once(move || -> Result<(), JsValue> {
            for (query, bindings) in statements {
                sql.exec(&query, bindings)
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
                        record: bytes.clone(),
                        binary: integer(binary) != 0,
                    })
                }
                _ => None,
            })
            .collect();
        let address_rates = self
            .rows(
                "SELECT address, messages_us, frames_us, bytes_us FROM address_rate",
                vec![],
            )?
            .iter()
            .filter_map(|row| match row.as_slice() {
                [SqlStorageValue::String(address), messages, frames, bytes] => Some((
                    address.clone(),
                    Throttle {
                        messages_us: integer(messages),
                        frames_us: integer(frames),
                        bytes_us: integer(bytes),
                    },
                )),
                _ => None,
            })
            .collect();
        let mut partials: Vec<PartialFrame> = Vec::new();
        for row in self.rows(
            "SELECT conn, bytes FROM partial_piece ORDER BY conn, seq",
            vec![],
        )? {
            if let [conn, SqlStorageValue::Blob(bytes)] = row.as_slice() {
                match partials.last_mut() {
                    Some(frame) if frame.conn == integer(conn) => {
                        frame.bytes.extend(bytes);
                        frame.pieces += 1;
                    }
                    _ => partials.push(PartialFrame {
                        conn: integer(conn),
                        bytes: bytes.clone(),
                        pieces: 1,
                    }),
                }
            }
        }
        let history = self
            .rows(
                "SELECT destination, rows, bytes, newest FROM history_summary WHERE rows > 0",
                vec![],
            )?
            .iter()
            .filter_map(|row| match row.as_slice() {
                [SqlStorageValue::String(destination), summary @ ..] => {
                    Some((destination.clone(), history_usage_of(summary)?))
                }
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
            history,
        })
    }

    fn history(&self, destination: &str, read: HistoryRead) -> Result<Vec<Message>, StorageError> {
        // The ids that fit are found in the (destination, id, size) index alone; only their
        // rows are loaded.
        let query = match read.from {
            ReadFrom::Newest => {
                "SELECT id, destination, headers, body, is_binary FROM history WHERE id IN (
                     SELECT id FROM (
                         SELECT id, sum(size) OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS acc
                         FROM history WHERE destination = ?1 AND id > ?2 ORDER BY id DESC LIMIT ?3)
                     WHERE acc <= ?4)
                 ORDER BY id"
            }
            ReadFrom::Oldest => {
                "SELECT id, destination, headers, body, is_binary FROM history WHERE id IN (
                     SELECT id FROM (
                         SELECT id, sum(size) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS acc
                         FROM history WHERE destination = ?1 AND id > ?2 ORDER BY id LIMIT ?3)
                     WHERE acc <= ?4)
                 ORDER BY id"
            }
        };
        self.messages(
            query,
            vec![
                destination.into(),
                int(read.after),
                int(u64::from(read.count)),
                int(read.max_bytes),
            ],
        )
    }

    fn history_count(&self, destination: &str, after: u64) -> Result<u32, StorageError> {
        let rows = self.rows(
            "SELECT count(*) FROM history WHERE destination = ? AND id > ?",
            vec![destination.into(), int(after)],
        )?;
        let count = rows.first().and_then(|row| row.first()).map_or(0, integer);
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    fn history_usage(&self, destination: &str) -> Result<HistoryUsage, StorageError> {
        let rows = self.rows(
            "SELECT rows, bytes, newest FROM history_summary WHERE destination = ?",
            vec![destination.into()],
        )?;
        Ok(rows
            .first()
            .and_then(|summary| history_usage_of(summary))
            .unwrap_or_default())
    }

    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        let mut statements = Vec::with_capacity(writes.len() + 1);
        let mut summarized: Vec<&str> = Vec::new();
        for write in writes {
            statements.extend(statements_of(write));
            if let Write::Archive(Message { destination, .. })
            | Write::TrimHistory { destination, .. }
            | Write::DropHistory { destination } = write
            {
                if !summarized.contains(&destination.as_str()) {
                    summarized.push(destination);
                }
            }
        }
        for destination in summarized {
            statements.push((SUMMARIZE.into(), vec![destination.into()]));
            statements.push((FORGET_EMPTY_SUMMARY.into(), vec![destination.into()]));
        }
        self.in_transaction(statements)
    }
}

/// The SQL for one write.
fn statements_of(write: &Write) -> Vec<Statement> {
    let one = |query: &'static str, bindings: Vec<SqlStorageValue>| vec![(query.into(), bindings)];
    match write {
        Write::Counter(counter, value) => one(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![counter.key().into(), int(*value)],
        ),
        Write::Archive(message) => one(
            "INSERT OR REPLACE INTO history (id, destination, headers, body, is_binary, size) VALUES (?, ?, ?, ?, ?, ?)",
            [message_values(message), vec![int(record::message_row_bytes(message))]].concat(),
        ),
        // Keeps the newest `keep_rows` within `keep_bytes`, and always the newest.
        Write::TrimHistory {
            destination,
            keep_rows,
            keep_bytes,
        } => one(
            "DELETE FROM history WHERE destination = ?1 AND id IN (
                 SELECT id FROM (
                     SELECT id, row_number() OVER (ORDER BY id DESC) AS newer_rows,
                            sum(size) OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS newer_bytes
                     FROM history WHERE destination = ?1)
                 WHERE newer_rows > 1 AND (newer_rows > ?2 OR newer_bytes > ?3))",
            vec![
                destination.as_str().into(),
                int(u64::from(*keep_rows)),
                int(*keep_bytes),
            ],
        ),
        Write::DropHistory { destination } => one(
            "DELETE FROM history WHERE destination = ?",
            vec![destination.as_str().into()],
        ),
        Write::Enqueue(message) => one(
            "INSERT OR REPLACE INTO queued (id, destination, headers, body, is_binary) VALUES (?, ?, ?, ?, ?)",
            message_values(message),
        ),
        Write::Requeue { message_id, avoid } => one(
            "UPDATE queued SET redelivered = 1, avoid_conn = ?, avoid_handle = ? WHERE id = ?",
            vec![
                avoid.map_or(SqlStorageValue::Null, |(conn, _)| int(conn)),
                avoid.map_or(SqlStorageValue::Null, |(_, handle)| int(u64::from(handle))),
                int(*message_id),
            ],
        ),
        Write::Dequeue { message_id } => {
            one("DELETE FROM queued WHERE id = ?", vec![int(*message_id)])
        }
        Write::QueueCursor {
            destination,
            next: 0,
        } => one(
            "DELETE FROM queue_cursor WHERE destination = ?",
            vec![destination.as_str().into()],
        ),
        Write::QueueCursor { destination, next } => one(
            "INSERT INTO queue_cursor (destination, next) VALUES (?, ?) ON CONFLICT (destination) DO UPDATE SET next = excluded.next",
            vec![destination.as_str().into(), int(*next)],
        ),
        Write::Stage {
            conn,
            transaction,
            record,
            binary,
        } => one(
            "INSERT INTO staged (conn, tx, frame, is_binary) VALUES (?, ?, ?, ?)",
            vec![
                int(*conn),
                transaction.as_str().into(),
                SqlStorageValue::Blob(record.clone()),
                i64::from(*binary).into(),
            ],
        ),
        Write::Unstage { conn, transaction } => one(
            "DELETE FROM staged WHERE conn = ? AND tx = ?",
            vec![int(*conn), transaction.as_str().into()],
        ),
        Write::PartialAppend { conn, bytes } => one(
            "INSERT INTO partial_piece (conn, bytes) VALUES (?, ?)",
            vec![int(*conn), SqlStorageValue::Blob(bytes.clone())],
        ),
        Write::PartialReset { conn, bytes } => {
            let mut statements = one(
                "DELETE FROM partial_piece WHERE conn = ?",
                vec![int(*conn)],
            );
            if !bytes.is_empty() {
                statements.extend(statements_of(&Write::PartialAppend {
                    conn: *conn,
                    bytes: bytes.clone(),
                }));
            }
            statements
        }
        Write::AddressRate { address, throttle } => one(
            "INSERT OR REPLACE INTO address_rate (address, messages_us, frames_us, bytes_us) VALUES (?, ?, ?, ?)",
            vec![
                address.as_str().into(),
                int(throttle.messages_us),
                int(throttle.frames_us),
                int(throttle.bytes_us),
            ],
        ),
        Write::ForgetFullAddressRates { now_us } => one(
            "DELETE FROM address_rate WHERE messages_us <= ?1 AND frames_us <= ?1 AND bytes_us <= ?1",
            vec![int(*now_us)],
        ),
    }
}

/// Headers as the room lays them out (length-prefixed, unescaped).
fn message_values(message: &Message) -> Vec<SqlStorageValue> {
    vec![
        int(message.id),
        message.destination.as_str().into(),
        SqlStorageValue::Blob(record::encode_headers(&message.headers)),
        SqlStorageValue::Blob(message.body.clone()),
        i64::from(message.binary).into(),
    ]
}

/// A `history_summary` row's `rows, bytes, newest`.
fn history_usage_of(summary: &[SqlStorageValue]) -> Option<HistoryUsage> {
    match summary {
        [rows, bytes, newest] => Some(HistoryUsage {
            rows: u32::try_from(integer(rows)).unwrap_or(u32::MAX),
            bytes: integer(bytes),
            newest: integer(newest),
        }),
        _ => None,
    }
}

fn message_from_row(row: &[SqlStorageValue]) -> Option<Message> {
    match row {
        [id, SqlStorageValue::String(destination), headers, body, binary] => Some(Message {
            id: integer(id),
            destination: destination.clone(),
            headers: match headers {
                SqlStorageValue::Blob(bytes) => record::decode_headers(bytes)?,
                // Rows written before schema 4 hold their headers as JSON.
                SqlStorageValue::String(json) => serde_json::from_str(json).ok()?,
                _ => Vec::new(),
            },
            body: match body {
                SqlStorageValue::Blob(bytes) => bytes.clone(),
                SqlStorageValue::String(text) => text.clone().into_bytes(),
                _ => Vec::new(),
            },
            binary: integer(binary) != 0,
        }),
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
