//! `portcullis keys list|rotate`.

use crate::cli::{GlobalArgs, KeysCommand, ServerArgs};
use crate::commands::announce;
use crate::context::open;
use crate::output;
use portcullis_core::time::rfc3339;
use portcullis_server::service::keys;
use portcullis_server::views::{KeyView, RotatedKeyView};

/// Runs a keys command.
pub async fn run(global: &GlobalArgs, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { json } => {
            let ctx = open(global, &ServerArgs::default()).await?;
            announce(&ctx);
            let keys = ctx.store.signing_keys().await?;
            let views: Vec<KeyView> = keys.iter().map(KeyView::from).collect();
            if json.json {
                return output::json(&views);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.kid.clone(),
                        k.alg.clone(),
                        k.state.as_str().to_owned(),
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
            let kid = keys::rotate(
                &ctx.store,
                &ctx.master,
                ctx.settings.signing_alg,
                ctx.clock.now(),
                ctx.revocation_ttl,
                &portcullis_store::Actor::cli_admin(),
            )
            .await?;
            if json.json {
                return output::json(&RotatedKeyView {
                    kid,
                    alg: ctx.settings.signing_alg.as_str().into(),
                    state: "current".into(),
                });
            }
            crate::outln!(
                "new current key {kid} ({}); running servers pick it up within a second",
                ctx.settings.signing_alg
            );
            Ok(())
        }
    }
}
