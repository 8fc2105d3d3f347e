//! Base64 (RFC 4648): the standard alphabet for webhook signatures and secrets and for binary
//! bodies in JSON, the URL-safe one for a token's three parts.

/// An alphabet's 64 characters, in value order.
pub type Alphabet = [u8; 64];

/// The standard alphabet (RFC 4648 §4).
pub const STANDARD: &Alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The URL- and filename-safe alphabet (RFC 4648 §5), a JWT's.
pub const URL_SAFE: &Alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes with the standard alphabet, padded with `=`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(STANDARD[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes with `alphabet`. Trailing `=` padding is tolerated, not required; any other
/// character outside the alphabet, or a length no encoder produces, is an error.
pub fn decode(text: &str, alphabet: &Alphabet) -> Result<Vec<u8>, &'static str> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return Err("base64 of an impossible length");
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = alphabet
            .iter()
            .position(|&a| a == byte)
            .ok_or("a character outside base64's alphabet")?;
        buffer = (buffer << 6) | value as u32;
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
    use super::*;

    #[test]
    fn matches_the_rfc_4648_vectors_padded_or_not() {
        for (plain, encoded, unpadded) in [
            ("", "", ""),
            ("f", "Zg==", "Zg"),
            ("fo", "Zm8=", "Zm8"),
            ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"),
            ("fooba", "Zm9vYmE=", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), encoded);
            for alphabet in [STANDARD, URL_SAFE] {
                assert_eq!(decode(encoded, alphabet).unwrap(), plain.as_bytes());
                assert_eq!(decode(unpadded, alphabet).unwrap(), plain.as_bytes());
            }
        }
        assert_eq!(decode("-_8", URL_SAFE).unwrap(), [0xfb, 0xff]);
        assert_eq!(decode("+/8", STANDARD).unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn refuses_the_other_alphabet_strangers_and_impossible_lengths() {
        assert!(decode("Zm9v+g", URL_SAFE).is_err(), "+ is not base64url");
        assert!(decode("Zm9v/g", URL_SAFE).is_err());
        assert!(decode("Zm9v-g", STANDARD).is_err(), "- is not standard");
        assert!(
            decode("Zm9vY", STANDARD).is_err(),
            "5 characters: no whole bytes"
        );
        assert!(decode("Zm 9v", URL_SAFE).is_err());
        assert!(decode("Zm9v!", STANDARD).is_err());
    }
}
