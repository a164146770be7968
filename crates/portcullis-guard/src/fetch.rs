//! Reading answers from the issuer: a status check and a size limit, so a broken
//! or hostile issuer URL cannot make the guard buffer without bound.

use crate::error::GuardError;
use serde::de::DeserializeOwned;

/// Largest metadata document or JWKS read.
pub(crate) const MAX_DOCUMENT: usize = 1024 * 1024;

/// Reads at most `limit` bytes of a successful answer.
pub(crate) async fn body_limited(
    mut resp: reqwest::Response,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>, GuardError> {
    let status = resp.status();
    if !status.is_success() {
        return Err(GuardError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let too_large = || GuardError::Malformed {
        url: url.to_owned(),
        reason: format!("the answer is larger than {limit} bytes"),
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| GuardError::Http {
        url: url.to_owned(),
        source,
    })? {
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `GET url` and parse the JSON answer.
pub(crate) async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, GuardError> {
    let resp = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|source| GuardError::Http {
            url: url.to_owned(),
            source,
        })?;
    let bytes = body_limited(resp, url, MAX_DOCUMENT).await?;
    serde_json::from_slice(&bytes).map_err(|e| GuardError::Malformed {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}
