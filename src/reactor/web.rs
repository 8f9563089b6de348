//! The HTTP routes that do not need the services layer, shared by HTTP/1.1
//! and HTTP/3: the embedded browser client and the server's own endpoints.
//! Pure: a request's method and path in, a response out.

use bytes::Bytes;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

pub use crate::proto::http::WebResponse;

/// What the routes need to know about the running server.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    /// SHA-256 of the TLS certificate, hex, when it is a development certificate.
    pub cert_sha256_hex: Option<String>,
    pub version: &'static str,
    /// Every shard's live counts, for /api/stats.
    pub stats: std::sync::Arc<Vec<std::sync::Arc<crate::reactor::shard::ShardStats>>>,
    /// The storage workers' counters, when the services run.
    pub storage: Option<std::sync::Arc<crate::services::pool::PoolStats>>,
    /// The game event path's counters, when history is on.
    pub events: Option<std::sync::Arc<crate::services::events::writer::EventStats>>,
}

/// Serves `method path` (path without the query).
pub fn route(method: &str, path: &str, facts: &ServerFacts) -> WebResponse {
    let is_read = method == "GET" || method == "HEAD";
    match path {
        "/api/health" if is_read => {
            WebResponse::json(200, &serde_json::json!({ "status": "ok", "version": facts.version }))
        }
        "/api/cert-hash" if is_read => match &facts.cert_sha256_hex {
            Some(hash) => {
                WebResponse::json(200, &serde_json::json!({ "algorithm": "sha-256", "hash": hash }))
            }
            None => {
                WebResponse::error(404, "not_found", "the server uses a configured certificate")
            }
        },
        "/api/stats" if is_read => {
            let shards: Vec<serde_json::Value> =
                facts.stats.iter().map(|stats| stats.to_json()).collect();
            let storage = facts.storage.as_ref().map(|pool| pool.to_json());
            let events = facts.events.as_ref().map(|events| events.to_json());
            let body =
                serde_json::json!({ "shards": shards, "storage": storage, "events": events });
            WebResponse::json(200, &body)
        }
        "/api/health" | "/api/cert-hash" | "/api/stats" => {
            let mut response = WebResponse::error(405, "method_not_allowed", "use GET");
            response.headers.push(("allow", "GET, HEAD".to_owned()));
            response
        }
        _ if path.starts_with("/api/") => WebResponse::error(404, "not_found", "no such API route"),
        _ if is_read => static_file(path),
        _ => WebResponse::error(405, "method_not_allowed", "static files are read-only"),
    }
}

fn static_file(path: &str) -> WebResponse {
    let path = if path.ends_with('/') { format!("{path}index.html") } else { path.to_owned() };
    match assets::ASSETS.iter().find(|(url, _)| *url == path) {
        Some((url, contents)) => {
            let mut response = WebResponse {
                status: 200,
                content_type: content_type(url),
                headers: Vec::new(),
                body: Bytes::from_static(contents),
            };
            // Cross-origin isolation gives pages a 5 us performance.now(),
            // which RTT measurements need; WebTransport still works under it.
            response.headers.push(("cross-origin-opener-policy", "same-origin".to_owned()));
            response.headers.push(("cross-origin-embedder-policy", "require-corp".to_owned()));
            response.headers.push(("cache-control", "no-cache".to_owned()));
            response
        }
        None => WebResponse::error(404, "not_found", "no such file"),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "wasm" => "application/wasm",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Number of embedded files (for the start-up log).
pub fn asset_count() -> usize {
    assets::ASSETS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ServerFacts {
        ServerFacts {
            cert_sha256_hex: Some("ab".repeat(32)),
            version: "test",
            stats: Default::default(),
            storage: None,
            events: None,
        }
    }

    #[test]
    fn health_and_cert_hash_answer_json() {
        let health = route("GET", "/api/health", &facts());
        assert_eq!((health.status, health.content_type), (200, "application/json"));
        let hash = route("GET", "/api/cert-hash", &facts());
        assert!(String::from_utf8_lossy(&hash.body).contains(&"ab".repeat(32)));
        assert_eq!(route("POST", "/api/health", &facts()).status, 405);
        assert_eq!(route("GET", "/api/nope", &facts()).status, 404);
    }

    #[test]
    fn embedded_files_are_served_with_their_type_and_tests_are_not() {
        let schema = route("GET", "/proto/schema.js", &facts());
        assert_eq!(schema.status, 200);
        assert!(schema.content_type.starts_with("text/javascript"));
        assert_eq!(route("GET", "/proto/codec.test.js", &facts()).status, 404);
        assert_eq!(route("GET", "/../Cargo.toml", &facts()).status, 404);
        assert_eq!(route("DELETE", "/proto/schema.js", &facts()).status, 405);
    }
}
