//! The authentication hook consulted on CONNECT.

use std::collections::HashMap;

/// Decides whether a CONNECT's `login`/`passcode` may join the room.
pub trait Authenticator {
    /// `Err` carries the reason given to the client in the ERROR frame.
    fn authenticate(&self, login: Option<&str>, passcode: Option<&str>) -> Result<(), String>;
}

/// Open rooms: everyone may connect, with or without a login (the default).
#[derive(Debug, Default, Clone)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, _login: Option<&str>, _passcode: Option<&str>) -> Result<(), String> {
        Ok(())
    }
}

/// A fixed set of login → passcode pairs; everything else is refused.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    pub users: HashMap<String, String>,
}

impl Authenticator for Credentials {
    fn authenticate(&self, login: Option<&str>, passcode: Option<&str>) -> Result<(), String> {
        let login = login.ok_or("this room requires a login and passcode")?;
        match self.users.get(login) {
            Some(expected)
                if constant_time_eq(expected.as_bytes(), passcode.unwrap_or("").as_bytes()) =>
            {
                Ok(())
            }
            _ => Err("bad login or passcode".to_owned()),
        }
    }
}

/// Compares without an early exit, so timing does not reveal how much of a passcode matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
