//! `portcullis client …`.

use crate::cli::ClientCommand;
use crate::context::Ctx;
use crate::output;
use anyhow::Context;
use portcullis_core::{Client, ClientStatus, Ttl};
use portcullis_server::service::clients::{ClientService, NewClientSpec};
use portcullis_server::service::denylist::Denylist;
use portcullis_server::views::ClientView;
use portcullis_store::Actor;
use std::sync::Arc;

/// The client service for a command run outside the server: its revocations reach
/// the servers through the database (they read it within a second), and its cache
/// lives only as long as the command.
pub fn client_service(ctx: &Ctx) -> ClientService {
    ClientService::new(
        Arc::clone(&ctx.store),
        ctx.master.token_hasher(),
        Arc::clone(&ctx.clock),
        Arc::new(Denylist::default()),
        ctx.revocation_ttl,
    )
}

fn ttl(v: Option<String>, flag: &str) -> anyhow::Result<Option<Ttl>> {
    v.map(|s| s.parse::<Ttl>().with_context(|| format!("--{flag}")))
        .transpose()
}

fn print_client(c: &Client, secret: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut view = ClientView::new(c);
    view.client_secret = secret.map(str::to_owned);
    if json {
        return output::json(&view);
    }
    crate::outln!("client_id:     {}", view.client_id);
    crate::outln!("name:          {}", view.name);
    crate::outln!("status:        {}", view.status);
    crate::outln!("scopes:        {}", view.scopes.join(" "));
    crate::outln!("grant_types:   {}", view.grant_types.join(" "));
    if !view.redirect_uris.is_empty() {
        crate::outln!("redirect_uris: {}", view.redirect_uris.join(" "));
    }
    crate::outln!("created_at:    {}", view.created_at);
    if let Some(s) = secret {
        crate::outln!("client_secret: {s}");
        crate::outln!("  (shown once: store it now; only its hash is kept)");
    }
    Ok(())
}

/// Runs a client command.
pub async fn run(ctx: Ctx, cmd: ClientCommand) -> anyhow::Result<()> {
    let clients = client_service(&ctx);
    let admin = Actor::cli_admin();
    match cmd {
        ClientCommand::Create {
            name,
            scopes,
            grants,
            redirect_uris,
            access_token_ttl,
            refresh_token_ttl,
            no_refresh_token,
            refresh_reuse_grace,
            json,
        } => {
            let grace = refresh_reuse_grace
                .map(|g| Ttl::parse_allow_zero(&g).context("--refresh-reuse-grace"))
                .transpose()?;
            let spec = NewClientSpec {
                name,
                scopes,
                grant_types: grants,
                redirect_uris,
                access_token_ttl: ttl(access_token_ttl, "access-token-ttl")?,
                refresh_token_ttl: ttl(refresh_token_ttl, "refresh-token-ttl")?,
                no_refresh_token,
                refresh_reuse_grace: grace,
            };
            let (client, secret) = clients.create(spec, &admin).await?;
            print_client(&client, Some(secret.expose()), json.json)
        }
        ClientCommand::List { json } => {
            let list = ctx.store.list_clients().await?;
            if json.json {
                let views: Vec<ClientView> = list.iter().map(ClientView::new).collect();
                return output::json(&views);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.status.to_string(),
                        c.name.clone(),
                        c.scopes.to_string(),
                    ]
                })
                .collect();
            output::table(&["CLIENT_ID", "STATUS", "NAME", "SCOPES"], &rows);
            Ok(())
        }
        ClientCommand::Show { id, json } => print_client(&clients.get(&id).await?, None, json.json),
        ClientCommand::Disable { id, json } => {
            let c = clients
                .set_status(&id, ClientStatus::Disabled, &admin)
                .await?;
            print_client(&c, None, json.json)
        }
        ClientCommand::Enable { id, json } => {
            let c = clients
                .set_status(&id, ClientStatus::Active, &admin)
                .await?;
            print_client(&c, None, json.json)
        }
        ClientCommand::Delete { id, json } => {
            clients.delete(&id, &admin).await?;
            if json.json {
                output::json(&serde_json::json!({"client_id": id, "deleted": true}))
            } else {
                crate::outln!("deleted client {id}");
                Ok(())
            }
        }
        ClientCommand::RotateSecret {
            id,
            keep_old_for,
            json,
        } => {
            let keep = keep_old_for
                .map(|k| Ttl::parse_allow_zero(&k).context("--keep-old-for"))
                .transpose()?;
            let (c, secret) = clients.rotate_secret(&id, keep, &admin).await?;
            print_client(&c, Some(secret.expose()), json.json)
        }
    }
}
