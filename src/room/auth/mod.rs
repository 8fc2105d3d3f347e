//! Who may connect, as whom, and what they may do: the hook consulted on CONNECT.
//!
//! * [`AllowAll`]: open rooms (the default). A claimed `login` is only a display name.
//! * [`Gate`]: rooms with authentication configured: signed tokens ([`jwt`]) and/or a fixed
//!   login → passcode list ([`Credentials`]). Only these give a verified login.

mod grants;
pub mod jwt;
mod keys;
pub mod pattern;

use std::collections::HashMap;
use std::rc::Rc;

use super::base64;

pub use grants::{Grants, MAX_GRANT_BYTES};
pub use jwt::{TokenRules, Verified, Verifier};
pub use keys::{Algorithm, Key};

/// What a CONNECT offers to prove who it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectRequest<'a> {
    /// The room the socket was opened to.
    pub room: &'a str,
    pub login: Option<&'a str>,
    pub passcode: Option<&'a str>,
    /// The token of an `Authorization: Bearer <token>` header.
    pub bearer: Option<&'a str>,
    pub now_ms: u64,
}

/// Who a connection is, as far as the room can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// A verified login, or in an open room the name the client claims.
    pub login: Option<String>,
    /// Whether `login` was proven (a token's signature or a passcode).
    pub verified: bool,
    pub grants: Grants,
    /// When the connection must end because its token expires (ms).
    pub expires_ms: Option<u64>,
}

/// Decides whether a CONNECT may join the room, and as whom.
pub trait Authenticator {
    /// `Err` carries the reason given to the client in the ERROR frame.
    fn authenticate(&self, request: &ConnectRequest) -> Result<Identity, String>;
}

/// Open rooms: everyone may connect, with or without a login (the default).
#[derive(Debug, Default, Clone)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, request: &ConnectRequest) -> Result<Identity, String> {
        Ok(Identity {
            login: request.login.map(str::to_owned),
            ..Identity::default()
        })
    }
}

/// A fixed set of login → passcode pairs; everything else is refused.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    pub users: HashMap<String, String>,
}

impl Credentials {
    /// Compares digests of the passcodes, so the time taken says nothing of how much of a
    /// passcode matched, nor of its length, nor of whether the login exists (an unknown
    /// login is compared against a digest all the same).
    fn check(&self, login: &str, passcode: Option<&str>) -> Result<Identity, String> {
        use sha2::{Digest, Sha256};
        let given = Sha256::digest(passcode.unwrap_or("").as_bytes());
        let (known, expected) = match self.users.get(login) {
            Some(expected) => (true, Sha256::digest(expected.as_bytes())),
            None => (false, Sha256::digest(b"\0no such login\0")),
        };
        if constant_time_eq(&expected, &given) & known {
            Ok(Identity {
                login: Some(login.to_owned()),
                verified: true,
                ..Identity::default()
            })
        } else {
            Err("bad login or passcode".to_owned())
        }
    }
}

/// The secrets that turn authentication on, as the Worker's environment has them (`None`:
/// not set at all).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// `STOMP_JWT_SECRET`: an HS256 secret.
    pub jwt_secret: Option<String>,
    /// `STOMP_JWT_KEYS`: a JWK Set.
    pub jwt_keys: Option<String>,
    /// `STOMP_USERS`: a JSON object of login → passcode.
    pub users: Option<String>,
}

/// The gate these secrets set up: `None` when none is set (open rooms). `Err` says what is
/// wrong with one that is set, an empty one included, and the rooms then fail closed: a
/// secret meant to lock the rooms never leaves them open.
pub fn configure(secrets: &Secrets, rules: &TokenRules) -> Result<Option<Gate>, String> {
    let present = |name: &str, value: &Option<String>| -> Result<Option<String>, String> {
        match value.as_deref().map(str::trim) {
            None => Ok(None),
            Some("") => Err(format!(
                "{name} is set but empty; set it to a real value, or remove it to leave rooms open"
            )),
            Some(value) => Ok(Some(value.to_owned())),
        }
    };
    let mut keys = Vec::new();
    if let Some(secret) = present("STOMP_JWT_SECRET", &secrets.jwt_secret)? {
        keys.push(Key::shared_secret(&secret));
    }
    if let Some(jwks) = present("STOMP_JWT_KEYS", &secrets.jwt_keys)? {
        keys.extend(Key::parse_jwks(&jwks).map_err(|e| format!("STOMP_JWT_KEYS is invalid: {e}"))?);
    }
    let users = match present("STOMP_USERS", &secrets.users)? {
        None => None,
        Some(json) => Some(Credentials {
            users: serde_json::from_str::<HashMap<String, String>>(&json).map_err(|e| {
                format!("STOMP_USERS is not a JSON object of login -> passcode ({e})")
            })?,
        }),
    };
    let tokens = (!keys.is_empty()).then(|| Verifier::new(keys, rules.clone()));
    Ok((tokens.is_some() || users.is_some()).then_some(Gate { tokens, users }))
}

/// The CONNECT hook a room runs with: open rooms when no secret is set; a [`Gate`] when one
/// is. Misconfiguration fails closed: with settings that could not be read (`rules` is
/// `None`) or a secret that is wrong, everyone is refused, and the second value says what to
/// fix (for the operator's log; the clients are told to ask the operator).
pub fn hook(
    secrets: &Secrets,
    rules: Option<&TokenRules>,
) -> (Rc<dyn Authenticator>, Option<String>) {
    let Some(rules) = rules else {
        return (Rc::new(Misconfigured), None);
    };
    match configure(secrets, rules) {
        Ok(None) => (Rc::new(AllowAll), None),
        Ok(Some(gate)) => (Rc::new(gate), None),
        Err(problem) => (
            Rc::new(Misconfigured),
            Some(format!(
                "{problem}; refusing every connection until it is fixed"
            )),
        ),
    }
}

/// Refuses everyone: authentication was meant to be on but cannot be read.
struct Misconfigured;

impl Authenticator for Misconfigured {
    fn authenticate(&self, _request: &ConnectRequest) -> Result<Identity, String> {
        Err(
            "the room's authentication is misconfigured; ask its operator to check the logs"
                .to_owned(),
        )
    }
}

impl Authenticator for Credentials {
    fn authenticate(&self, request: &ConnectRequest) -> Result<Identity, String> {
        let login = request
            .login
            .ok_or("this room requires a login and passcode")?;
        self.check(login, request.passcode)
    }
}

/// A room with authentication configured: a token (in `Authorization: Bearer`, or as the
/// passcode) or, when `users` is set, a login and passcode. Nobody gets in without one.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    pub tokens: Option<Verifier>,
    pub users: Option<Credentials>,
}

impl Authenticator for Gate {
    fn authenticate(&self, request: &ConnectRequest) -> Result<Identity, String> {
        let token = request.bearer.or(request
            .passcode
            .filter(|passcode| looks_like_token(passcode)));
        match (&self.tokens, token, &self.users, request.login) {
            (Some(verifier), Some(token), _, _) => {
                let verified = verifier.verify(token, request.now_ms)?;
                if let Some(rooms) = &verified.rooms {
                    if !pattern::any_matches(rooms, request.room) {
                        return Err(format!(
                            "token does not allow room {} (its rooms claim allows {})",
                            request.room,
                            if rooms.is_empty() {
                                "none".to_owned()
                            } else {
                                rooms.join(", ")
                            }
                        ));
                    }
                }
                Ok(Identity {
                    login: Some(verified.login),
                    verified: true,
                    grants: verified.grants,
                    expires_ms: Some(verified.expires_ms),
                })
            }
            (None, _, Some(users), Some(login)) => users.check(login, request.passcode),
            (Some(_), _, Some(users), Some(login)) => users
                .check(login, request.passcode)
                .map_err(|_| format!("{NEEDS_A_TOKEN}, or a login and passcode this room knows")),
            (Some(_), _, _, _) => Err(NEEDS_A_TOKEN.to_owned()),
            (None, _, _, _) => Err("this room requires a login and passcode".to_owned()),
        }
    }
}

const NEEDS_A_TOKEN: &str = "this room requires a token: send it in an \
     `Authorization: Bearer <token>` header (or as the STOMP passcode, or as access_token in an \
     HTTP query)";

/// The credentials of an `Authorization: {scheme} {credentials}` value when the scheme is
/// `scheme` (schemes are case-insensitive, RFC 9110).
pub fn authorization_credentials<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, credentials) = value.trim().split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| credentials.trim())
}

/// `login:passcode` from HTTP Basic credentials (standard base64).
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let text = String::from_utf8(base64::decode(encoded, base64::STANDARD).ok()?).ok()?;
    let (login, passcode) = text.split_once(':')?;
    Some((login.to_owned(), passcode.to_owned()))
}

/// A JWT's compact form: three base64url parts. A passcode of that shape is taken as a token.
fn looks_like_token(text: &str) -> bool {
    text.split('.').count() == 3
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// Compares without an early exit, so timing does not reveal how much of a passcode matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
