//! Signing as [Standard Webhooks](https://www.standardwebhooks.com/) does it: HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, sent as `webhook-signature: v1,{base64}`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::settings::SigningKey;
use crate::room::http::encode_base64;

/// The `webhook-signature` value for a message with this id, timestamp (seconds) and body.
pub fn sign(key: &SigningKey, id: &str, timestamp_s: u64, body: &str) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.0) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp_s}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", encode_base64(&mac.finalize().into_bytes()))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Decodes base64 (RFC 4648 §4), padding optional.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, &'static str> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return Err("impossible base64 length");
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .ok_or("not base64")?;
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
    use crate::room::webhooks::WebhookSettings;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let settings = WebhookSettings {
            url: Some("https://example.com".into()),
            ..WebhookSettings::default()
        }
        .with_secret(Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        .expect("valid secret");
        assert_eq!(
            sign(
                &settings.key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn base64_decodes_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("Zm9v!").is_err());
    }
}
