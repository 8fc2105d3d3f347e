//! Signing as [Standard Webhooks](https://www.standardwebhooks.com/) does it: HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, sent as `webhook-signature: v1,{base64}`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::settings::SigningKey;
use crate::room::base64;

/// The `webhook-signature` value for a message with this id, timestamp (seconds) and body.
pub fn sign(key: &SigningKey, id: &str, timestamp_s: u64, body: &str) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.0) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp_s}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", base64::encode(&mac.finalize().into_bytes()))
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
}
