//! Prometheus metrics, recorded through the `metrics` facade and rendered in the
//! text exposition format by `GET /metrics` (`routes/metrics.rs`); the exporter
//! runs no listener of its own.
//!
//! The recorder is process-global: [`Metrics::install`] installs it once and hands
//! out clones of its handle. Until it is installed (the CLI, unit tests) every helper
//! here is a no-op. Call sites use the small helpers below rather than the names,
//! so a metric's name and labels are spelled in one place.
//!
//! Label values are bounded: routes are axum's matched templates (or `unmatched`),
//! methods a fixed set, grant types, algorithms and revocation kinds our own
//! constants. Nothing a caller sends becomes a label value.

use ::metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::Duration;

/// Requests answered, by `route` (matched template), `method` and `status`.
pub const HTTP_REQUESTS: &str = "portcullis_http_requests_total";
/// Request latency in seconds, by `route` and `method` (histogram).
pub const HTTP_REQUEST_DURATION: &str = "portcullis_http_request_duration_seconds";
/// Access tokens issued, by `grant` type and signing `alg`.
pub const TOKENS_ISSUED: &str = "portcullis_tokens_issued_total";
/// Successful refresh token rotations.
pub const REFRESHES: &str = "portcullis_refreshes_total";
/// Spent refresh tokens presented again (outside the retry grace) whose family was revoked.
pub const REFRESH_REUSE_DETECTED: &str = "portcullis_refresh_reuse_detected_total";
/// Revocations, by `kind`: `family` and `label` count token families revoked,
/// `client` whole-client revocations, `access_token` single access tokens.
pub const REVOCATIONS: &str = "portcullis_revocations_total";
/// Failed client authentications at the OAuth endpoints.
pub const CLIENT_AUTH_FAILURES: &str = "portcullis_client_auth_failures_total";
/// Upload batches stored (idempotent replays are not counted).
pub const UPLOADS: &str = "portcullis_uploads_total";
/// Records in the upload batches stored.
pub const UPLOADED_RECORDS: &str = "portcullis_uploaded_records_total";
/// ES256 signatures by a key that presigns, by `presigned` (`true`: a presigned
/// nonce half was ready; `false`: made whole); set at each scrape.
pub const ES256_SIGNATURES: &str = "portcullis_es256_signatures_total";
/// The same for EdDSA.
pub const EDDSA_SIGNATURES: &str = "portcullis_eddsa_signatures_total";
/// Entries in this node's revocation denylist (gauge, set at each scrape).
pub const DENYLIST_ENTRIES: &str = "portcullis_denylist_entries";

/// Upper bounds of the request latency buckets, in seconds: 0.5 ms to 2.5 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How often recorded histogram samples are folded into their buckets when nobody
/// scrapes (a scrape folds them too), so that memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder handle, or why it could not be installed.
static HANDLE: OnceLock<Result<PrometheusHandle, InstallError>> = OnceLock::new();

/// Why the recorder could not be installed (another global recorder was set first).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot install the Prometheus metrics recorder: {0}")]
pub struct InstallError(String);

/// The installed Prometheus recorder. Cloning is an `Arc` clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the global recorder on the first call and returns it; later calls
    /// return the same recorder (or the same error). Call it at start-up, before
    /// the first request, so nothing recorded is lost.
    pub fn install() -> Result<Self, InstallError> {
        HANDLE
            .get_or_init(init)
            .clone()
            .map(|handle| Self { handle })
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn init() -> Result<PrometheusHandle, InstallError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
            LATENCY_BUCKETS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| InstallError(e.to_string()))?;
    describe();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; scrapes still do it");
    }
    Ok(handle)
}

/// `# HELP` texts, and a zero for the unlabelled series so they exist from the start.
fn describe() {
    use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered.");
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        ::metrics::Unit::Seconds,
        "HTTP request latency in seconds."
    );
    describe_counter!(TOKENS_ISSUED, "Access tokens issued.");
    describe_counter!(REFRESHES, "Refresh token rotations.");
    describe_counter!(
        REFRESH_REUSE_DETECTED,
        "Spent refresh tokens presented again; their grant was revoked."
    );
    describe_counter!(
        REVOCATIONS,
        "Token families, clients and access tokens revoked."
    );
    describe_counter!(CLIENT_AUTH_FAILURES, "Failed client authentications.");
    describe_counter!(UPLOADS, "Upload batches stored.");
    describe_counter!(UPLOADED_RECORDS, "Records stored in upload batches.");
    describe_counter!(
        ES256_SIGNATURES,
        "ES256 signatures, by whether a presigned nonce half was ready."
    );
    describe_counter!(
        EDDSA_SIGNATURES,
        "EdDSA signatures, by whether a presigned nonce half was ready."
    );
    describe_gauge!(
        DENYLIST_ENTRIES,
        "Entries in this node's revocation denylist."
    );
    for name in [
        REFRESHES,
        REFRESH_REUSE_DETECTED,
        CLIENT_AUTH_FAILURES,
        UPLOADS,
        UPLOADED_RECORDS,
    ] {
        counter!(name).increment(0);
    }
    gauge!(DENYLIST_ENTRIES).set(0.0);
}

/// The ES256 and EdDSA signatures so far, presigned and whole (from
/// `portcullis_crypto`'s own counts: the signing path records nothing itself).
pub fn set_presigned_signatures() {
    use portcullis_crypto::Algorithm;
    for (name, alg) in [
        (ES256_SIGNATURES, Algorithm::ES256),
        (EDDSA_SIGNATURES, Algorithm::EdDSA),
    ] {
        let (presigned, whole) = portcullis_crypto::presign::counts(alg);
        ::metrics::counter!(name, "presigned" => "true").absolute(presigned);
        ::metrics::counter!(name, "presigned" => "false").absolute(whole);
    }
}

/// One answered HTTP request: its matched route template, method, status and latency.
pub fn http_request(route: &str, method: &'static str, status: u16, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    if let Ok(routes) = HTTP_SERIES.read()
        && let Some((count, time)) = routes.get(route).and_then(|r| r.get(&(method, status)))
    {
        count.increment(1);
        time.record(seconds);
        return;
    }
    let count = ::metrics::counter!(
        HTTP_REQUESTS,
        "method" => method,
        "route" => route.to_owned(),
        "status" => status.to_string()
    );
    let time = ::metrics::histogram!(
        HTTP_REQUEST_DURATION,
        "method" => method,
        "route" => route.to_owned()
    );
    count.increment(1);
    time.record(seconds);
    keep(&HTTP_SERIES, |routes| {
        routes
            .entry(route.into())
            .or_default()
            .insert((method, status), (count, time));
    });
}

/// An access token was issued with `grant` (a `GrantType` name) and signed with `alg`.
pub fn token_issued(grant: &'static str, alg: &'static str) {
    if let Ok(series) = TOKEN_SERIES.read()
        && let Some(count) = series.get(&(grant, alg))
    {
        count.increment(1);
        return;
    }
    let count = ::metrics::counter!(TOKENS_ISSUED, "alg" => alg, "grant" => grant);
    count.increment(1);
    keep(&TOKEN_SERIES, |series| {
        series.insert((grant, alg), count);
    });
}

// The per-request series' handles, made once each. `counter!` with labels known
// only at run time builds its key (allocating the labels), looks it up in the
// recorder's registry and copies it there on every call: 16 of the 120 heap
// allocations of a client-credentials request. The handles stay valid: the one
// recorder lives as long as the process and never drops a series. A handle is
// kept only once the recorder is installed (before, it is a no-op's).

/// By route template, then method and status: the request counter and the
/// latency histogram (the same histogram for every status of a method).
type RouteSeries = HashMap<(&'static str, u16), (Counter, Histogram)>;
static HTTP_SERIES: LazyLock<RwLock<HashMap<Box<str>, RouteSeries>>> =
    LazyLock::new(RwLock::default);
/// By grant type and algorithm.
static TOKEN_SERIES: LazyLock<RwLock<HashMap<(&'static str, &'static str), Counter>>> =
    LazyLock::new(RwLock::default);

/// Puts handles just made into `series` for the next requests, once the
/// recorder is installed.
fn keep<T>(series: &RwLock<T>, put: impl FnOnce(&mut T)) {
    if HANDLE.get().is_some_and(Result::is_ok)
        && let Ok(mut series) = series.write()
    {
        put(&mut series);
    }
}

/// A refresh token was rotated.
pub fn refreshed() {
    ::metrics::counter!(REFRESHES).increment(1);
}

/// A spent refresh token was presented again and its family revoked.
pub fn reuse_detected() {
    ::metrics::counter!(REFRESH_REUSE_DETECTED).increment(1);
}

/// Something was revoked: `kind` is `family`, `label`, `client` or `access_token`.
pub fn revoked(kind: &'static str) {
    ::metrics::counter!(REVOCATIONS, "kind" => kind).increment(1);
}

/// A client failed to authenticate.
pub fn client_auth_failed() {
    ::metrics::counter!(CLIENT_AUTH_FAILURES).increment(1);
}

/// An upload batch of `records` records was stored.
pub fn uploaded(records: u64) {
    ::metrics::counter!(UPLOADS).increment(1);
    ::metrics::counter!(UPLOADED_RECORDS).increment(records);
}

/// Sets the denylist gauge.
pub fn set_denylist_size(entries: usize) {
    // Exact below 2^53 entries.
    ::metrics::gauge!(DENYLIST_ENTRIES).set(entries as f64);
}
