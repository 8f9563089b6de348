//! HTTP requests and responses as both HTTP/1.1 ([`super::http1`]) and
//! HTTP/3 ([`super::h3`]) present them to the server: one request view, one
//! response value, so every route is written once.

use std::net::SocketAddr;

use bytes::Bytes;

/// The request's header fields, in the form its transport parsed them.
/// Names are lower case in both (HTTP/3 requires it; the HTTP/1.1 parser
/// lower-cases them).
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    Http1(&'a [(String, Bytes)]),
    Http3(&'a [(String, String)]),
    None,
}

impl<'a> Headers<'a> {
    /// The first value of `name` (lower case), if it is valid UTF-8.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        debug_assert!(!name.bytes().any(|byte| byte.is_ascii_uppercase()));
        match *self {
            Headers::Http1(fields) => fields
                .iter()
                .find(|(field, _)| field == name)
                .and_then(|(_, value)| std::str::from_utf8(value).ok()),
            Headers::Http3(fields) => {
                fields.iter().find(|(field, _)| field == name).map(|(_, value)| value.as_str())
            }
            Headers::None => None,
        }
    }
}

/// An HTTP request as both HTTP/1.1 and HTTP/3 present it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: Headers<'a>,
    pub body: &'a [u8],
    pub peer: SocketAddr,
}

impl<'a> HttpRequest<'a> {
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name)
    }
}

/// A response, transport-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl WebResponse {
    pub fn json(status: u16, value: &serde_json::Value) -> WebResponse {
        WebResponse {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Bytes::from(value.to_string()),
        }
    }

    /// The error shape of every API route: `{"error": {"code", "message"}}`.
    pub fn error(status: u16, code: &str, message: &str) -> WebResponse {
        WebResponse::json(
            status,
            &serde_json::json!({ "error": { "code": code, "message": message } }),
        )
    }

    /// No body (204, or a preflight answer).
    pub fn empty(status: u16) -> WebResponse {
        WebResponse { status, content_type: "text/plain", headers: Vec::new(), body: Bytes::new() }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> WebResponse {
        self.headers.push((name, value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(field, _)| *field == name).map(|(_, value)| value.as_str())
    }
}

/// Whether a page from `origin` may open a session or call the API:
/// configured origins exactly (ASCII case aside), "*" for any, and with
/// none configured, local development pages only.
pub fn origin_allowed(origin: &str, allowed_origins: &[String]) -> bool {
    if allowed_origins.is_empty() {
        return is_local_origin(origin);
    }
    allowed_origins.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
}

/// `http(s)://localhost`, `127.0.0.1` or `[::1]`, with or without a port.
fn is_local_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    ["localhost", "127.0.0.1", "[::1]"].iter().any(|host| match rest.strip_prefix(host) {
        Some("") => true,
        Some(after) => after.strip_prefix(':').is_some_and(|port| {
            (1..=5).contains(&port.len()) && port.bytes().all(|byte| byte.is_ascii_digit())
        }),
        None => false,
    })
}
