//! SQLite itself, as a Durable Object offers it, for native tests of the room's SQL
//! ([`SqlStore`]): an in-memory database with the platform's limits, where
//!
//! * every number crosses as a JavaScript number does in workers-rs: bound as a double, and
//!   read back as an integer only when it is a safe one (so an integer above 2^53 comes back
//!   as a `Real`, rounded);
//! * a row, string or blob over 2 MB is refused ("string or blob too big"), as are statements
//!   over 100 KB and more than 100 parameters;
//! * SQL may not begin transactions or run pragmas (the platform's authorizer refuses them):
//!   only [`SqlDatabase::transaction`] does, as `transactionSync` does;
//! * a statement must get exactly as many parameters as it has.
//!
//! The database outlives the stores opened on it ([`NativeSql`] is a handle), as a Durable
//! Object's outlives the object in memory: open a second store to model a wake.

#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Batch, Connection};
use stomp_rooms::room::budget::PLATFORM_ROW_BYTES;
use stomp_rooms::room::sql::{SqlDatabase, SqlStore, SqlValue, Statement};
use stomp_rooms::room::StorageError;

/// The platform's longest SQL statement, in bytes.
pub const PLATFORM_SQL_BYTES: i32 = 100_000;
/// The platform's most parameters bound to one statement.
pub const PLATFORM_PARAMETERS: i32 = 100;
/// The largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A handle on one in-memory SQLite database.
#[derive(Clone)]
pub struct NativeSql {
    connection: Rc<Connection>,
    /// Set while [`SqlDatabase::transaction`] begins or ends its own transaction.
    admin: Arc<AtomicBool>,
    /// Transactions begun, for tests of when the store needs one.
    transactions: Rc<Cell<u64>>,
    /// Statements run (each a call across to the runtime in a Durable Object).
    statements: Rc<Cell<u64>>,
}

impl Default for NativeSql {
    fn default() -> Self {
        Self::new()
    }
}

impl NativeSql {
    pub fn new() -> Self {
        let connection = Connection::open_in_memory().expect("SQLite opens an in-memory database");
        let row_bytes = i32::try_from(PLATFORM_ROW_BYTES).expect("the row limit fits an i32");
        for (limit, value) in [
            (Limit::SQLITE_LIMIT_LENGTH, row_bytes),
            (Limit::SQLITE_LIMIT_SQL_LENGTH, PLATFORM_SQL_BYTES),
            (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, PLATFORM_PARAMETERS),
        ] {
            connection
                .set_limit(limit, value)
                .expect("SQLite takes a lower limit");
        }
        let admin = Arc::new(AtomicBool::new(false));
        let allowed = Arc::clone(&admin);
        connection
            .authorizer(Some(move |context: AuthContext<'_>| match context.action {
                AuthAction::Transaction { .. }
                | AuthAction::Savepoint { .. }
                | AuthAction::Pragma { .. }
                    if !allowed.load(Ordering::Relaxed) =>
                {
                    Authorization::Deny
                }
                _ => Authorization::Allow,
            }))
            .expect("SQLite takes an authorizer");
        Self {
            connection: Rc::new(connection),
            admin,
            transactions: Rc::new(Cell::new(0)),
            statements: Rc::new(Cell::new(0)),
        }
    }

    /// A store on this database, opened as the Durable Object opens it at a wake.
    pub fn open(&self) -> SqlStore<NativeSql> {
        SqlStore::open(self.clone()).expect("the store opens")
    }

    /// Rows changed since the database was created.
    pub fn changes(&self) -> u64 {
        self.connection.total_changes()
    }

    /// Transactions begun by [`SqlDatabase::transaction`].
    pub fn transactions(&self) -> u64 {
        self.transactions.get()
    }

    /// Statements run by [`SqlDatabase::query`], alone or in a transaction.
    pub fn statements(&self) -> u64 {
        self.statements.get()
    }

    fn as_admin(&self, sql: &str) -> Result<(), StorageError> {
        self.admin.store(true, Ordering::Relaxed);
        let outcome = self.connection.execute_batch(sql).map_err(refusal);
        self.admin.store(false, Ordering::Relaxed);
        outcome
    }
}

/// A new store on a new database.
pub fn sql_store() -> SqlStore<NativeSql> {
    NativeSql::new().open()
}

impl SqlDatabase for NativeSql {
    fn query(&self, sql: &str, params: Vec<SqlValue>) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        self.statements.set(self.statements.get() + 1);
        let mut batch = Batch::new(&self.connection, sql);
        let mut rows = Vec::new();
        let mut statements = 0;
        while let Some(mut statement) = batch.next().map_err(refusal)? {
            statements += 1;
            let wanted = statement.parameter_count();
            if wanted != params.len() || (statements > 1 && !params.is_empty()) {
                return Err(StorageError(format!(
                    "wrong number of parameter bindings: {} for {wanted}",
                    params.len()
                )));
            }
            for (index, value) in params.iter().enumerate() {
                let bound = match value {
                    SqlValue::Null => {
                        statement.raw_bind_parameter(index + 1, rusqlite::types::Null)
                    }
                    // A JavaScript number is a double.
                    SqlValue::Integer(n) => statement.raw_bind_parameter(index + 1, *n as f64),
                    SqlValue::Real(f) => statement.raw_bind_parameter(index + 1, *f),
                    SqlValue::Text(text) => statement.raw_bind_parameter(index + 1, text),
                    SqlValue::Blob(bytes) => statement.raw_bind_parameter(index + 1, bytes),
                };
                bound.map_err(refusal)?;
            }
            let columns = statement.column_count();
            let mut cursor = statement.raw_query();
            rows = Vec::new();
            while let Some(row) = cursor.next().map_err(refusal)? {
                let mut values = Vec::with_capacity(columns);
                for column in 0..columns {
                    values.push(from_column(row.get_ref(column).map_err(refusal)?));
                }
                rows.push(values);
            }
        }
        Ok(rows)
    }

    fn transaction(&self, statements: Vec<Statement>) -> Result<(), StorageError> {
        self.as_admin("SAVEPOINT room_transaction")?;
        self.transactions.set(self.transactions.get() + 1);
        let outcome = statements
            .into_iter()
            .try_for_each(|Statement { sql, params }| self.query(&sql, params).map(drop));
        let end = match outcome {
            Ok(()) => "RELEASE room_transaction",
            Err(_) => "ROLLBACK TO room_transaction; RELEASE room_transaction",
        };
        self.as_admin(end)?;
        outcome
    }
}

/// A column as workers-rs reads it: every number through a JavaScript number.
fn from_column(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(n) => js_number(n as f64),
        ValueRef::Real(f) => js_number(f),
        ValueRef::Text(text) => SqlValue::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => SqlValue::Blob(bytes.to_vec()),
    }
}

/// A JavaScript number as workers-rs takes it: an integer if it is a safe one.
fn js_number(number: f64) -> SqlValue {
    if number.fract() == 0.0 && number.abs() <= MAX_SAFE_INTEGER as f64 {
        SqlValue::Integer(number as i64)
    } else {
        SqlValue::Real(number)
    }
}

fn refusal(error: rusqlite::Error) -> StorageError {
    StorageError(error.to_string())
}
