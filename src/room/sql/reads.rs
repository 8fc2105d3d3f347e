//! What the room reads back: everything but history at a wake, then history as asked, each
//! row decoded into the room's own types. A row that does not decode (a column of the wrong
//! type, a damaged record) is skipped, never panicked on.

use super::schema::{HISTORY_DROPPED_KEY, READ_META, SCHEMA_KEY};
use super::{SqlDatabase, SqlValue};
use crate::room::broker::{IdempotencyKey, QueuedMessage};
use crate::room::budget::HistoryUsage;
use crate::room::rate::Throttle;
use crate::room::record;
use crate::room::storage::{
    Counter, HistoryRead, PartialFrame, ReadFrom, StagedFrame, StorageError, Stored, StoredMember,
    WebhookRow,
};
use crate::stomp::Message;

/// The recorded schema version; `None` in a new database (no `meta` table) or one from before
/// the version was recorded.
pub(super) fn schema_version(database: &impl SqlDatabase) -> Option<u64> {
    let rows = database.query(READ_META, vec![SCHEMA_KEY.into()]).ok()?;
    rows.first()
        .and_then(|row| row.first())
        .map(SqlValue::to_u64)
}

pub(super) fn load(database: &impl SqlDatabase) -> Result<Stored, StorageError> {
    // Every counter in one read; keys no counter has (the schema version) are passed over.
    let written: Vec<(Counter, u64)> = database
        .query("SELECT key, value FROM meta", vec![])?
        .iter()
        .filter_map(|row| match row.as_slice() {
            [SqlValue::Text(key), value] => Some((Counter::from_key(key)?, value.to_u64())),
            _ => None,
        })
        .collect();
    let counters = Counter::ALL
        .iter()
        .map(|&counter| {
            let value = written.iter().find(|(c, _)| *c == counter);
            (counter, value.map_or(0, |&(_, value)| value))
        })
        .collect();
    let newest = database.query(
        "SELECT max((SELECT coalesce(max(id), 0) FROM history), (SELECT coalesce(max(id), 0) FROM queued))",
        vec![],
    )?;
    let queued = database
        .query(
            "SELECT id, destination, headers, body, is_binary, redelivered, avoid_conn, avoid_handle
             FROM queued ORDER BY id",
            vec![],
        )?
        .iter()
        .filter_map(|row| queued_from_row(row))
        .collect();
    let cursors = database
        .query("SELECT destination, next FROM queue_cursor", vec![])?
        .into_iter()
        .filter_map(|row| match <[SqlValue; 2]>::try_from(row).ok()? {
            [SqlValue::Text(destination), next] => Some((destination, next.to_u64())),
            _ => None,
        })
        .collect();
    let staged = database
        .query(
            "SELECT conn, tx, frame, is_binary FROM staged ORDER BY seq",
            vec![],
        )?
        .into_iter()
        .filter_map(|row| match <[SqlValue; 4]>::try_from(row).ok()? {
            [conn, SqlValue::Text(transaction), SqlValue::Blob(record), binary] => {
                Some(StagedFrame {
                    conn: conn.to_u64(),
                    transaction,
                    record,
                    binary: binary.to_bool(),
                })
            }
            _ => None,
        })
        .collect();
    let address_rates = database
        .query(
            "SELECT address, messages_us, frames_us, bytes_us FROM address_rate",
            vec![],
        )?
        .into_iter()
        .filter_map(|row| match <[SqlValue; 4]>::try_from(row).ok()? {
            [SqlValue::Text(address), messages, frames, bytes] => Some((
                address,
                Throttle {
                    messages_us: messages.to_u64(),
                    frames_us: frames.to_u64(),
                    bytes_us: bytes.to_u64(),
                },
            )),
            _ => None,
        })
        .collect();
    let partials = partials_of(database.query(
        "SELECT conn, bytes FROM partial_piece ORDER BY conn, seq",
        vec![],
    )?);
    let history = database
        .query(
            "SELECT destination, rows, bytes, newest FROM history_summary WHERE rows > 0",
            vec![],
        )?
        .iter()
        .filter_map(|row| match row.as_slice() {
            [SqlValue::Text(destination), summary @ ..] => {
                Some((destination.clone(), history_usage_of(summary)?))
            }
            _ => None,
        })
        .collect();
    let idempotency_keys = database
        .query(
            "SELECT key, destination, message_id, at_ms FROM idempotency_key ORDER BY message_id",
            vec![],
        )?
        .into_iter()
        .filter_map(|row| match <[SqlValue; 4]>::try_from(row).ok()? {
            [SqlValue::Text(key), SqlValue::Text(destination), id, at] => Some(IdempotencyKey {
                key,
                destination,
                message_id: id.to_u64(),
                at_ms: at.to_u64(),
            }),
            _ => None,
        })
        .collect();
    let webhook_events = database
        .query(
            "SELECT seq, at_ms, event FROM webhook_outbox ORDER BY seq",
            vec![],
        )?
        .into_iter()
        .filter_map(|row| match <[SqlValue; 3]>::try_from(row).ok()? {
            [seq, at_ms, SqlValue::Text(json)] => Some(WebhookRow {
                seq: seq.to_u64(),
                at_ms: at_ms.to_u64(),
                json,
            }),
            _ => None,
        })
        .collect();
    let webhook_members = database
        .query(
            "SELECT conn, data FROM webhook_member ORDER BY conn",
            vec![],
        )?
        .into_iter()
        .filter_map(|row| match <[SqlValue; 2]>::try_from(row).ok()? {
            [conn, SqlValue::Text(data)] => Some((conn.to_u64(), data)),
            _ => None,
        })
        .collect();
    let webhook_room = database
        .query("SELECT name FROM webhook_room", vec![])?
        .into_iter()
        .find_map(|row| match <[SqlValue; 1]>::try_from(row).ok()? {
            [SqlValue::Text(name)] => Some(name),
            _ => None,
        });
    let members = database
        .query(
            "SELECT conn, gateway, member, session FROM members ORDER BY conn",
            vec![],
        )?
        .into_iter()
        .filter_map(|row| match <[SqlValue; 4]>::try_from(row).ok()? {
            [conn, SqlValue::Text(gateway), member, SqlValue::Text(session)] => {
                Some(StoredMember {
                    conn: conn.to_u64(),
                    gateway,
                    member: member.to_u64(),
                    session,
                })
            }
            _ => None,
        })
        .collect();
    Ok(Stored {
        members,
        webhook_events,
        webhook_members,
        webhook_room,
        counters,
        newest_message_id: first_u64(&newest),
        queued,
        cursors,
        staged,
        partials,
        address_rates,
        history,
        idempotency_keys,
    })
}

pub(super) fn history(
    database: &impl SqlDatabase,
    destination: &str,
    read: HistoryRead,
) -> Result<Vec<Message>, StorageError> {
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
    let rows = database.query(
        query,
        vec![
            destination.into(),
            read.after.into(),
            read.count.into(),
            read.max_bytes.into(),
        ],
    )?;
    Ok(rows
        .iter()
        .filter_map(|row| message_from_row(row))
        .collect())
}

pub(super) fn history_count(
    database: &impl SqlDatabase,
    destination: &str,
    after: u64,
) -> Result<u32, StorageError> {
    let rows = database.query(
        "SELECT count(*) FROM history WHERE destination = ? AND id > ?",
        vec![destination.into(), after.into()],
    )?;
    Ok(u32::try_from(first_u64(&rows)).unwrap_or(u32::MAX))
}

pub(super) fn history_usage(
    database: &impl SqlDatabase,
    destination: &str,
) -> Result<HistoryUsage, StorageError> {
    let rows = database.query(
        "SELECT rows, bytes, newest FROM history_summary WHERE destination = ?",
        vec![destination.into()],
    )?;
    Ok(rows
        .first()
        .and_then(|summary| history_usage_of(summary))
        .unwrap_or_default())
}

pub(super) fn history_lost(
    database: &impl SqlDatabase,
    destination: &str,
) -> Result<u64, StorageError> {
    let rows = database.query(
        &format!(
            "SELECT max(coalesce((SELECT trimmed FROM history_summary WHERE destination = ?1), 0),
                        coalesce((SELECT value FROM meta WHERE key = '{HISTORY_DROPPED_KEY}'), 0))"
        ),
        vec![destination.into()],
    )?;
    Ok(first_u64(&rows))
}

/// How many messages storage holds: (history, queued).
pub(super) fn message_counts(database: &impl SqlDatabase) -> Result<(u64, u64), StorageError> {
    let rows = database.query(
        "SELECT (SELECT count(*) FROM history), (SELECT count(*) FROM queued)",
        vec![],
    )?;
    match rows.first().map(Vec::as_slice) {
        Some([history, queued]) => Ok((history.to_u64(), queued.to_u64())),
        _ => Ok((0, 0)),
    }
}

/// The first column of the first row as a number; 0 when there is none.
fn first_u64(rows: &[Vec<SqlValue>]) -> u64 {
    rows.first()
        .and_then(|row| row.first())
        .map_or(0, SqlValue::to_u64)
}

/// `conn, bytes` rows, ordered by connection then piece, joined into each connection's frame.
fn partials_of(rows: Vec<Vec<SqlValue>>) -> Vec<PartialFrame> {
    let mut partials: Vec<PartialFrame> = Vec::new();
    for row in rows {
        if let [conn, SqlValue::Blob(bytes)] = row.as_slice() {
            match partials.last_mut() {
                Some(frame) if frame.conn == conn.to_u64() => {
                    frame.bytes.extend(bytes);
                    frame.pieces += 1;
                }
                _ => partials.push(PartialFrame {
                    conn: conn.to_u64(),
                    bytes: bytes.clone(),
                    pieces: 1,
                }),
            }
        }
    }
    partials
}

/// A `history_summary` row's `rows, bytes, newest`.
fn history_usage_of(summary: &[SqlValue]) -> Option<HistoryUsage> {
    match summary {
        [rows, bytes, newest] => Some(HistoryUsage {
            rows: u32::try_from(rows.to_u64()).unwrap_or(u32::MAX),
            bytes: bytes.to_u64(),
            newest: newest.to_u64(),
        }),
        _ => None,
    }
}

/// A `queued` row: the message's five columns, then `redelivered, avoid_conn, avoid_handle`.
fn queued_from_row(row: &[SqlValue]) -> Option<QueuedMessage> {
    let message = message_from_row(row.get(..5)?)?;
    let avoid = match (row.get(6)?, row.get(7)?) {
        (SqlValue::Integer(conn), SqlValue::Integer(handle)) => {
            Some((u64::try_from(*conn).ok()?, u32::try_from(*handle).ok()?))
        }
        _ => None,
    };
    Some(QueuedMessage {
        message,
        redelivered: row.get(5)?.to_bool(),
        avoid,
    })
}

/// A message's `id, destination, headers, body, is_binary`.
fn message_from_row(row: &[SqlValue]) -> Option<Message> {
    match row {
        [id, SqlValue::Text(destination), headers, body, binary] => Some(Message {
            id: id.to_u64(),
            destination: destination.clone(),
            headers: match headers {
                SqlValue::Blob(bytes) => record::decode_headers(bytes)?,
                // Rows written before schema 4 hold their headers as JSON.
                SqlValue::Text(json) => serde_json::from_str(json).ok()?,
                _ => Vec::new(),
            },
            body: match body {
                SqlValue::Blob(bytes) => bytes.clone(),
                SqlValue::Text(text) => text.clone().into_bytes(),
                _ => Vec::new(),
            },
            binary: binary.to_bool(),
        }),
        _ => None,
    }
}
