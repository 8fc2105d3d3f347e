//! Destinations filled in from a message's JSON body: the template `/sub/chat/room/{roomId}`
//! and the body `{"roomId": "7", ...}` give `/sub/chat/room/7`. This is what a Spring
//! controller does when it forwards `/pub/chat/message` to the room its payload names (see
//! [`Prefixes::application`](super::Prefixes)).

use serde_json::{Map, Value};

/// The longest value a placeholder takes.
const MAX_VALUE_BYTES: usize = 100;

/// `template` with each `{field}` replaced by that top-level field of the JSON object in
/// `body` (a string, or an integer). `Err` says what is wrong, for the sender.
pub fn fill(template: &str, body: &[u8]) -> Result<String, String> {
    let object: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| "its body is not a JSON object".to_owned())?;
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        let field = &rest[open + 1..open + close];
        out.push_str(&value_of(&object, field)?);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One destination segment from a body field: non-empty, short, and without `/`, so a body
/// cannot route a message outside the template's place.
fn value_of(object: &Map<String, Value>, field: &str) -> Result<String, String> {
    let value = match object.get(field) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => number.to_string(),
        Some(_) => {
            return Err(format!(
                "its body's \"{field}\" is not a string or an integer"
            ))
        }
        None => return Err(format!("its body has no \"{field}\"")),
    };
    let fits = !value.is_empty()
        && value.len() <= MAX_VALUE_BYTES
        && !value.contains('/')
        && !value.chars().any(char::is_control);
    if !fits {
        return Err(format!(
            "its body's \"{field}\" must be 1 to {MAX_VALUE_BYTES} bytes without '/' or control characters"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn placeholders_take_the_body_fields() {
        let body = br#"{"type":"TALK","roomId":"7","sender":"ada","n":42}"#;
        assert_eq!(
            fill("/sub/chat/room/{roomId}", body).unwrap(),
            "/sub/chat/room/7"
        );
        assert_eq!(fill("/sub/{type}/{n}", body).unwrap(), "/sub/TALK/42");
        assert_eq!(fill("/sub/plain", body).unwrap(), "/sub/plain");
        assert_eq!(fill("/sub/{unclosed", body).unwrap(), "/sub/{unclosed");
    }

    #[test]
    fn bodies_that_cannot_fill_the_template_are_refused_saying_why() {
        let template = "/sub/chat/room/{roomId}";
        for (body, why) in [
            (&b"hello"[..], "not a JSON object"),
            (b"[1]", "not a JSON object"),
            (b"{}", "no \"roomId\""),
            (br#"{"roomId":null}"#, "not a string or an integer"),
            (br#"{"roomId":1.5}"#, "not a string or an integer"),
            (br#"{"roomId":""}"#, "without '/'"),
            (br#"{"roomId":"7/../x"}"#, "without '/'"),
            (br#"{"roomId":"a\u0007"}"#, "control characters"),
        ] {
            let error = fill(template, body).unwrap_err();
            assert!(error.contains(why), "{body:?}: {error}");
        }
        let long = format!(r#"{{"roomId":"{}"}}"#, "x".repeat(101));
        assert!(fill(template, long.as_bytes()).is_err());
    }
}
