//! The values SQL takes and gives back, with the conversions the room's columns need.
//!
//! In the Durable Object every number crosses JavaScript: an integer is bound and read back as
//! a double, exact up to 2^53. Ids and counters stay far below that.

/// One SQL value, as a parameter or a column of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<&str> for SqlValue {
    fn from(text: &str) -> Self {
        SqlValue::Text(text.to_owned())
    }
}

impl From<bool> for SqlValue {
    fn from(flag: bool) -> Self {
        SqlValue::Integer(i64::from(flag))
    }
}

impl From<u64> for SqlValue {
    /// Beyond `i64::MAX` (never an id or a counter) the largest integer SQLite holds.
    fn from(value: u64) -> Self {
        SqlValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<u32> for SqlValue {
    fn from(value: u32) -> Self {
        SqlValue::Integer(i64::from(value))
    }
}

impl SqlValue {
    /// The value as a count or an id: 0 for anything that is not a non-negative number.
    pub fn to_u64(&self) -> u64 {
        match self {
            SqlValue::Integer(n) => u64::try_from(*n).unwrap_or(0),
            // A float-to-int `as` saturates, and NaN is 0.
            SqlValue::Real(f) => *f as u64,
            _ => 0,
        }
    }

    /// The value as a flag: any non-zero number.
    pub fn to_bool(&self) -> bool {
        self.to_u64() != 0
    }
}
