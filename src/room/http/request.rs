//! An HTTP request and response as plain data.

use crate::room::session::Peer;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Method {
    #[default]
    Get,
    Post,
    Options,
    Other,
}

impl Method {
    pub fn parse(name: &str) -> Self {
        match name {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }
}

/// A request to a room's destination, e.g. `GET /rooms/lobby/topic/chat?after=41`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    /// The destination the path names after the room: `/topic/chat`.
    pub destination: String,
    /// Query parameters, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The `Content-Length` the client declared; a body declared too large is refused
    /// without being read.
    pub declared_length: Option<u64>,
    pub peer: Peer,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A plain-text answer: every refusal says why in words.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        let mut body = text.into().into_bytes();
        body.push(b'\n');
        Self {
            status,
            headers: vec![(
                "content-type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )],
            body,
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: value.to_string().into_bytes(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes in a URL path; `None` if the result is not UTF-8 or an escape is cut.
/// `text` with every byte outside printable ASCII, and the space, `%`, `&`, `=`, `+` and `#`,
/// percent-escaped: safe in a header value and in a query (the inverse of [`percent_decode`]).
pub fn percent_encode(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x21..0x7f).contains(&byte) && !b"%&=+#".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `a=1&b=x%20y` → pairs, percent-decoded (`+` is a space).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // An undecodable value is kept as it came, so the room refuses it by name.
            let decode = |text: &str| {
                let text = text.replace('+', " ");
                percent_decode(&text).unwrap_or(text)
            };
            (decode(name), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{percent_decode, query_pairs};

    #[test]
    fn percent_escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(
            percent_decode("/topic/chat").as_deref(),
            Some("/topic/chat")
        );
        assert_eq!(
            percent_decode("/topic/caf%C3%A9").as_deref(),
            Some("/topic/café")
        );
        assert_eq!(percent_decode("/topic/%2"), None);
        assert_eq!(percent_decode("/topic/%zz"), None);
        assert_eq!(percent_decode("/topic/%FF"), None);
    }

    #[test]
    fn a_query_becomes_decoded_pairs_and_an_undecodable_value_stays_as_it_came() {
        let pairs = |query| query_pairs(query);
        let owned = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            pairs("after=41&wait=5&name=a%20b+c&flag&&"),
            owned(&[
                ("after", "41"),
                ("wait", "5"),
                ("name", "a b c"),
                ("flag", "")
            ])
        );
        assert_eq!(pairs("after=%ZZ"), owned(&[("after", "%ZZ")]));
        assert_eq!(pairs(""), owned(&[]));
    }
}
