//! A tiny service guarded by Portcullis: `GET /hello` for any valid token,
//! `POST /upload` only with the `upload-data` scope. Configured from the
//! environment: `PORTCULLIS_ISSUER`, `PORTCULLIS_AUDIENCE` (default: the issuer),
//! `LISTEN` (default `127.0.0.1:3000`).

use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis_guard::{Caller, Guard, GuardConfig, RequireScope};
use serde_json::{Value, json};
use std::sync::Arc;

async fn hello(caller: Caller) -> Json<Value> {
    Json(json!({"client_id": caller.client_id, "label": caller.label, "scopes": caller.scopes}))
}

async fn upload(caller: Caller, body: String) -> Json<Value> {
    Json(json!({"accepted_bytes": body.len(), "label": caller.label}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("PORTCULLIS_ISSUER").map_err(|_| "set PORTCULLIS_ISSUER")?;
    let audience = std::env::var("PORTCULLIS_AUDIENCE").unwrap_or_else(|_| issuer.clone());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let guard = Arc::new(Guard::discover(GuardConfig::new(issuer, audience)).await?);
    let app = Router::new()
        .route("/hello", get(hello))
        .route(
            "/upload",
            post(upload).route_layer(RequireScope::new("upload-data")),
        )
        .layer(guard.layer());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "guarded service listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
