//! CORS for the API: which browser pages on other origins may call it.
//! The policy is the sessions' one (`origin_allowed`): configured origins,
//! "*" for any, and local development pages when none is configured.
//! Credentials are bearer tokens in a header, never cookies, so no
//! `Access-Control-Allow-Credentials`.

use crate::proto::http::{origin_allowed, HttpRequest, WebResponse};

/// How long a browser may cache a preflight answer, seconds.
pub const PREFLIGHT_MAX_AGE_S: u32 = 600;
const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const ALLOWED_HEADERS: &str = "authorization, content-type, x-request-id";
const EXPOSED_HEADERS: &str = "retry-after, x-request-id";

#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    pub fn new(origins: Vec<String>) -> CorsPolicy {
        CorsPolicy { origins }
    }

    /// The request's origin when it is a cross-origin call we allow.
    pub fn allowed_origin<'a>(&self, request: &HttpRequest<'a>) -> Option<&'a str> {
        let origin = request.header("origin")?;
        origin_allowed(origin, &self.origins).then_some(origin)
    }

    /// Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`).
    pub fn preflight(&self, request: &HttpRequest<'_>) -> WebResponse {
        match self.allowed_origin(request) {
            Some(origin) => WebResponse::empty(204)
                .with_header("access-control-allow-origin", origin)
                .with_header("access-control-allow-methods", ALLOWED_METHODS)
                .with_header("access-control-allow-headers", ALLOWED_HEADERS)
                .with_header("access-control-max-age", PREFLIGHT_MAX_AGE_S.to_string())
                .with_header("vary", "origin"),
            None => {
                WebResponse::error(403, "origin_not_allowed", "this origin may not call the API")
                    .with_header("vary", "origin")
            }
        }
    }

    /// Adds the headers that let an allowed page read `response`
    /// (`origin`: what [`CorsPolicy::allowed_origin`] returned). Needs no
    /// policy, so the closure answering a deferred request carries only
    /// the origin, not a copy of the allow-list.
    pub fn decorate(origin: Option<&str>, response: &mut WebResponse) {
        response.headers.push(("vary", "origin".to_owned()));
        if let Some(origin) = origin {
            response.headers.push(("access-control-allow-origin", origin.to_owned()));
            response.headers.push(("access-control-expose-headers", EXPOSED_HEADERS.to_owned()));
        }
    }
}
