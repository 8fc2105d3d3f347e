//! The rule for room names, which appear in URLs (`/rooms/{room}`) and name Durable Objects.
//!
//! A room name is 1 to [`MAX_LEN`] ASCII characters from `A-Z a-z 0-9 - _ .`, starting with a
//! letter or digit. Names are case-sensitive: `Lobby` and `lobby` are different rooms. The rule
//! keeps names safe to print, to put in a URL without escaping, and to use as an object name.

/// Longest accepted room name, in characters.
pub const MAX_LEN: usize = 64;

/// Why a room name was refused; `Display` gives the plain-text reason sent with a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomNameError {
    Empty,
    TooLong { len: usize },
    BadStart,
    BadCharacter { position: usize },
}

impl std::fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const RULE: &str = "room names are 1-64 characters from A-Z a-z 0-9 - _ . and start with a letter or digit";
        match self {
            Self::Empty => write!(f, "missing room name: use /rooms/{{room}}; {RULE}"),
            Self::TooLong { len } => write!(f, "room name is {len} characters long; {RULE}"),
            Self::BadStart => write!(f, "room name must start with a letter or digit; {RULE}"),
            Self::BadCharacter { position } => {
                write!(
                    f,
                    "room name has a character that is not allowed at position {}; {RULE}",
                    position + 1
                )
            }
        }
    }
}

impl std::error::Error for RoomNameError {}

/// Checks `name` against the rule and returns it unchanged when it passes.
pub fn validate(name: &str) -> Result<&str, RoomNameError> {
    let bytes = name.as_bytes();
    let first = bytes.first().ok_or(RoomNameError::Empty)?;
    if bytes.len() > MAX_LEN {
        return Err(RoomNameError::TooLong {
            len: name.chars().count(),
        });
    }
    if !first.is_ascii_alphanumeric() {
        return Err(RoomNameError::BadStart);
    }
    match bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
    {
        Some(position) => Err(RoomNameError::BadCharacter { position }),
        None => Ok(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["lobby", "Team-42", "a", "r.1_x", &"x".repeat(MAX_LEN)] {
            assert_eq!(validate(name), Ok(name));
        }
    }

    #[test]
    fn refuses_bad_names_with_reason() {
        assert_eq!(validate(""), Err(RoomNameError::Empty));
        assert_eq!(
            validate(&"x".repeat(65)),
            Err(RoomNameError::TooLong { len: 65 })
        );
        assert_eq!(validate(".hidden"), Err(RoomNameError::BadStart));
        assert_eq!(validate("-x"), Err(RoomNameError::BadStart));
        assert_eq!(
            validate("a b"),
            Err(RoomNameError::BadCharacter { position: 1 })
        );
        assert_eq!(
            validate("a/b"),
            Err(RoomNameError::BadCharacter { position: 1 })
        );
        assert_eq!(
            validate("caf\u{e9}"),
            Err(RoomNameError::BadCharacter { position: 3 })
        );
        assert_eq!(
            validate("a%20b"),
            Err(RoomNameError::BadCharacter { position: 1 })
        );
        let reason = validate("a b").unwrap_err().to_string();
        assert!(reason.contains("position 2"), "{reason}");
        assert!(reason.contains("1-64 characters"), "{reason}");
    }
}
