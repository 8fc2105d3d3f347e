//! The tables, version by version, and the migration that brings a database of any earlier
//! version to the current one when the room wakes.
//!
//! Each version's SQL is kept as it first ran, never edited: a database is at version `n` when
//! versions 1 to `n` ran on it, in order. A later version only adds to them.

use super::{SqlValue, Statement};
use crate::room::record::ROW_OVERHEAD;

/// The schema this code writes; older databases are migrated when the room wakes.
pub const SCHEMA_VERSION: u64 = 8;

/// The `meta` key under which the schema version is recorded.
pub const SCHEMA_KEY: &str = "schema";

/// Version 1: counters, history and queues with JSON headers, staged frames as escaped text,
/// and one row per partly-arrived frame.
pub const SCHEMA_V1: &str = "
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
pub const SCHEMA_V2: &str = "
ALTER TABLE queued ADD COLUMN redelivered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queued ADD COLUMN avoid_conn INTEGER;
ALTER TABLE queued ADD COLUMN avoid_handle INTEGER;
CREATE TABLE IF NOT EXISTS queue_cursor (destination TEXT PRIMARY KEY, next INTEGER NOT NULL);
";

/// Version 3: client addresses' publish rates over HTTP.
pub const SCHEMA_V3: &str = "
CREATE TABLE IF NOT EXISTS address_rate (
    address TEXT PRIMARY KEY, messages_us INTEGER NOT NULL, bytes_us INTEGER NOT NULL);
";

/// Version 4: history rows carry their size (indexed with the destination, so a read and a trim
/// find what fits without loading a body), a summary per destination for the wake, records for
/// staged frames (older, escaped frames belonged to sockets a deploy closed: dropped), partial
/// frames in pieces appended as they arrive, and the address rate's frame bucket.
pub fn schema_v4() -> String {
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

/// Version 5: idempotency keys of recent publishes, each naming its message (ids rise with
/// time, so the oldest keys are those of the lowest ids).
pub const SCHEMA_V5: &str = "
CREATE TABLE IF NOT EXISTS idempotency_key (
    key TEXT PRIMARY KEY, destination TEXT NOT NULL, message_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS idempotency_by_message ON idempotency_key (message_id);
";

/// Version 6: each destination's summary keeps the highest id trimmed from its history, so a
/// resume from before it is known to be incomplete (what was trimmed before this version is
/// not known: 0).
pub const SCHEMA_V6: &str = "
ALTER TABLE history_summary ADD COLUMN trimmed INTEGER NOT NULL DEFAULT 0;
";

/// The `meta` key under which the highest id any dropped history held is kept (see
/// [`Storage::history_lost`](crate::room::storage::Storage::history_lost)).
pub const HISTORY_DROPPED_KEY: &str = "history_dropped";

/// Version 7: webhooks: the outbox of events not yet delivered (each event's JSON as sent, in
/// the room's own order), the members as the webhooks last told them, and the room's name for
/// the events the alarm raises alone. Their counters live in `meta`.
pub const SCHEMA_V7: &str = "
CREATE TABLE IF NOT EXISTS webhook_outbox (
    seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_member (conn INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_room (
    only INTEGER PRIMARY KEY CHECK (only = 1), name TEXT NOT NULL);
";

/// Version 8: the room's members held by gateway objects, each with its session (a socket
/// keeps its session in its attachment; a member has no socket here).
pub const SCHEMA_V8: &str = "
CREATE TABLE IF NOT EXISTS members (
    conn INTEGER PRIMARY KEY, gateway TEXT NOT NULL, member INTEGER NOT NULL,
    session TEXT NOT NULL);
";

/// Reads a `meta` value: a counter, or the schema version (the table itself is missing in a
/// new database).
pub const READ_META: &str = "SELECT value FROM meta WHERE key = ?";

/// Sets a `meta` value: a counter, or the schema version.
pub const SET_META: &str = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// The statements that bring a database at version `from` (0: new, or from before the version
/// was recorded) to [`SCHEMA_VERSION`], and record it.
pub fn migration(from: u64) -> Vec<Statement> {
    // A new database gets version 1's tables here; one from before `schema` was recorded
    // has them already. Either way, each later version adds to them.
    let mut statements = vec![Statement::new(SCHEMA_V1, vec![])];
    if from < 2 {
        statements.push(Statement::new(SCHEMA_V2, vec![]));
    }
    if from < 3 {
        statements.push(Statement::new(SCHEMA_V3, vec![]));
    }
    if from < 4 {
        statements.push(Statement::new(schema_v4(), vec![]));
    }
    // Versions 5 to 7 were numbered apart on branches before they merged: builds of those
    // branches recorded 5 with the idempotency keys alone, 5 with the webhooks' tables alone,
    // or 6 with the trim column alone. Versions 5 and 7 only create what is missing (`IF NOT
    // EXISTS`), so they run for any database below 7. Version 6's ALTER cannot run twice, and
    // keeps its own guard: every build that recorded 6 had added its column, none that
    // recorded 5 had.
    if from < 7 {
        statements.push(Statement::new(SCHEMA_V5, vec![]));
    }
    if from < 6 {
        statements.push(Statement::new(SCHEMA_V6, vec![]));
    }
    if from < 7 {
        statements.push(Statement::new(SCHEMA_V7, vec![]));
    }
    if from < 8 {
        statements.push(Statement::new(SCHEMA_V8, vec![]));
    }
    statements.push(Statement::new(
        SET_META,
        vec![SCHEMA_KEY.into(), SqlValue::from(SCHEMA_VERSION)],
    ));
    statements
}
