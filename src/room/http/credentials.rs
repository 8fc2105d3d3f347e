//! What an HTTP request offers to prove who sends it, read once for every rung and for the
//! operator's endpoints.

use super::HttpRequest;
use crate::room::auth::{authorization_credentials, decode_basic};

/// The credentials an HTTP request offers, as a room reads them: a token
/// (`Authorization: Bearer`, or `access_token` in the query, for clients that cannot set
/// headers) and a login and passcode (`Authorization: Basic`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpCredentials<'a> {
    pub bearer: Option<&'a str>,
    pub basic: Option<(String, String)>,
}

impl<'a> HttpCredentials<'a> {
    pub fn of(request: &'a HttpRequest) -> Self {
        let authorization = request.header("authorization");
        let bearer = authorization
            .and_then(|value| authorization_credentials(value, "Bearer"))
            .or(request.param("access_token"))
            .map(str::trim);
        let basic = authorization
            .and_then(|value| authorization_credentials(value, "Basic"))
            .and_then(decode_basic);
        Self { bearer, basic }
    }
}
