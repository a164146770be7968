//! A request id for the JSON logs: with `--log-format json`, each request gets an
//! id, every event logged while handling it carries it (a `request` span with the
//! id, method and path; never the query or a header), and the answer names it in
//! `X-Request-Id`. In text mode nothing is done: the span would cost every request
//! a little, for logs that people read one line at a time.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tracing::Instrument;

static ENABLED: AtomicBool = AtomicBool::new(false);
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Turns request ids on (the JSON log format does, before the router is built).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether request ids are on (the router adds this layer only then).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// This process's prefix: ids of different processes (nodes) differ.
fn prefix() -> u32 {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        portcullis_crypto::random_bytes::<4>()
            .map(u32::from_le_bytes)
            .unwrap_or_else(|_| std::process::id())
    })
}

/// Wraps the request in its `request` span and names its id in the answer.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = format!(
        "{:08x}{:08x}",
        prefix(),
        NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff
    );
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        path = %req.uri().path()
    );
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
