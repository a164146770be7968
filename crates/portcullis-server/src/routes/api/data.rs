//! `POST /api/v1/data` (`upload-data`): a batch of 1–1000 JSON objects, each at
//! most 16 KiB, the body at most 1 MiB, stored durably in one transaction with the
//! caller's client, label and token id before `201 {"accepted", "batch_id"}`.
//! Every refusal happens before anything is written. An `Idempotency-Key` makes a
//! retried upload answer the first response instead of storing the batch twice.

use crate::error::ApiError;
use crate::extract::bearer::Caller;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::{NewUpload, UploadOutcome};
use serde_json::{Value, json};

/// Largest body.
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest record, serialised.
pub const MAX_RECORD: usize = 16 * 1024;
/// Most records in a batch.
pub const MAX_RECORDS: usize = 1000;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request("send one Idempotency-Key header"));
    }
    let key = v
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|c| (0x21..=0x7e).contains(&c)))
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1-255 printable ASCII characters")
        })?;
    Ok(Some(key.to_owned()))
}

/// Checks the body and returns the records, serialised, or says which one is wrong.
fn parse_records(body: &[u8]) -> Result<Vec<String>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let records = v
        .as_object()
        .and_then(|o| o.get("records"))
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("the body must be {\"records\": [ {...}, ... ]}"))?;
    if records.is_empty() {
        return Err(ApiError::bad_request(
            "records is empty: send 1 to 1000 records",
        ));
    }
    if records.len() > MAX_RECORDS {
        return Err(ApiError::too_large(format!(
            "{} records in one batch; at most {MAX_RECORDS}",
            records.len()
        )));
    }
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        if !r.is_object() {
            return Err(ApiError::bad_request(format!(
                "record {i} is not a JSON object"
            )));
        }
        let text = r.to_string();
        if text.len() > MAX_RECORD {
            return Err(ApiError::too_large(format!(
                "record {i} is larger than 16 KiB"
            )));
        }
        out.push(text);
    }
    Ok(out)
}

fn created(batch_id: &str, accepted: i64, replayed: bool) -> Response {
    let mut r = (
        StatusCode::CREATED,
        Json(json!({"accepted": accepted, "batch_id": batch_id})),
    )
        .into_response();
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

/// The upload endpoint.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require_scope("upload-data")?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(ApiError::bad_request("the body must be application/json"));
    }
    let key = idempotency_key(&headers)?;
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large("the body is larger than 1 MiB"))?;
    let records = parse_records(&bytes)?;
    let batch_id = portcullis_crypto::ordered_id_now("bat_")?;
    let outcome = state
        .store
        .store_upload(NewUpload {
            batch_id,
            client_id: caller.claims.client_id.clone(),
            label: caller.claims.label.clone(),
            token_id: caller.claims.jti.clone(),
            received_at: state.now(),
            idempotency_key: key,
            body_hash: portcullis_crypto::sha256(&bytes),
            records,
        })
        .await?;
    match outcome {
        UploadOutcome::Stored { batch_id, accepted } => {
            crate::metrics::uploaded(u64::try_from(accepted).unwrap_or(0));
            Ok(created(&batch_id, accepted, false))
        }
        UploadOutcome::Replayed { batch_id, accepted } => Ok(created(&batch_id, accepted, true)),
        UploadOutcome::KeyReused => Err(ApiError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "this Idempotency-Key was used for a different body",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_bad_record() {
        let e = parse_records(br#"{"records":[{"a":1},2]}"#).err();
        assert!(e.is_some_and(|e| e.description() == "record 1 is not a JSON object"));
        assert!(parse_records(br#"{"records":[]}"#).is_err());
        assert!(parse_records(br#"{"rows":[{}]}"#).is_err());
        assert!(parse_records(b"{").is_err());
        assert_eq!(
            parse_records(br#"{"records":[{"a":1}]}"#).ok(),
            Some(vec![r#"{"a":1}"#.to_owned()])
        );
    }
}
