//! The keys a room verifies tokens with: a shared HS256 secret, and JSON Web Keys (RFC 7517)
//! for ES256 public keys. Each key verifies one algorithm only, which is what stops algorithm
//! confusion: an HS256 token is never checked against a public key's bytes, nor the reverse.

use p256::ecdsa::VerifyingKey;
use serde::Deserialize;

use crate::room::base64;

/// The algorithms a token may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC with SHA-256 and a shared secret.
    Hs256,
    /// ECDSA on P-256 with SHA-256; the room holds only the public key.
    Es256,
}

impl Algorithm {
    pub const ACCEPTED: &'static str = "HS256, ES256";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Es256 => "ES256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub enum KeyMaterial {
    Hmac(Vec<u8>),
    P256(VerifyingKey),
}

/// One verification key, with the `kid` a token may name it by.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub material: KeyMaterial,
}

impl std::fmt::Debug for Key {
    // Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish()
    }
}

impl Key {
    /// A shared HS256 secret: the bytes of the configured string.
    pub fn shared_secret(secret: &str) -> Self {
        Self {
            kid: None,
            material: KeyMaterial::Hmac(secret.as_bytes().to_vec()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            KeyMaterial::Hmac(_) => Algorithm::Hs256,
            KeyMaterial::P256(_) => Algorithm::Es256,
        }
    }

    /// Reads a JWK Set (`{"keys": [...]}`) or a single JWK. Every key must be usable: a typo
    /// in a key is a configuration error, not a key silently skipped.
    pub fn parse_jwks(json: &str) -> Result<Vec<Key>, String> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Document {
            Set { keys: Vec<Jwk> },
            One(Jwk),
        }
        let document: Document =
            serde_json::from_str(json).map_err(|e| format!("not a JWK Set or a JWK ({e})"))?;
        let jwks = match document {
            Document::Set { keys } => keys,
            Document::One(jwk) => vec![jwk],
        };
        if jwks.is_empty() {
            return Err("the JWK Set has no keys".to_owned());
        }
        jwks.into_iter()
            .enumerate()
            .map(|(i, jwk)| jwk.into_key().map_err(|e| format!("key {i}: {e}")))
            .collect()
    }
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

impl Jwk {
    fn into_key(self) -> Result<Key, String> {
        if self.usage.as_deref().is_some_and(|usage| usage != "sig") {
            return Err("its \"use\" is not \"sig\"".to_owned());
        }
        let field = |value: Option<String>, name: &str| {
            let value = value.ok_or_else(|| format!("{} key without {name:?}", self.kty))?;
            base64::decode(&value, base64::URL_SAFE).map_err(|e| format!("{name:?}: {e}"))
        };
        let (material, algorithm) = match self.kty.as_str() {
            "EC" => {
                if self.crv.as_deref() != Some("P-256") {
                    return Err(format!(
                        "curve {:?} is not supported: use P-256 (ES256)",
                        self.crv.as_deref().unwrap_or("")
                    ));
                }
                let (x, y) = (field(self.x.clone(), "x")?, field(self.y.clone(), "y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("P-256 coordinates are 32 bytes each".to_owned());
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let key = VerifyingKey::from_sec1_bytes(&point)
                    .map_err(|_| "x, y is not a point on P-256".to_owned())?;
                (KeyMaterial::P256(key), "ES256")
            }
            "oct" => {
                let secret = field(self.k.clone(), "k")?;
                if secret.is_empty() {
                    return Err("an empty HS256 secret".to_owned());
                }
                (KeyMaterial::Hmac(secret), "HS256")
            }
            other => {
                return Err(format!(
                    "key type {other:?} is not supported: use EC P-256 (ES256) or oct (HS256)"
                ))
            }
        };
        if let Some(alg) = self.alg.as_deref().filter(|alg| *alg != algorithm) {
            return Err(format!("a {} key cannot verify {alg}", self.kty));
        }
        Ok(Key {
            kid: self.kid,
            material,
        })
    }
}
