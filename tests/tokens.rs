//! Token verification rules: what a valid HS256 or ES256 token gives, and every way a token is
//! refused, including a table of malformed tokens that must be refused without a panic.

mod support;

use serde_json::json;
use stomp_rooms::room::auth::{Key, TokenRules, Verifier};
use support::tokens::*;

const NOW_S: u64 = 1_800_000_000;
const NOW_MS: u64 = NOW_S * 1000;

fn rules() -> TokenRules {
    TokenRules {
        issuer: Some("https://auth.example".into()),
        audience: Some("stomp-rooms".into()),
        ..TokenRules::default()
    }
}

fn claims() -> serde_json::Value {
    json!({"sub": "alice", "iss": "https://auth.example", "aud": "stomp-rooms", "exp": NOW_S + 60})
}

fn with(
    claims: serde_json::Value,
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> serde_json::Value {
    let mut claims = claims;
    change(claims.as_object_mut().expect("an object"));
    claims
}

fn refusal(token: &str) -> String {
    verifier(rules())
        .verify(token, NOW_MS)
        .expect_err("the token must be refused")
}

#[test]
fn a_valid_hs256_token_gives_its_sub_and_expiry_with_leeway() {
    let verified = verifier(rules()).verify(&hs256(&claims()), NOW_MS).unwrap();
    assert_eq!(verified.login, "alice");
    assert_eq!(verified.expires_ms, (NOW_S + 60 + 30) * 1000);
    assert_eq!(verified.rooms, None);
    assert!(verified.grants.is_unrestricted());
}

#[test]
fn a_valid_es256_token_gives_its_sub() {
    let verified = verifier(rules()).verify(&es256(&claims()), NOW_MS).unwrap();
    assert_eq!(verified.login, "alice");
}

#[test]
fn an_es256_token_naming_its_key_by_kid_verifies_and_an_unknown_kid_is_refused() {
    let header = json!({"alg": "ES256", "kid": "k1"});
    assert!(verifier(rules())
        .verify(&es256_with(&es256_key(), &header, &claims()), NOW_MS)
        .is_ok());
    let header = json!({"alg": "ES256", "kid": "other"});
    assert_eq!(
        refusal(&es256_with(&es256_key(), &header, &claims())),
        "bad token signature: this room has no ES256 key with kid \"other\""
    );
}

#[test]
fn the_login_claim_and_permission_claims_are_read() {
    let rules = TokenRules {
        login_claim: "preferred_username".into(),
        ..rules()
    };
    let token = hs256(&with(claims(), |c| {
        c.insert("preferred_username".into(), json!("Alice A."));
        c.insert("rooms".into(), json!(["lobby", "team-*"]));
        c.insert("subscribe".into(), json!("/topic/**"));
        c.insert("publish".into(), json!([]));
    }));
    let verified = verifier(rules).verify(&token, NOW_MS).unwrap();
    assert_eq!(verified.login, "Alice A.");
    assert_eq!(verified.rooms, Some(vec!["lobby".into(), "team-*".into()]));
    assert_eq!(verified.grants.subscribe, Some(vec!["/topic/**".into()]));
    assert_eq!(verified.grants.publish, Some(vec![]));
}

#[test]
fn time_claims_are_checked_with_the_leeway() {
    let expired = hs256(&with(claims(), |c| {
        c.insert("exp".into(), json!(NOW_S - 31));
    }));
    assert!(
        refusal(&expired).starts_with("token expired"),
        "{}",
        refusal(&expired)
    );
    let within_leeway = hs256(&with(claims(), |c| {
        c.insert("exp".into(), json!(NOW_S - 29));
    }));
    assert!(verifier(rules()).verify(&within_leeway, NOW_MS).is_ok());
    let early = hs256(&with(claims(), |c| {
        c.insert("nbf".into(), json!(NOW_S + 31));
    }));
    assert!(refusal(&early).starts_with("token not yet valid"));
    let nearly = hs256(&with(claims(), |c| {
        c.insert("nbf".into(), json!(NOW_S + 29));
    }));
    assert!(verifier(rules()).verify(&nearly, NOW_MS).is_ok());
    let no_exp = hs256(&with(claims(), |c| {
        c.remove("exp");
    }));
    assert!(refusal(&no_exp).starts_with("token has no exp claim"));
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let wrong_issuer = hs256(&with(claims(), |c| {
        c.insert("iss".into(), json!("https://evil.example"));
    }));
    assert_eq!(
        refusal(&wrong_issuer),
        "token issuer \"https://evil.example\" is not \"https://auth.example\""
    );
    let wrong_audience = hs256(&with(claims(), |c| {
        c.insert("aud".into(), json!(["other-app"]));
    }));
    assert_eq!(
        refusal(&wrong_audience),
        "token audience does not include \"stomp-rooms\""
    );
    let audience_list = hs256(&with(claims(), |c| {
        c.insert("aud".into(), json!(["other-app", "stomp-rooms"]));
    }));
    assert!(verifier(rules()).verify(&audience_list, NOW_MS).is_ok());
    let unchecked = verifier(TokenRules::default());
    let anything = hs256(&with(claims(), |c| {
        c.remove("iss");
        c.remove("aud");
    }));
    assert!(unchecked.verify(&anything, NOW_MS).is_ok());
}

#[test]
fn a_wrong_signature_is_refused() {
    let other_secret = hs256_with("another secret", &json!({"alg": "HS256"}), &claims());
    assert_eq!(refusal(&other_secret), "bad token signature");
    let token = hs256(&claims());
    let (head, _) = token.rsplit_once('.').unwrap();
    let payload = b64(with(claims(), |c| {
        c.insert("sub".into(), json!("mallory"));
    })
    .to_string()
    .as_bytes());
    let forged = format!(
        "{}.{payload}.{}",
        head.split('.').next().unwrap(),
        token.rsplit('.').next().unwrap()
    );
    assert_eq!(refusal(&forged), "bad token signature", "a changed payload");
}

#[test]
fn alg_none_is_refused() {
    let input = signing_input(&json!({"alg": "none"}), &claims());
    assert_eq!(
        refusal(&format!("{input}.")),
        "token algorithm \"none\" is not accepted"
    );
}

#[test]
fn algorithm_confusion_is_refused() {
    // The classic attack: sign HS256 with the public key's bytes as the secret.
    let public_jwks = es256_jwks();
    let confused = hs256_with(
        &public_jwks,
        &json!({"alg": "HS256", "kid": "k1"}),
        &claims(),
    );
    let only_public = Verifier::new(Key::parse_jwks(&public_jwks).unwrap(), rules());
    assert_eq!(
        only_public.verify(&confused, NOW_MS).unwrap_err(),
        "bad token signature: this room has no HS256 key with kid \"k1\""
    );
    // An HS256 signature presented as ES256, and the reverse.
    let token = hs256(&claims());
    let relabelled = format!(
        "{}.{}",
        signing_input(&json!({"alg": "ES256"}), &claims()),
        token.rsplit('.').next().unwrap()
    );
    assert_eq!(refusal(&relabelled), "bad token signature");
    let token = es256(&claims());
    let relabelled = format!(
        "{}.{}",
        signing_input(&json!({"alg": "HS256"}), &claims()),
        token.rsplit('.').next().unwrap()
    );
    assert_eq!(refusal(&relabelled), "bad token signature");
    for alg in ["RS256", "HS512", "PS256", "ES384", "EdDSA"] {
        let input = signing_input(&json!({ "alg": alg }), &claims());
        assert_eq!(
            refusal(&format!("{input}.c2ln")),
            format!("token algorithm {alg:?} is not accepted (accepted: HS256, ES256)")
        );
    }
}

#[test]
fn malformed_tokens_are_refused_without_a_panic() {
    let valid = hs256(&claims());
    // Header problems are found before the signature is checked: any signature will do.
    let sign = |header: &str, payload: &str| {
        format!(
            "{}.{}.c2ln",
            b64(header.as_bytes()),
            b64(payload.as_bytes())
        )
    };
    let signed_raw = |header: &str, payload: &str| {
        use hmac::Mac;
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    };
    let huge_header = format!("{{\"alg\":\"HS256\",\"x\":\"{}\"}}", "a".repeat(2000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "malformed token"),
        ("one part", "abc".into(), "malformed token"),
        ("two parts", "abc.def".into(), "malformed token"),
        ("four parts", format!("{valid}.x"), "malformed token"),
        (
            "bad base64 header",
            format!("!!.{}", &valid[valid.find('.').unwrap() + 1..]),
            "malformed token",
        ),
        (
            "impossible base64 length",
            "a.b.c".into(),
            "malformed token",
        ),
        ("header not JSON", sign("not json", "{}"), "malformed token"),
        ("header JSON array", sign("[1,2]", "{}"), "malformed token"),
        (
            "alg not a string",
            sign("{\"alg\":7}", "{}"),
            "malformed token",
        ),
        ("no alg", sign("{\"typ\":\"JWT\"}", "{}"), "malformed token"),
        ("huge header", sign(&huge_header, "{}"), "malformed token"),
        (
            "too long",
            format!("{valid}{}", "A".repeat(9000)),
            "malformed token",
        ),
        (
            "crit",
            sign("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "{}"),
            "crit",
        ),
        (
            "bad base64 signature",
            format!("{}.***", &valid[..valid.rfind('.').unwrap()]),
            "malformed token",
        ),
        (
            "empty signature",
            format!("{}.", &valid[..valid.rfind('.').unwrap()]),
            "bad token signature",
        ),
        (
            "payload not JSON",
            signed_raw("{\"alg\":\"HS256\"}", "not json"),
            "malformed token",
        ),
        (
            "payload an array",
            signed_raw("{\"alg\":\"HS256\"}", "[]"),
            "malformed token",
        ),
        (
            "payload a string",
            signed_raw("{\"alg\":\"HS256\"}", "\"x\""),
            "malformed token",
        ),
        (
            "exp a string",
            signed_raw(
                "{\"alg\":\"HS256\"}",
                "{\"sub\":\"a\",\"exp\":\"tomorrow\"}",
            ),
            "malformed token: exp",
        ),
        (
            "exp negative",
            signed_raw("{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":-1}"),
            "malformed token: exp",
        ),
        (
            "exp a boolean",
            signed_raw("{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":true}"),
            "malformed token: exp",
        ),
        (
            "nbf an object",
            signed_raw(
                "{\"alg\":\"HS256\"}",
                &format!("{{\"sub\":\"a\",\"exp\":{},\"nbf\":{{}}}}", NOW_S + 60),
            ),
            "malformed token: nbf",
        ),
        (
            "sub a number",
            signed_raw(
                "{\"alg\":\"HS256\"}",
                &format!("{{\"sub\":7,\"exp\":{}}}", NOW_S + 60),
            ),
            "no sub string claim",
        ),
        (
            "sub empty",
            signed_raw(
                "{\"alg\":\"HS256\"}",
                &format!("{{\"sub\":\"\",\"exp\":{}}}", NOW_S + 60),
            ),
            "no sub string claim",
        ),
        (
            "rooms a number",
            signed_raw(
                "{\"alg\":\"HS256\"}",
                &format!("{{\"sub\":\"a\",\"exp\":{},\"rooms\":5}}", NOW_S + 60),
            ),
            "malformed token: rooms",
        ),
        (
            "publish with a number",
            signed_raw(
                "{\"alg\":\"HS256\"}",
                &format!(
                    "{{\"sub\":\"a\",\"exp\":{},\"publish\":[\"/topic/a\",5]}}",
                    NOW_S + 60
                ),
            ),
            "malformed token: publish",
        ),
        (
            "too many patterns",
            signed_raw(
                "{\"alg\":\"HS256\"}",
                &format!(
                    "{{\"sub\":\"a\",\"exp\":{},\"subscribe\":{}}}",
                    NOW_S + 60,
                    json!(vec!["/topic/a"; 65])
                ),
            ),
            "more than 64 patterns",
        ),
        (
            "patterns too large",
            signed_raw(
                "{\"alg\":\"HS256\"}",
                &format!(
                    "{{\"sub\":\"a\",\"exp\":{},\"subscribe\":[\"{}\"]}}",
                    NOW_S + 60,
                    "x".repeat(600)
                ),
            ),
            "at most 512",
        ),
        ("non-ASCII", "é.é.é".into(), "malformed token"),
    ];
    let verifier = Verifier::new(vec![Key::shared_secret(SECRET)], TokenRules::default());
    for (name, token, expected) in cases {
        match verifier.verify(&token, NOW_MS) {
            Ok(verified) => panic!("{name}: accepted as {verified:?}"),
            Err(reason) => assert!(
                reason.contains(expected),
                "{name}: refused with {reason:?}, expected it to mention {expected:?}"
            ),
        }
    }
}

#[test]
fn key_configuration_errors_name_the_problem() {
    let cases = [
        ("not json", "not a JWK Set or a JWK"),
        ("{\"keys\": []}", "no keys"),
        (
            "{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}",
            "use EC P-256 (ES256) or oct (HS256)",
        ),
        (
            "{\"kty\": \"EC\", \"crv\": \"P-384\", \"x\": \"AA\", \"y\": \"AA\"}",
            "curve \"P-384\"",
        ),
        (
            "{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AA\", \"y\": \"AA\"}",
            "32 bytes",
        ),
        (
            "{\"kty\": \"oct\", \"k\": \"c2VjcmV0\", \"alg\": \"ES256\"}",
            "cannot verify ES256",
        ),
        (
            "{\"kty\": \"oct\", \"k\": \"c2VjcmV0\", \"use\": \"enc\"}",
            "\"use\"",
        ),
        ("{\"kty\": \"oct\"}", "without \"k\""),
    ];
    for (jwks, expected) in cases {
        let error = Key::parse_jwks(jwks).expect_err(jwks);
        assert!(
            error.contains(expected),
            "{jwks}: {error:?} should mention {expected:?}"
        );
    }
    let point = format!(
        "{{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"{}\",\"y\":\"{}\"}}",
        b64(&[1; 32]),
        b64(&[2; 32])
    );
    assert!(Key::parse_jwks(&point)
        .unwrap_err()
        .contains("not a point on P-256"));
    let oct = format!("{{\"kty\":\"oct\",\"k\":\"{}\"}}", b64(SECRET.as_bytes()));
    let verifier = Verifier::new(Key::parse_jwks(&oct).unwrap(), rules());
    assert!(
        verifier.verify(&hs256(&claims()), NOW_MS).is_ok(),
        "an oct JWK is an HS256 secret"
    );
}

#[test]
fn secrets_set_but_empty_fail_closed_and_none_set_leaves_rooms_open() {
    use stomp_rooms::room::auth::{configure, Secrets};
    assert!(
        configure(&Secrets::default(), &rules()).unwrap().is_none(),
        "open rooms"
    );
    let empty = Some(String::new());
    let blank = Some("  ".to_owned());
    let cases = [
        (
            Secrets {
                jwt_secret: empty.clone(),
                ..Secrets::default()
            },
            "STOMP_JWT_SECRET is set but empty",
        ),
        (
            Secrets {
                jwt_keys: blank,
                ..Secrets::default()
            },
            "STOMP_JWT_KEYS is set but empty",
        ),
        (
            Secrets {
                users: empty,
                ..Secrets::default()
            },
            "STOMP_USERS is set but empty",
        ),
        (
            Secrets {
                users: Some("[1]".to_owned()),
                ..Secrets::default()
            },
            "not a JSON object",
        ),
    ];
    for (secrets, problem) in cases {
        let refused = configure(&secrets, &rules()).expect_err(problem);
        assert!(refused.contains(problem), "{refused}");
    }
    let gate = configure(
        &Secrets {
            jwt_secret: Some(SECRET.to_owned()),
            ..Secrets::default()
        },
        &rules(),
    )
    .unwrap()
    .expect("a gate");
    assert!(gate.tokens.is_some() && gate.users.is_none());
}

#[test]
fn a_login_list_lets_in_exactly_its_logins_with_their_passcodes() {
    use stomp_rooms::room::auth::ConnectRequest;
    use stomp_rooms::room::{Authenticator, Credentials};
    let users = Credentials {
        users: [("alice".to_owned(), "s3cret".to_owned())]
            .into_iter()
            .collect(),
    };
    let connect = |login: &str, passcode: &str| {
        users.authenticate(&ConnectRequest {
            login: Some(login),
            passcode: Some(passcode),
            ..ConnectRequest::default()
        })
    };
    let alice = connect("alice", "s3cret").expect("her passcode");
    assert_eq!(
        (alice.login.as_deref(), alice.verified),
        (Some("alice"), true)
    );
    // A wrong passcode of any length, and a login nobody has, are refused alike.
    for (login, passcode) in [
        ("alice", "s3cre"),
        ("alice", "s3cret!"),
        ("alice", ""),
        ("mallory", "s3cret"),
    ] {
        assert_eq!(
            connect(login, passcode).unwrap_err(),
            "bad login or passcode",
            "{login}:{passcode}"
        );
    }
}
