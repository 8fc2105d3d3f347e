//! The one thing the edge does for webhooks: POST a batch the room formed and signed, and
//! say what came of it. Called from the alarm, after the room's event (no borrow held).

use std::time::Duration;

use futures::future::{self, Either};
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::room::webhooks::Batch;

/// How long a receiver may take to answer before the POST counts as failed.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// POSTs the batch: the receiver's status, or why there is none.
pub async fn post(batch: &Batch) -> Result<u16, String> {
    let headers = Headers::new();
    for (name, value) in &batch.headers {
        headers.set(name, value).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&batch.body)));
    let request = Request::new_with_init(&batch.url, &init).map_err(|e| e.to_string())?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sent = Box::pin(fetch.send_with_signal(&signal));
    let outcome = match future::select(sent, Delay::from(ANSWER_WITHIN)).await {
        Either::Left((Ok(response), _)) => Ok(response.status_code()),
        Either::Left((Err(error), _)) => Err(error.to_string()),
        Either::Right(_) => {
            controller.abort();
            Err(format!("no answer within {} s", ANSWER_WITHIN.as_secs()))
        }
    };
    outcome
}
