//! The Durable Object's SQLite database as a [`SqlDatabase`], for the room's
//! [`SqlStore`](crate::room::sql::SqlStore), which holds the schema and every statement (and
//! is tested natively on SQLite itself). This file only carries values across JavaScript and
//! runs a transaction with `transactionSync`.
//!
//! Every number crosses as a JavaScript number: integers are exact up to 2^53, which ids and
//! counters stay far below.

use wasm_bindgen::{closure::Closure, prelude::wasm_bindgen, JsCast, JsValue};
use worker::{js_sys, SqlStorage, SqlStorageValue};

use crate::room::sql::{SqlDatabase, SqlStore, SqlValue, Statement};
use crate::room::StorageError;

/// The room's storage in the Durable Object.
pub type SqliteStore = SqlStore<DurableObjectSql>;

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

/// The Durable Object's SQLite database (`ctx.storage.sql`).
pub struct DurableObjectSql {
    storage: worker::Storage,
    sql: SqlStorage,
}

impl From<worker::Storage> for DurableObjectSql {
    fn from(storage: worker::Storage) -> Self {
        Self {
            sql: storage.sql(),
            storage,
        }
    }
}

impl SqlDatabase for DurableObjectSql {
    fn query(&self, sql: &str, params: Vec<SqlValue>) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        let read = || -> worker::Result<Vec<Vec<SqlStorageValue>>> {
            self.sql.exec(sql, to_js(params))?.raw().collect()
        };
        let rows = read().map_err(|error| StorageError(error.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|row| row.into_iter().map(from_js).collect())
            .collect())
    }

    fn transaction(&self, statements: Vec<Statement>) -> Result<(), StorageError> {
        let sql = self.sql.clone();
        let callback = Closure::once(move || -> Result<(), JsValue> {
            for Statement { sql: query, params } in statements {
                sql.exec(&query, to_js(params))
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
}

fn to_js(params: Vec<SqlValue>) -> Vec<SqlStorageValue> {
    params
        .into_iter()
        .map(|value| match value {
            SqlValue::Null => SqlStorageValue::Null,
            SqlValue::Integer(n) => SqlStorageValue::Integer(n),
            SqlValue::Real(f) => SqlStorageValue::Float(f),
            SqlValue::Text(text) => SqlStorageValue::String(text),
            SqlValue::Blob(bytes) => SqlStorageValue::Blob(bytes),
        })
        .collect()
}

/// A column as workers-rs read it: a JavaScript number is an integer when it is a safe one.
fn from_js(value: SqlStorageValue) -> SqlValue {
    match value {
        SqlStorageValue::Null => SqlValue::Null,
        SqlStorageValue::Boolean(flag) => SqlValue::Integer(i64::from(flag)),
        SqlStorageValue::Integer(n) => SqlValue::Integer(n),
        SqlStorageValue::Float(f) => SqlValue::Real(f),
        SqlStorageValue::String(text) => SqlValue::Text(text),
        SqlStorageValue::Blob(bytes) => SqlValue::Blob(bytes),
    }
}
