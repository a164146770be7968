//! `portcullis keys list|rotate`.

use crate::cli::{GlobalArgs, KeysCommand, ServerArgs};
use crate::commands::announce;
use crate::context::open;
use crate::output;
use portcullis_core::time::rfc3339;
use portcullis_server::keyring::create_signing_key;
use serde_json::json;

/// Runs a keys command.
pub async fn run(global: &GlobalArgs, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { json } => {
            let ctx = open(global, &ServerArgs::default()).await?;
            announce(&ctx);
            let keys = ctx.store.signing_keys().await?;
            let views: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| {
                    json!({
                        "kid": k.kid,
                        "alg": k.alg,
                        "state": k.state,
                        "created_at": rfc3339(k.created_at),
                        "retire_after": k.retire_after.map(rfc3339),
                    })
                })
                .collect();
            if json.json {
                return output::json(&views);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.kid.clone(),
                        k.alg.clone(),
                        k.state.clone(),
                        rfc3339(k.created_at),
                        k.retire_after.map_or_else(|| "-".into(), rfc3339),
                    ]
                })
                .collect();
            output::table(&["KID", "ALG", "STATE", "CREATED", "VERIFIES UNTIL"], &rows);
            Ok(())
        }
        KeysCommand::Rotate { server, json } => {
            let ctx = open(global, &server).await?;
            announce(&ctx);
            // The old key verifies until the longest-lived access token it signed expires.
            let longest = ctx
                .store
                .list_clients()
                .await?
                .iter()
                .filter_map(|c| c.access_token_ttl)
                .map(|t| t.secs_i64())
                .fold(ctx.settings.access_token_ttl.secs_i64(), i64::max);
            let now = ctx.clock.now();
            let kid = create_signing_key(
                &ctx.store,
                &ctx.master,
                ctx.settings.signing_alg,
                now,
                longest,
            )
            .await?;
            if json.json {
                return output::json(
                    &json!({"kid": kid, "alg": ctx.settings.signing_alg.as_str(), "state": "current"}),
                );
            }
            println!(
                "new current key {kid} ({}); running servers pick it up within a second",
                ctx.settings.signing_alg
            );
            Ok(())
        }
    }
}
