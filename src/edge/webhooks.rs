//! The one thing the edge does for webhooks: POST a batch the room formed and signed, and
//! say what came of it. Called from the alarm, after the room's event (no borrow held).

use std::time::Duration;

use futures::future::{self, Either};
use wasm_bindgen::JsValue;
use worker::{web_sys, AbortController, Delay, Fetch, Response, ResponseBody};

use crate::room::webhooks::Batch;

/// How long a receiver may take to answer before the POST counts as failed.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// POSTs the batch: the receiver's status, or why there is none.
pub async fn post(batch: &Batch) -> Result<u16, String> {
    let request = request_of(batch).map_err(|error| format!("{error:?}"))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request.into());
    let sent = Box::pin(fetch.send_with_signal(&signal));
    let outcome = match future::select(sent, Delay::from(ANSWER_WITHIN)).await {
        Either::Left((Ok(response), _)) => Ok(status_of(&response)),
        Either::Left((Err(error), _)) => Err(error.to_string()),
        Either::Right(_) => {
            controller.abort();
            Err(format!("no answer within {} s", ANSWER_WITHIN.as_secs()))
        }
    };
    outcome
}

/// The answer's status; its body is cancelled unread (the status says all the room needs,
/// and a body left unread holds the connection until the runtime gives up on it).
fn status_of(response: &Response) -> u16 {
    if let ResponseBody::Stream(body) = response.body() {
        // The promise only says when the cancel completed: nothing waits for it.
        let _ = body.cancel();
    }
    response.status_code()
}

/// The POST, built with web_sys: worker's `RequestInit` would bring its `cf` conversions into
/// the Worker (8 KB gzipped), as `registry.rs` notes too.
fn request_of(batch: &Batch) -> Result<web_sys::Request, JsValue> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in &batch.headers {
        headers.append(name, value)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&batch.body));
    web_sys::Request::new_with_str_and_init(&batch.url, &init)
}
