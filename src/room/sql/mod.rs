//! The room's [`Storage`] in SQL: the schema, its migrations, and every statement the room
//! runs, over a small [`SqlDatabase`] that executes them. The Durable Object lends it its SQLite
//! database; the native tests lend it SQLite itself, so the same contract tests run on this
//! SQL and on the in-memory storage.
//!
//! | table | holds |
//! | --- | --- |
//! | `meta` | counters (see [`Counter`](super::Counter)), the schema version, and the highest id any dropped history held |
//! | `history` | the last messages of each `/topic/` destination, each with its row's size |
//! | `history_summary` | per destination: how many messages its history holds, their bytes, and the highest id trimmed from it |
//! | `queued` | `/queue/` messages not yet delivered and acknowledged, with redelivery state |
//! | `queue_cursor` | each queue's round-robin position |
//! | `staged` | frames of open transactions, as records |
//! | `partial_piece` | the pieces of a frame that has only partly arrived on a socket |
//! | `address_rate` | client addresses' places against the publish rate over HTTP |
//! | `idempotency_key` | recent publishes' idempotency keys, each with its message's id |
//!
//! Rows are laid out by the room ([`record`](super::record)): headers length-prefixed, nothing
//! escaped, so a row is exactly as large as the room counted it before writing it. This module
//! decodes no STOMP.
//!
//! An event's writes run in one transaction: if any statement fails, all of them are undone.
//! In the Durable Object, writes are durable before any output the object sends after them
//! (the output gate), which is why the room sends its fan-out before it commits.

mod reads;
pub mod schema;
mod value;
mod writes;

use std::borrow::Cow;

use super::budget::HistoryUsage;
use super::storage::{HistoryRead, Storage, StorageError, Stored, Write};
use crate::stomp::Message;

pub use value::SqlValue;

/// One SQL statement with its parameters, bound to its `?`s in order (or to `?N` by number).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: Cow<'static, str>,
    pub params: Vec<SqlValue>,
}

impl Statement {
    pub fn new(sql: impl Into<Cow<'static, str>>, params: Vec<SqlValue>) -> Self {
        Self {
            sql: sql.into(),
            params,
        }
    }
}

/// A SQLite database as the Durable Object offers it.
pub trait SqlDatabase {
    /// Runs one statement and returns its rows. Without parameters, `sql` may hold several
    /// statements separated by `;` (a schema): each runs, and the last one's rows come back.
    /// A row or a value over the platform's limit is refused, as SQLite refuses it.
    fn query(&self, sql: &str, params: Vec<SqlValue>) -> Result<Vec<Vec<SqlValue>>, StorageError>;

    /// Runs the statements in order in one transaction: all of them, or (if one fails) none.
    fn transaction(&self, statements: Vec<Statement>) -> Result<(), StorageError>;
}

/// The room's [`Storage`] in a [`SqlDatabase`].
pub struct SqlStore<D: SqlDatabase> {
    database: D,
}

impl<D: SqlDatabase> SqlStore<D> {
    /// Opens the room's database (or what converts into one, such as the Durable Object's
    /// storage), creating or migrating its tables when they are not current (a read on every
    /// other wake, so waking writes nothing).
    pub fn open(database: impl Into<D>) -> Result<Self, StorageError> {
        let store = Self {
            database: database.into(),
        };
        let version = reads::schema_version(&store.database);
        if version != Some(schema::SCHEMA_VERSION) {
            store.run(schema::migration(version.unwrap_or(0)))?;
        }
        Ok(store)
    }

    /// How many messages storage holds, for the stats endpoint: (history, queued).
    pub fn message_counts(&self) -> Result<(u64, u64), StorageError> {
        reads::message_counts(&self.database)
    }

    /// Runs the statements all together or not at all.
    fn run(&self, mut statements: Vec<Statement>) -> Result<(), StorageError> {
        // One statement is atomic by itself: no transaction (most events write one row, and a
        // transaction costs far more than the insert).
        if statements.len() == 1 {
            if let Some(Statement { sql, params }) = statements.pop() {
                self.database.query(&sql, params)?;
            }
            return Ok(());
        }
        self.database.transaction(statements)
    }
}

impl<D: SqlDatabase> Storage for SqlStore<D> {
    fn load(&self) -> Result<Stored, StorageError> {
        reads::load(&self.database)
    }

    fn history(&self, destination: &str, read: HistoryRead) -> Result<Vec<Message>, StorageError> {
        reads::history(&self.database, destination, read)
    }

    fn history_count(&self, destination: &str, after: u64) -> Result<u32, StorageError> {
        reads::history_count(&self.database, destination, after)
    }

    fn history_usage(&self, destination: &str) -> Result<HistoryUsage, StorageError> {
        reads::history_usage(&self.database, destination)
    }

    fn history_lost(&self, destination: &str) -> Result<u64, StorageError> {
        reads::history_lost(&self.database, destination)
    }

    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        self.run(writes::statements_of(writes))
    }
}
