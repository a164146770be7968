//! `portcullis token issue|list`: an admin mints a token set for a client without
//! its secret (the seed's "generate tokens via the admin interface"), and lists a
//! client's token families.

use crate::cli::{GlobalArgs, ServerArgs, TokenCommand};
use crate::commands::announce;
use crate::context::{Ctx, open};
use crate::output;
use anyhow::{Context, bail};
use portcullis_core::time::rfc3339;
use portcullis_server::keyring::Keyring;
use portcullis_server::service::denylist::Denylist;
use portcullis_server::service::mint::{self, MintError};
use portcullis_server::service::revocation::Revoker;
use portcullis_server::service::tokens::TokenService;
use portcullis_server::service::usage::TOKENS_ISSUED;
use portcullis_server::views::FamilyView;
use portcullis_store::Actor;
use std::sync::Arc;

/// A token service for the issuer and audience the server runs with.
pub async fn token_service(ctx: &Ctx) -> anyhow::Result<TokenService> {
    let issuer = match &ctx.settings.issuer {
        Some(i) => i.trim_end_matches('/').to_owned(),
        None => ctx.store.get_setting("issuer").await?.context(
            "no issuer known: pass --issuer (or start `portcullis serve` once so it is recorded)",
        )?,
    };
    let audience = match &ctx.settings.audience {
        Some(a) => a.clone(),
        None if ctx.settings.issuer.is_some() => issuer.clone(),
        None => ctx
            .store
            .get_setting("audience")
            .await?
            .unwrap_or_else(|| issuer.clone()),
    };
    let keys = Keyring::load(&ctx.store, &ctx.master, ctx.clock.now())
        .await
        .context("loading signing keys")?;
    Ok(TokenService {
        store: ctx.store.clone(),
        keys: Arc::new(keys),
        hasher: ctx.master.token_hasher(),
        issuer,
        audience,
        access_ttl: ctx.settings.access_token_ttl,
        refresh_ttl: ctx.settings.refresh_token_ttl,
        clock: ctx.clock.clone(),
        denylist: Arc::new(Denylist::default()),
        verified: Default::default(),
        master: ctx.master.clone(),
    })
}

/// A revoker for commands run outside the server (the servers poll the table).
pub fn revoker<'a>(ctx: &'a Ctx, denylist: &'a Denylist) -> Revoker<'a> {
    Revoker {
        store: &ctx.store,
        denylist,
        clock: ctx.clock.as_ref(),
        default_access_ttl: ctx.revocation_ttl,
    }
}

/// Runs a token command.
pub async fn run(global: &GlobalArgs, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Issue {
            client,
            scopes,
            label,
            json,
            server,
        } => {
            let ctx = open(global, &server).await?;
            announce(&ctx);
            let client = crate::commands::client::client_service(&ctx)
                .get(&client)
                .await?;
            let requested = (!scopes.is_empty()).then(|| scopes.join(" "));
            let service = token_service(&ctx).await?;
            let issued = mint::mint(
                &service,
                &client,
                label.as_deref(),
                requested.as_deref(),
                Actor::cli_admin(),
            )
            .await
            .map_err(|e| match e {
                MintError::Label(m) => anyhow::anyhow!("--label: {m}"),
                MintError::Disabled => anyhow::anyhow!("client {} is disabled", client.id),
                other => anyhow::anyhow!("{other}"),
            })?;
            // The dashboard's count of tokens issued (a server counts its own).
            let day = portcullis_core::time::day_start(ctx.clock.now());
            ctx.store
                .bump_daily_counters(&[(day, TOKENS_ISSUED.to_owned(), 1)])
                .await?;
            if json.json {
                let mut v = serde_json::to_value(&issued.response)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("id".into(), issued.family_id.clone().into());
                }
                return output::json(&v);
            }
            crate::outln!("family:        {}", issued.family_id);
            crate::outln!("access_token:  {}", issued.response.access_token);
            if let Some(r) = &issued.response.refresh_token {
                crate::outln!("refresh_token: {r}");
            }
            crate::outln!("scope:         {}", issued.response.scope);
            crate::outln!("expires_in:    {}s", issued.response.expires_in);
            crate::outln!("  (shown once: only the refresh token's hash is kept)");
            Ok(())
        }
        TokenCommand::Revoke {
            id,
            client,
            label,
            json,
        } => {
            let ctx = open(global, &ServerArgs::default()).await?;
            announce(&ctx);
            let denylist = Denylist::default();
            let revoker = revoker(&ctx, &denylist);
            let revoked: Vec<String> = match (id, client) {
                (Some(id), None) => {
                    if label.is_some() {
                        bail!("--label goes with --client, not --id");
                    }
                    if ctx.store.get_family(&id).await?.is_none() {
                        bail!("no token family with id {id}");
                    }
                    if revoker
                        .family(&id, None, &Actor::cli_admin(), "admin")
                        .await?
                    {
                        vec![id]
                    } else {
                        vec![]
                    }
                }
                (None, Some(client)) => {
                    let c = crate::commands::client::client_service(&ctx)
                        .get(&client)
                        .await?;
                    revoker
                        .label(&c, label.as_deref(), &Actor::cli_admin())
                        .await?
                }
                _ => bail!("give either --id FAMILY_ID or --client ID [--label LABEL]"),
            };
            if json.json {
                return output::json(&serde_json::json!({ "revoked": revoked }));
            }
            crate::outln!(
                "revoked {} token famil{}; running servers refuse their tokens within a second",
                revoked.len(),
                if revoked.len() == 1 { "y" } else { "ies" }
            );
            Ok(())
        }
        TokenCommand::List {
            client,
            label,
            json,
        } => {
            let ctx = open(global, &ServerArgs::default()).await?;
            announce(&ctx);
            let c = crate::commands::client::client_service(&ctx)
                .get(&client)
                .await?;
            let families = ctx
                .store
                .list_families(&c.id, label.as_deref(), None)
                .await?;
            let views: Vec<FamilyView> = families.iter().map(FamilyView::from).collect();
            if json.json {
                return output::json(&views);
            }
            let rows: Vec<Vec<String>> = families
                .iter()
                .map(|f| {
                    vec![
                        f.id.clone(),
                        f.label.clone().unwrap_or_else(|| "-".into()),
                        f.scopes.to_string(),
                        rfc3339(f.created_at),
                        rfc3339(f.expires_at),
                        f.revoked_at.map_or_else(|| "-".into(), rfc3339),
                    ]
                })
                .collect();
            output::table(
                &["FAMILY", "LABEL", "SCOPES", "CREATED", "EXPIRES", "REVOKED"],
                &rows,
            );
            Ok(())
        }
    }
}
