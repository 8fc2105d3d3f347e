//! The statements of a commit: one or two per [`Write`] (a run of archives shares an INSERT),
//! then the history summary of each destination whose history changed, recounted in the same
//! transaction.

use super::schema::{HISTORY_DROPPED_KEY, SET_META};
use super::{SqlValue, Statement};
use crate::room::record;
use crate::room::storage::Write;
use crate::stomp::Message;

/// Recounts a destination's history summary (after its archives and trims, in the same
/// transaction), keeping the highest id trimmed from it.
const SUMMARIZE: &str = "INSERT INTO history_summary (destination, rows, bytes, newest)
    SELECT ?1, count(*), coalesce(sum(size), 0), coalesce(max(id), 0) FROM history
    WHERE destination = ?1
    ON CONFLICT (destination) DO UPDATE
    SET rows = excluded.rows, bytes = excluded.bytes, newest = excluded.newest";

/// The ids a trim deletes from destination `?1`: all but the newest `?2` rows within `?3`
/// bytes, and never the newest.
const TRIMMED_IDS: &str = "SELECT id FROM (
        SELECT id, row_number() OVER (ORDER BY id DESC) AS newer_rows,
               sum(size) OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS newer_bytes
        FROM history WHERE destination = ?1)
    WHERE newer_rows > 1 AND (newer_rows > ?2 OR newer_bytes > ?3)";

/// Forgets the summary of a destination whose history is gone (it gave way to another's).
const FORGET_EMPTY_SUMMARY: &str =
    "DELETE FROM history_summary WHERE destination = ?1 AND rows = 0";

/// History rows one INSERT carries: six parameters each, within the platform's 100 per
/// statement. A group commit's archives go in as few statements as that allows, since each
/// statement is a call across to the runtime with its own fixed cost.
pub(super) const ARCHIVES_PER_INSERT: usize = 16;

/// The statements that apply `writes`, in order.
pub(super) fn statements_of(writes: &[Write]) -> Vec<Statement> {
    let mut statements = Vec::with_capacity(writes.len() + 1);
    let mut summarized: Vec<&str> = Vec::new();
    let mut rest = writes;
    while let Some(write) = rest.first() {
        let archives: Vec<&Message> = rest
            .iter()
            .map_while(|write| match write {
                Write::Archive(message) => Some(message),
                _ => None,
            })
            .take(ARCHIVES_PER_INSERT)
            .collect();
        let taken = if archives.is_empty() {
            statements.extend(statements_of_one(write));
            1
        } else {
            statements.push(archive(&archives));
            archives.len()
        };
        for write in &rest[..taken] {
            if let Write::Archive(Message { destination, .. })
            | Write::TrimHistory { destination, .. }
            | Write::DropHistory { destination } = write
            {
                if !summarized.contains(&destination.as_str()) {
                    summarized.push(destination);
                }
            }
        }
        rest = &rest[taken..];
    }
    for destination in summarized {
        statements.push(Statement::new(SUMMARIZE, vec![destination.into()]));
        statements.push(Statement::new(
            FORGET_EMPTY_SUMMARY,
            vec![destination.into()],
        ));
    }
    statements
}

/// The SQL for one write.
fn statements_of_one(write: &Write) -> Vec<Statement> {
    let one = |sql: &'static str, params: Vec<SqlValue>| vec![Statement::new(sql, params)];
    match write {
        Write::Counter(counter, value) => one(SET_META, vec![counter.key().into(), (*value).into()]),
        Write::Archive(message) => vec![archive(&[message])],
        // Keeps the newest `keep_rows` within `keep_bytes`, and always the newest; the
        // summary remembers the highest id it deletes.
        Write::TrimHistory {
            destination,
            keep_rows,
            keep_bytes,
        } => {
            let params = vec![
                destination.as_str().into(),
                (*keep_rows).into(),
                (*keep_bytes).into(),
            ];
            vec![
                // The trim's newest id is the newer of two: the row `keep_rows` back from the
                // newest (an index lookup), and, only when the history holds more than
                // `keep_bytes` in all, the newest row the bytes condition takes (the window).
                Statement::new(
                    format!(
                        "INSERT INTO history_summary (destination, rows, bytes, newest, trimmed)
                         SELECT ?1, 0, 0, 0, max(
                             coalesce((SELECT id FROM history WHERE destination = ?1
                                       ORDER BY id DESC LIMIT 1 OFFSET max(?2, 1)), 0),
                             CASE WHEN (SELECT coalesce(sum(size), 0) FROM history
                                        WHERE destination = ?1) > ?3
                                  THEN coalesce((SELECT max(id) FROM ({TRIMMED_IDS})), 0)
                                  ELSE 0 END)
                         WHERE true
                         ON CONFLICT (destination) DO UPDATE
                         SET trimmed = max(trimmed, excluded.trimmed)"
                    ),
                    params,
                ),
                // What the trim takes is every id up to its newest (rows are counted from the
                // newest back), which the statement before kept as `trimmed`: an index range,
                // not the window over the history a second time.
                Statement::new(
                    "DELETE FROM history WHERE destination = ?1
                     AND id <= (SELECT trimmed FROM history_summary WHERE destination = ?1)",
                    vec![destination.as_str().into()],
                ),
            ]
        }
        // The room remembers the highest id any dropped history held (the destination's own
        // summary goes with it).
        Write::DropHistory { destination } => vec![
            Statement::new(
                format!(
                    "INSERT INTO meta (key, value)
                     SELECT '{HISTORY_DROPPED_KEY}', max(
                         coalesce((SELECT max(id) FROM history WHERE destination = ?1), 0),
                         coalesce((SELECT trimmed FROM history_summary WHERE destination = ?1), 0))
                     WHERE true
                     ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"
                ),
                vec![destination.as_str().into()],
            ),
            Statement::new(
                "UPDATE history_summary SET trimmed = 0 WHERE destination = ?1",
                vec![destination.as_str().into()],
            ),
            Statement::new(
                "DELETE FROM history WHERE destination = ?1",
                vec![destination.as_str().into()],
            ),
        ],
        Write::Enqueue(message) => one(
            "INSERT OR REPLACE INTO queued (id, destination, headers, body, is_binary) VALUES (?, ?, ?, ?, ?)",
            message_values(message),
        ),
        Write::Requeue { message_id, avoid } => one(
            "UPDATE queued SET redelivered = 1, avoid_conn = ?, avoid_handle = ? WHERE id = ?",
            vec![
                avoid.map_or(SqlValue::Null, |(conn, _)| conn.into()),
                avoid.map_or(SqlValue::Null, |(_, handle)| handle.into()),
                (*message_id).into(),
            ],
        ),
        Write::Dequeue { message_id } => one(
            "DELETE FROM queued WHERE id = ?",
            vec![(*message_id).into()],
        ),
        Write::QueueCursor {
            destination,
            next: 0,
        } => one(
            "DELETE FROM queue_cursor WHERE destination = ?",
            vec![destination.as_str().into()],
        ),
        Write::QueueCursor { destination, next } => one(
            "INSERT INTO queue_cursor (destination, next) VALUES (?, ?) ON CONFLICT (destination) DO UPDATE SET next = excluded.next",
            vec![destination.as_str().into(), (*next).into()],
        ),
        Write::Stage {
            conn,
            transaction,
            record,
            binary,
        } => one(
            "INSERT INTO staged (conn, tx, frame, is_binary) VALUES (?, ?, ?, ?)",
            vec![
                (*conn).into(),
                transaction.as_str().into(),
                SqlValue::Blob(record.clone()),
                (*binary).into(),
            ],
        ),
        Write::Unstage { conn, transaction } => one(
            "DELETE FROM staged WHERE conn = ? AND tx = ?",
            vec![(*conn).into(), transaction.as_str().into()],
        ),
        Write::PartialAppend { conn, bytes } => one(
            "INSERT INTO partial_piece (conn, bytes) VALUES (?, ?)",
            vec![(*conn).into(), SqlValue::Blob(bytes.clone())],
        ),
        Write::PartialReset { conn, bytes } => {
            let mut statements = one(
                "DELETE FROM partial_piece WHERE conn = ?",
                vec![(*conn).into()],
            );
            if !bytes.is_empty() {
                statements.extend(statements_of_one(&Write::PartialAppend {
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
                throttle.messages_us.into(),
                throttle.frames_us.into(),
                throttle.bytes_us.into(),
            ],
        ),
        Write::IdempotencyKey(key) => one(
            "INSERT OR REPLACE INTO idempotency_key (key, destination, message_id, at_ms) VALUES (?, ?, ?, ?)",
            vec![
                key.key.as_str().into(),
                key.destination.as_str().into(),
                key.message_id.into(),
                key.at_ms.into(),
            ],
        ),
        Write::ForgetIdempotencyKeys { below_id } => one(
            "DELETE FROM idempotency_key WHERE message_id < ?",
            vec![(*below_id).into()],
        ),
        Write::ForgetFullAddressRates { now_us } => one(
            "DELETE FROM address_rate WHERE messages_us <= ?1 AND frames_us <= ?1 AND bytes_us <= ?1",
            vec![(*now_us).into()],
        ),
        Write::WebhookEvent(row) => one(
            "INSERT OR REPLACE INTO webhook_outbox (seq, at_ms, event) VALUES (?, ?, ?)",
            vec![row.seq.into(), row.at_ms.into(), row.json.as_str().into()],
        ),
        Write::WebhookForget { through } => one(
            "DELETE FROM webhook_outbox WHERE seq <= ?",
            vec![(*through).into()],
        ),
        Write::WebhookMember { conn, data } => one(
            "INSERT OR REPLACE INTO webhook_member (conn, data) VALUES (?, ?)",
            vec![(*conn).into(), data.as_str().into()],
        ),
        Write::WebhookMemberGone { conn } => one(
            "DELETE FROM webhook_member WHERE conn = ?",
            vec![(*conn).into()],
        ),
        Write::Member(member) => one(
            "INSERT OR REPLACE INTO members (conn, gateway, member, session) VALUES (?, ?, ?, ?)",
            vec![
                member.conn.into(),
                member.gateway.as_str().into(),
                member.member.into(),
                member.session.as_str().into(),
            ],
        ),
        Write::MemberGone { conn } => one(
            "DELETE FROM members WHERE conn = ?",
            vec![(*conn).into()],
        ),
        Write::WebhookRoom(name) => one(
            "INSERT OR REPLACE INTO webhook_room (only, name) VALUES (1, ?)",
            vec![name.as_str().into()],
        ),
    }
}

/// One INSERT of topic messages into their history, in order.
fn archive(messages: &[&Message]) -> Statement {
    let mut sql = String::from(
        "INSERT OR REPLACE INTO history (id, destination, headers, body, is_binary, size) VALUES ",
    );
    let mut params = Vec::with_capacity(messages.len() * 6);
    for (index, message) in messages.iter().enumerate() {
        sql.push_str(if index == 0 {
            "(?, ?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?, ?)"
        });
        params.extend(message_values(message));
        params.push(record::message_row_bytes(message).into());
    }
    Statement::new(sql, params)
}

/// A message's `id, destination, headers, body, is_binary`, its headers as the room lays them
/// out (length-prefixed, unescaped).
fn message_values(message: &Message) -> Vec<SqlValue> {
    vec![
        message.id.into(),
        message.destination.as_str().into(),
        SqlValue::Blob(record::encode_headers(&message.headers)),
        SqlValue::Blob(message.body.clone()),
        message.binary.into(),
    ]
}
