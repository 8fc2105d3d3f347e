//! A room's counters (`GET /rooms/{room}/stats`), read between the phases of a scenario so the
//! report can say what the room saw (its connections, members on gateways, gateway calls).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The JSON at a plain `http://host:port/path` URL (loopback only, so no TLS), or
/// `{"error": why}`: a counter that cannot be read is recorded as such, never fatal. A busy room
/// answers after the events queued before the request, so the wait is long but bounded.
pub async fn read(url: &str) -> Value {
    match tokio::time::timeout(Duration::from_secs(60), get(url)).await {
        Ok(Ok(value)) => value,
        Ok(Err(why)) => json!({ "error": why }),
        Err(_) => json!({ "error": format!("{url}: no answer within 60 s") }),
    }
}

async fn get(url: &str) -> Result<Value, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let failed = |e: std::io::Error| format!("{url}: {e}");
    let mut stream = TcpStream::connect(authority).await.map_err(failed)?;
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(failed)?;
    // The body ends at its Content-Length, or where the server closes the connection.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let read = stream.read(&mut chunk).await.map_err(failed)?;
        answer.extend_from_slice(&chunk[..read]);
        if read == 0 || complete(&answer) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: no HTTP answer"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        return Err(format!("{url}: {status}"));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(format!(
            "{url}: a chunked answer, which this reader does not take"
        ));
    }
    serde_json::from_str(body).map_err(|e| format!("{url}: {e}"))
}

/// Whether `answer` holds its head and all of the body its Content-Length announces.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|length| body.len() >= length)
}

/// The counters of rooms `bench-0` to `bench-{count - 1}` (`template` with `{room}`), summed:
/// their own sockets, connections, members on gateways, (room, gateway) pairs with members,
/// and their calls to gateways; `Null` without a template. Rooms that did not answer are counted.
pub async fn sum_over_rooms(template: &str, count: usize) -> Value {
    if template.is_empty() {
        return Value::Null;
    }
    let mut sum = serde_json::Map::new();
    let mut add = |key: &str, value: u64| {
        let total = sum.get(key).and_then(Value::as_u64).unwrap_or(0) + value;
        sum.insert(key.to_owned(), total.into());
    };
    for room in 0..count {
        let stats = read(&template.replace("{room}", &format!("bench-{room}"))).await;
        if stats.get("error").is_some() {
            add("unanswered", 1);
            continue;
        }
        let number = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
        add("rooms", 1);
        add("sockets", number(stats.get("sockets")));
        add("connections", number(stats.get("connections")));
        if let Some(members) = stats.get("members").and_then(Value::as_object) {
            add("room_gateway_pairs", members.len() as u64);
            add("members", members.values().map(|v| number(Some(v))).sum());
        }
        if let Some(calls) = stats.get("gateway_calls") {
            add("gateway_calls_sent", number(calls.get("sent")));
            add("gateway_calls_failed", number(calls.get("failed")));
        }
    }
    Value::Object(sum)
}
