//! Header escaping, which differs by version.
//!
//! | version | escapes |
//! | --- | --- |
//! | 1.2 | `\r` `\n` `\c` `\\` |
//! | 1.1 | `\n` `\c` `\\` |
//! | 1.0 | none |
//!
//! CONNECT, STOMP and CONNECTED frames are never escaped (the version is not yet agreed).
//! Decoding an escape the version does not define is a protocol error.

use super::version::Version;

/// Undoes escaping in a received header name or value. `Err` carries the bad escape sequence.
pub fn unescape(raw: &str, version: Version) -> Result<String, String> {
    if version == Version::V1_0 || !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match (chars.next(), version) {
            (Some('n'), _) => out.push('\n'),
            (Some('c'), _) => out.push(':'),
            (Some('\\'), _) => out.push('\\'),
            (Some('r'), Version::V1_2) => out.push('\r'),
            (Some(other), _) => return Err(format!("\\{other}")),
            (None, _) => return Err("\\ at the end of a header".to_owned()),
        }
    }
    Ok(out)
}

/// Appends `text` to `out`, escaped for `version`.
///
/// STOMP 1.0 has no escapes and 1.1 none for CR, so characters those versions cannot carry are
/// replaced by a space rather than let them break the frame apart.
pub fn escape_into(out: &mut Vec<u8>, text: &str, version: Option<Version>) {
    let needs_work = text
        .bytes()
        .any(|b| matches!(b, b'\r' | b'\n' | b':' | b'\\'));
    if !needs_work {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for b in text.bytes() {
        match (b, version) {
            (b'\r', Some(Version::V1_2)) => out.extend_from_slice(b"\\r"),
            (b'\n', Some(Version::V1_1 | Version::V1_2)) => out.extend_from_slice(b"\\n"),
            (b':', Some(Version::V1_1 | Version::V1_2)) => out.extend_from_slice(b"\\c"),
            (b'\\', Some(Version::V1_1 | Version::V1_2)) => out.extend_from_slice(b"\\\\"),
            (b'\r' | b'\n', _) => out.push(b' '),
            (other, _) => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str, version: Option<Version>) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, text, version);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_per_version() {
        let text = "a:b\\c\nd\re";
        assert_eq!(escaped(text, Some(Version::V1_2)), "a\\cb\\\\c\\nd\\re");
        assert_eq!(escaped(text, Some(Version::V1_1)), "a\\cb\\\\c\\nd e");
        assert_eq!(escaped(text, Some(Version::V1_0)), "a:b\\c d e");
        assert_eq!(escaped(text, None), "a:b\\c d e");
    }

    #[test]
    fn unescapes_per_version() {
        assert_eq!(
            unescape("a\\cb\\\\c\\nd\\re", Version::V1_2).unwrap(),
            "a:b\\c\nd\re"
        );
        assert_eq!(
            unescape("a\\cb\\\\c\\nd", Version::V1_1).unwrap(),
            "a:b\\c\nd"
        );
        assert_eq!(unescape("a\\r", Version::V1_1), Err("\\r".to_owned()));
        assert_eq!(unescape("a\\t", Version::V1_2), Err("\\t".to_owned()));
        assert_eq!(
            unescape("a\\", Version::V1_2),
            Err("\\ at the end of a header".to_owned())
        );
        assert_eq!(unescape("a\\t", Version::V1_0).unwrap(), "a\\t");
    }

    #[test]
    fn round_trips() {
        for version in [Version::V1_1, Version::V1_2] {
            for text in ["plain", "x:y", "\\\\", "line\nbreak", "::\n\\c"] {
                assert_eq!(
                    unescape(&escaped(text, Some(version)), version).unwrap(),
                    text
                );
            }
        }
    }
}
