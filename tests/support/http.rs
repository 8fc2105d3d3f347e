//! HTTP requests and answers for the native tests of the room's HTTP rungs.

use serde_json::Value;
use stomp_rooms::room::http::{HttpOutcome, HttpRequest, HttpResponse, Method};

pub fn get(path_and_query: &str) -> HttpRequest {
    request(Method::Get, path_and_query)
}

/// A request to a destination, with its query (`/topic/chat?after=3`).
pub fn request(method: Method, path_and_query: &str) -> HttpRequest {
    let (destination, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    HttpRequest {
        method,
        destination: destination.to_owned(),
        query: query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (name.to_owned(), value.to_owned())
            })
            .collect(),
        ..HttpRequest::default()
    }
}

pub fn post(path_and_query: &str, body: &str) -> HttpRequest {
    HttpRequest {
        body: body.as_bytes().to_vec(),
        ..request(Method::Post, path_and_query)
    }
}

pub fn with_header(mut request: HttpRequest, name: &str, value: &str) -> HttpRequest {
    request.headers.push((name.to_owned(), value.to_owned()));
    request
}

/// The answer given at once (not a held request).
pub fn respond(outcome: Option<HttpOutcome>) -> HttpResponse {
    match outcome {
        Some(HttpOutcome::Respond(response)) => response,
        other => panic!("expected an answer now, got {other:?}"),
    }
}

pub fn body_json(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&response.body)))
}

pub fn text(response: &HttpResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// The message ids of a poll's answer.
pub fn ids(answer: &Value) -> Vec<u64> {
    answer["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_u64().expect("id"))
        .collect()
}
