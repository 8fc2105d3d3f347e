//! `GET /healthz` (see [`crate::room::health`]): the settings and secrets as this isolate reads
//! them, judged by the room.

use worker::{Env, Response, Result};

use super::http;
use crate::room::health;

pub fn answer(env: &Env) -> Result<Response> {
    let settings = super::env::settings(env);
    let settings = settings.as_deref().map_err(String::as_str);
    http::to_response(health::report(settings, &super::env::secrets(env)))
}
