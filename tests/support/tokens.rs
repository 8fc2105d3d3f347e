//! Mints test tokens the way an application's backend would: HS256 with a shared secret and
//! ES256 with a P-256 private key, over any header and claims (also ones a backend never should).

use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::Value;
use sha2::Sha256;

use stomp_rooms::room::auth::{Key, TokenRules, Verifier};

pub const SECRET: &str = "test secret, at least 32 bytes long";

pub fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// `header.payload` of a token with these JSON parts.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

pub fn hs256_with(secret: &str, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

pub fn hs256(claims: &Value) -> String {
    hs256_with(
        SECRET,
        &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
        claims,
    )
}

/// A fixed P-256 key pair for tests.
pub fn es256_key() -> SigningKey {
    SigningKey::from_slice(&[7u8; 32]).expect("a valid scalar")
}

pub fn es256_with(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

pub fn es256(claims: &Value) -> String {
    es256_with(&es256_key(), &serde_json::json!({"alg": "ES256"}), claims)
}

/// The public half of [`es256_key`] as a JWK Set, as an operator configures it.
pub fn es256_jwks() -> String {
    let point = es256_key().verifying_key().to_encoded_point(false);
    serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "k1",
        "x": b64(point.x().expect("uncompressed")), "y": b64(point.y().expect("uncompressed")),
    }]})
    .to_string()
}

/// Verifies with the shared secret and the ES256 public key, these rules.
pub fn verifier(rules: TokenRules) -> Verifier {
    let mut keys = vec![Key::shared_secret(SECRET)];
    keys.extend(Key::parse_jwks(&es256_jwks()).expect("valid JWKS"));
    Verifier::new(keys, rules)
}
