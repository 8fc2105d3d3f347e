//! Calls between room and gateway objects (see [`crate::relay`]): a `stub.fetch` POST to the
//! object by name, with the route in the route header (`relay-to-room {room}`,
//! `relay-to-gateway {gateway}`), a binary body each way. Each call is a billed request, which
//! is why a room fans out once per gateway, not once per member. Both sides read bodies
//! bounded, so a broken or hostile peer never makes an object hold more than
//! [`MAX_CALL_BYTES`] for it.

use std::time::Duration;

use futures::future::{self, Either};
use futures::StreamExt;
use wasm_bindgen::JsValue;
use worker::{js_sys, web_sys, ByteStream, Delay, Env, Response, Result};

use super::ROUTE_HEADER;
use crate::room::routes::Route;

/// The most a call's body (or its answer's) may hold: two outboxes' worth (a room's outbox per
/// gateway, and a gateway's per room, are bounded well under it), so a call never fails for
/// its size alone.
pub const MAX_CALL_BYTES: usize = 16 << 20;

/// How long an object waits for the other's answer before the call counts as failed (an
/// object runs one event at a time, so a healthy answer takes milliseconds).
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// A body, read in chunks and never past [`MAX_CALL_BYTES`]: `None` when it is longer.
pub async fn read_bounded(body: Option<ByteStream>) -> Result<Option<Vec<u8>>> {
    let mut read = Vec::new();
    let Some(mut body) = body else {
        return Ok(Some(read));
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if read.len() + chunk.len() > MAX_CALL_BYTES {
            return Ok(None);
        }
        read.extend(chunk);
    }
    Ok(Some(read))
}

/// A call's body: `Err` is the answer to give (too large: 413).
pub async fn call_body(
    req: &mut worker::Request,
) -> Result<std::result::Result<Vec<u8>, Response>> {
    let declared: Option<u64> = req
        .headers()
        .get("Content-Length")?
        .and_then(|length| length.trim().parse().ok());
    let too_large = || Response::error(format!("a call over {MAX_CALL_BYTES} bytes"), 413);
    if declared.is_some_and(|n| n > MAX_CALL_BYTES as u64) {
        return Ok(Err(too_large()?));
    }
    match read_bounded(req.stream().ok()).await? {
        Some(body) => Ok(Ok(body)),
        None => Ok(Err(too_large()?)),
    }
}

/// The answer to a call: its binary body.
pub fn answer(body: Vec<u8>) -> Result<Response> {
    Response::from_bytes(body)
}

/// POSTs a call to the object `name` of the namespace `binding`, with `route` in the route
/// header: the answer's body, or why there is none (no object, a status other than 200, no
/// answer in time, an answer too large).
pub async fn call(
    env: &Env,
    binding: &str,
    name: &str,
    route: &Route,
    body: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    let sent = async {
        let stub = env
            .durable_object(binding)?
            .id_from_name(name)?
            .get_stub()?;
        let request = request_of(route, body).map_err(worker::Error::from)?;
        let mut response = stub.fetch_with_request(request.into()).await?;
        let status = response.status_code();
        if status != 200 {
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            return Ok(Err(format!("answered {status}: {text}")));
        }
        Ok::<_, worker::Error>(match read_bounded(response.stream().ok()).await? {
            Some(body) => Ok(body),
            None => Err(format!("an answer over {MAX_CALL_BYTES} bytes")),
        })
    };
    match future::select(Box::pin(sent), Delay::from(ANSWER_WITHIN)).await {
        Either::Left((Ok(answer), _)) => answer,
        Either::Left((Err(error), _)) => Err(error.to_string()),
        Either::Right(_) => Err(format!("no answer within {} s", ANSWER_WITHIN.as_secs())),
    }
}

/// The POST, built with web_sys: worker's `RequestInit` would bring its `cf` conversions into
/// the Worker (as `webhooks.rs` notes too).
fn request_of(route: &Route, body: &[u8]) -> std::result::Result<web_sys::Request, JsValue> {
    let headers = web_sys::Headers::new()?;
    headers.append(ROUTE_HEADER, &route.to_header())?;
    headers.append("content-type", "application/octet-stream")?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&js_sys::Uint8Array::from(body).into());
    // The host is not looked at: the stub names the object.
    web_sys::Request::new_with_str_and_init("https://object/relay", &init)
}
