//! Counts every request and times it, labelled by the route template axum matched
//! (`/api/v1/data`, never the concrete path), the method and the status. Requests
//! no route matched share the route label `unmatched`, and unusual methods the
//! method label `OTHER`, so random URLs and methods cannot multiply the series.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// Route label of requests no route matched (the 404 fallback).
pub const UNMATCHED: &str = "unmatched";

/// Records `portcullis_http_requests_total` and
/// `portcullis_http_request_duration_seconds` for the request.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let resp = next.run(req).await;
    crate::metrics::http_request(
        route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
        method,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

/// The method as a label from a fixed set.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::CONNECT), "OTHER");
        assert_eq!(
            Method::from_bytes(b"X-RANDOM")
                .map(|m| method_label(&m))
                .ok(),
            Some("OTHER")
        );
    }
}
