//! Headers every response carries.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// No inline script or style, nothing from elsewhere, no framing, forms only to us.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `Strict-Transport-Security` when the issuer is https: a year, this host only
/// (other hosts of the domain may not serve https).
const HSTS: &str = "max-age=31536000";

/// Adds `Content-Security-Policy` (unless the route set its own), `X-Frame-Options:
/// DENY`, `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`, and
/// with `https` (the issuer is an https URL: the server is reached over TLS, here or
/// at a proxy) `Strict-Transport-Security`.
pub async fn security_headers(req: Request, next: Next, https: bool) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    resp
}
