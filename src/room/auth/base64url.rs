//! Base64url without padding (RFC 4648 §5), the encoding of a token's three parts.

/// Decodes unpadded base64url. Trailing `=` padding is tolerated; any other character outside
/// the alphabet, or a length no encoder produces, is an error.
pub fn decode(text: &str) -> Result<Vec<u8>, &'static str> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return Err("a base64url part has an impossible length");
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err("a part is not base64url"),
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_the_rfc_4648_vectors_without_padding() {
        for (encoded, plain) in [
            ("", ""),
            ("Zg", "f"),
            ("Zm8", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg", "foob"),
            ("Zm9vYmE", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9vYg==", "foob"),
        ] {
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes(), "{encoded}");
        }
        assert_eq!(decode("-_8").unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn refuses_other_alphabets_and_impossible_lengths() {
        assert!(
            decode("Zm9v+g").is_err(),
            "standard base64's + is not base64url"
        );
        assert!(decode("Zm9v/g").is_err());
        assert!(
            decode("Zm9vY").is_err(),
            "5 characters encode no whole byte count"
        );
        assert!(decode("Zm 9v").is_err());
    }
}
