//! JSON Web Tokens (RFC 7519) signed with HS256 or ES256: the checks a room makes before a
//! token's `sub` becomes a verified login. Nothing here trusts the token before its signature
//! is checked, and nothing derived from it can panic: every failure is a reason for the client.

use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::Signature;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::grants::{Grants, MAX_GRANT_BYTES};
use super::keys::{Algorithm, Key, KeyMaterial};
use crate::room::base64;

/// The longest token accepted, in bytes; a CONNECT header can be far longer.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// The longest encoded header accepted: a real one is under 100 bytes.
const MAX_HEADER_CHARS: usize = 1024;
/// The most patterns in one claim.
const MAX_PATTERNS: usize = 64;

/// What a valid token must also say (`auth` in the settings).
/// Unknown keys are refused, so a misspelt `audiance` cannot switch a check off unseen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenRules {
    /// When set, the token's `iss` must equal it.
    pub issuer: Option<String>,
    /// When set, the token's `aud` (a string or an array) must include it.
    pub audience: Option<String>,
    /// The claim that names the user. Default `sub`.
    pub login_claim: String,
    /// Clock skew allowed for `exp` and `nbf`, in seconds. Default 30.
    pub leeway_s: u64,
}

impl Default for TokenRules {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            login_claim: "sub".to_owned(),
            leeway_s: 30,
        }
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub login: String,
    /// When a connection using it must end: `exp` plus the leeway, in ms.
    pub expires_ms: u64,
    /// Room name patterns it may enter; `None` for any room.
    pub rooms: Option<Vec<String>>,
    pub grants: Grants,
}

/// Checks tokens against the configured keys and rules.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<Key>,
    rules: TokenRules,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

impl Verifier {
    pub fn new(keys: Vec<Key>, rules: TokenRules) -> Self {
        Self { keys, rules }
    }

    /// Verifies `token` at `now_ms`: signature first, then the claims.
    pub fn verify(&self, token: &str, now_ms: u64) -> Result<Verified, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!(
                "malformed token: longer than {MAX_TOKEN_BYTES} bytes"
            ));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(
                "malformed token: a JWT is three base64url parts separated by dots".to_owned(),
            );
        };
        if header.len() > MAX_HEADER_CHARS {
            return Err(format!(
                "malformed token: its header is longer than {MAX_HEADER_CHARS} characters"
            ));
        }
        let header: Header = serde_json::from_slice(&decode("header", header)?)
            .map_err(|e| format!("malformed token: its header is not a JOSE header ({e})"))?;
        if header.crit.is_some() {
            return Err(
                "token header lists critical extensions (crit) this room does not support"
                    .to_owned(),
            );
        }
        let algorithm = match header.alg.as_str() {
            "none" => return Err("token algorithm \"none\" is not accepted".to_owned()),
            name => Algorithm::parse(name).ok_or_else(|| {
                format!(
                    "token algorithm {name:?} is not accepted (accepted: {})",
                    Algorithm::ACCEPTED
                )
            })?,
        };
        let signature = decode("signature", signature)?;
        let signed = &token.as_bytes()[..header_len(token)];
        self.check_signature(algorithm, header.kid.as_deref(), signed, &signature)?;
        let claims: Map<String, Value> = serde_json::from_slice(&decode("payload", payload)?)
            .map_err(|e| format!("malformed token: its payload is not a JSON object ({e})"))?;
        self.check_claims(&claims, now_ms)
    }

    fn check_signature(
        &self,
        algorithm: Algorithm,
        kid: Option<&str>,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        let mut candidates = self
            .keys
            .iter()
            .filter(|key| key.algorithm() == algorithm)
            .filter(|key| match (kid, key.kid.as_deref()) {
                (Some(wanted), Some(named)) => wanted == named,
                _ => true,
            })
            .peekable();
        if candidates.peek().is_none() {
            return Err(format!(
                "bad token signature: this room has no {} key{}",
                algorithm.as_str(),
                kid.map(|kid| format!(" with kid {kid:?}"))
                    .unwrap_or_default()
            ));
        }
        let valid = candidates.any(|key| match &key.material {
            KeyMaterial::Hmac(secret) => Hmac::<Sha256>::new_from_slice(secret)
                .map(|mut mac| {
                    mac.update(signed);
                    mac.verify_slice(signature).is_ok()
                })
                .unwrap_or(false),
            KeyMaterial::P256(public) => Signature::from_slice(signature)
                .map(|signature| public.verify(signed, &signature).is_ok())
                .unwrap_or(false),
        });
        if valid {
            Ok(())
        } else {
            Err("bad token signature".to_owned())
        }
    }

    fn check_claims(&self, claims: &Map<String, Value>, now_ms: u64) -> Result<Verified, String> {
        let leeway_ms = self.rules.leeway_s.saturating_mul(1000);
        let now_s = now_ms / 1000;
        let exp = seconds(claims, "exp")?
            .ok_or("token has no exp claim; this room requires tokens that expire")?;
        let expires_ms = exp.saturating_mul(1000).saturating_add(leeway_ms);
        if now_ms >= expires_ms {
            return Err(format!(
                "token expired (exp {exp}, now {now_s}): fetch a fresh token and reconnect"
            ));
        }
        if let Some(nbf) = seconds(claims, "nbf")? {
            if now_ms.saturating_add(leeway_ms) < nbf.saturating_mul(1000) {
                return Err(format!("token not yet valid (nbf {nbf}, now {now_s})"));
            }
        }
        if let Some(issuer) = &self.rules.issuer {
            let got = claims.get("iss").and_then(Value::as_str);
            if got != Some(issuer.as_str()) {
                return Err(format!(
                    "token issuer {} is not {issuer:?}",
                    got.map_or("(none)".to_owned(), |got| format!("{got:?}"))
                ));
            }
        }
        if let Some(audience) = &self.rules.audience {
            let included = match claims.get("aud") {
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
                _ => false,
            };
            if !included {
                return Err(format!("token audience does not include {audience:?}"));
            }
        }
        let claim = &self.rules.login_claim;
        let login = claims
            .get(claim)
            .and_then(Value::as_str)
            .filter(|login| !login.is_empty())
            .ok_or_else(|| format!("token has no {claim} string claim to use as the login"))?
            .to_owned();
        let grants = Grants {
            subscribe: patterns(claims, "subscribe")?,
            publish: patterns(claims, "publish")?,
        };
        let rooms = patterns(claims, "rooms")?;
        let size = grants.size();
        if size > MAX_GRANT_BYTES {
            return Err(format!(
                "token's subscribe and publish claims hold {size} bytes of patterns; at most {MAX_GRANT_BYTES}"
            ));
        }
        Ok(Verified {
            login,
            expires_ms,
            rooms,
            grants,
        })
    }
}

/// Length of `header.payload`, the part a signature covers.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode(part: &str, text: &str) -> Result<Vec<u8>, String> {
    base64::decode(text, base64::URL_SAFE).map_err(|e| format!("malformed token: its {part}: {e}"))
}

/// A NumericDate claim in whole seconds (fractions are cut, as RFC 7519 allows).
fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(s), _) => Ok(Some(s)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
            _ => Err(format!("malformed token: {name} is not a time")),
        },
        Some(_) => Err(format!(
            "malformed token: {name} must be a number of seconds"
        )),
    }
}

/// A claim of patterns: absent for no restriction, one string or an array of strings.
fn patterns(claims: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, String> {
    let wrong = || format!("malformed token: {name} must be an array of strings");
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(one)) => Ok(Some(vec![one.clone()])),
        Some(Value::Array(items)) if items.len() <= MAX_PATTERNS => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::Array(_)) => Err(format!(
            "malformed token: {name} has more than {MAX_PATTERNS} patterns"
        )),
        Some(_) => Err(wrong()),
    }
}
