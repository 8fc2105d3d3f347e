//! The room's SQLite storage: everything that must outlive the object's memory and does not
//! belong to one socket's attachment.
//!
//! | table | holds |
//! | --- | --- |
//! | `meta` | counters: last message id, next connection id, wakes |
//! | `history` | the last `history_limit` messages of each `/topic/` destination |
//! | `queued` | `/queue/` messages not yet delivered and acknowledged |
//! | `staged` | frames of open transactions |
//! | `partial` | a frame that has only partly arrived on a socket |
//!
//! SQLite calls in a Durable Object are synchronous and their writes are durable before the
//! object's next output leaves it, so a RECEIPT sent after a write is sent after the write.

use worker::{SqlStorage, SqlStorageValue};

use crate::stomp::{ConnId, Decoded, Decoder, Frame, Limits, Message, ReplayRequest, Version};

const SCHEMA: &str = "
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

pub struct Store {
    sql: SqlStorage,
}

/// A frame staged in an open transaction, as stored.
pub struct StagedFrame {
    pub conn: ConnId,
    pub transaction: String,
    pub frame: Frame,
    pub binary: bool,
}

impl Store {
    pub fn open(sql: SqlStorage) -> worker::Result<Self> {
        sql.exec(SCHEMA, None)?;
        Ok(Self { sql })
    }

    // ---- counters ----------------------------------------------------------------------

    pub fn counter(&self, key: &str) -> worker::Result<u64> {
        let rows = self.rows("SELECT value FROM meta WHERE key = ?", vec![key.into()])?;
        Ok(rows
            .first()
            .and_then(|row| row.first())
            .map(integer)
            .unwrap_or(0))
    }

    pub fn set_counter(&self, key: &str, value: u64) -> worker::Result<()> {
        self.sql.exec(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![key.into(), int(value)],
        )?;
        Ok(())
    }

    /// Adds one to a counter and returns the new value.
    pub fn bump(&self, key: &str) -> worker::Result<u64> {
        let value = self.counter(key)? + 1;
        self.set_counter(key, value)?;
        Ok(value)
    }

    // ---- messages ----------------------------------------------------------------------

    /// Appends a topic message to its destination's history.
    pub fn archive(&self, message: &Message) -> worker::Result<()> {
        self.insert_message("history", message)
    }

    /// Deletes all but the newest `limit` messages of a destination (always keeping the newest,
    /// so the highest archived id survives trimming).
    pub fn trim_history(&self, destination: &str, limit: u32) -> worker::Result<()> {
        self.sql.exec(
            "DELETE FROM history WHERE destination = ?1 AND id <= (
                 SELECT id FROM history WHERE destination = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            vec![destination.into(), int(u64::from(limit.max(1)))],
        )?;
        Ok(())
    }

    /// The highest message id in the history, which trimming never removes.
    pub fn newest_archived_id(&self) -> worker::Result<u64> {
        let rows = self.rows("SELECT max(id) FROM history", vec![])?;
        Ok(rows
            .first()
            .and_then(|row| row.first())
            .map(integer)
            .unwrap_or(0))
    }

    /// The stored history of a destination that a replay request asks for, oldest first.
    pub fn history(
        &self,
        destination: &str,
        request: ReplayRequest,
    ) -> worker::Result<Vec<Message>> {
        let rows = match request {
            ReplayRequest::Last(n) => self.rows(
                "SELECT * FROM (SELECT id, destination, headers, body, is_binary FROM history
                 WHERE destination = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                vec![destination.into(), int(u64::from(n))],
            )?,
            ReplayRequest::After(after) => self.rows(
                "SELECT id, destination, headers, body, is_binary FROM history
                 WHERE destination = ? AND id > ? ORDER BY id",
                vec![destination.into(), int(after)],
            )?,
        };
        Ok(rows
            .iter()
            .filter_map(|row| message_from_row(row))
            .collect())
    }

    pub fn enqueue(&self, message: &Message) -> worker::Result<()> {
        self.insert_message("queued", message)
    }

    pub fn dequeue(&self, message_id: u64) -> worker::Result<()> {
        self.sql
            .exec("DELETE FROM queued WHERE id = ?", vec![int(message_id)])?;
        Ok(())
    }

    pub fn queued(&self) -> worker::Result<Vec<Message>> {
        let rows = self.rows(
            "SELECT id, destination, headers, body, is_binary FROM queued ORDER BY id",
            vec![],
        )?;
        Ok(rows
            .iter()
            .filter_map(|row| message_from_row(row))
            .collect())
    }

    fn insert_message(&self, table: &str, message: &Message) -> worker::Result<()> {
        let headers = serde_json::to_string(&message.headers).unwrap_or_else(|_| "[]".to_owned());
        self.sql.exec(
            &format!("INSERT OR REPLACE INTO {table} (id, destination, headers, body, is_binary) VALUES (?, ?, ?, ?, ?)"),
            vec![
                int(message.id),
                message.destination.as_str().into(),
                headers.into(),
                SqlStorageValue::Blob(message.body.clone()),
                i64::from(message.binary).into(),
            ],
        )?;
        Ok(())
    }

    // ---- transactions and partial frames -----------------------------------------------

    pub fn stage(
        &self,
        conn: ConnId,
        transaction: &str,
        frame: &Frame,
        binary: bool,
    ) -> worker::Result<()> {
        self.sql.exec(
            "INSERT INTO staged (conn, tx, frame, is_binary) VALUES (?, ?, ?, ?)",
            vec![
                int(conn),
                transaction.into(),
                SqlStorageValue::Blob(frame.encode(Some(Version::V1_2))),
                i64::from(binary).into(),
            ],
        )?;
        Ok(())
    }

    pub fn unstage(&self, conn: ConnId, transaction: &str) -> worker::Result<()> {
        self.sql.exec(
            "DELETE FROM staged WHERE conn = ? AND tx = ?",
            vec![int(conn), transaction.into()],
        )?;
        Ok(())
    }

    pub fn staged(&self) -> worker::Result<Vec<StagedFrame>> {
        let rows = self.rows(
            "SELECT conn, tx, frame, is_binary FROM staged ORDER BY seq",
            vec![],
        )?;
        Ok(rows
            .iter()
            .filter_map(|row| match row.as_slice() {
                [conn, SqlStorageValue::String(transaction), SqlStorageValue::Blob(bytes), binary] => {
                    let mut decoder = Decoder::new(Limits { max_frame_bytes: usize::MAX, ..Limits::default() });
                    decoder.set_version(Version::V1_2);
                    decoder.push(bytes);
                    match decoder.next_item() {
                        Ok(Some(Decoded::Frame(frame))) => Some(StagedFrame {
                            conn: integer(conn),
                            transaction: transaction.clone(),
                            frame,
                            binary: integer(binary) != 0,
                        }),
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect())
    }

    /// Keeps (or, when empty, forgets) the partial frame of a connection.
    pub fn save_partial(&self, conn: ConnId, bytes: &[u8]) -> worker::Result<()> {
        if bytes.is_empty() {
            self.sql
                .exec("DELETE FROM partial WHERE conn = ?", vec![int(conn)])?;
        } else {
            self.sql.exec(
                "INSERT OR REPLACE INTO partial (conn, bytes) VALUES (?, ?)",
                vec![int(conn), SqlStorageValue::Blob(bytes.to_vec())],
            )?;
        }
        Ok(())
    }

    pub fn partials(&self) -> worker::Result<Vec<(ConnId, Vec<u8>)>> {
        let rows = self.rows("SELECT conn, bytes FROM partial", vec![])?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [conn, SqlStorageValue::Blob(bytes)] => Some((integer(conn), bytes.clone())),
                _ => None,
            })
            .collect())
    }

    /// Forgets what belonged to a connection that is gone.
    pub fn forget_connection(&self, conn: ConnId) -> worker::Result<()> {
        self.sql
            .exec("DELETE FROM partial WHERE conn = ?", vec![int(conn)])?;
        self.sql
            .exec("DELETE FROM staged WHERE conn = ?", vec![int(conn)])?;
        Ok(())
    }

    fn rows(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> worker::Result<Vec<Vec<SqlStorageValue>>> {
        self.sql.exec(query, bindings)?.raw().collect()
    }
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
