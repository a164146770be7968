//! `portcullis scope create|list`.

use crate::cli::ScopeCommand;
use crate::context::Ctx;
use crate::output;
use portcullis_server::service::scopes;
use portcullis_server::views::ScopeView;

/// Runs a scope command.
pub async fn run(ctx: Ctx, cmd: ScopeCommand) -> anyhow::Result<()> {
    match cmd {
        ScopeCommand::Create {
            name,
            description,
            json,
        } => {
            let rec = scopes::create(
                ctx.store.as_ref(),
                ctx.clock.as_ref(),
                &name,
                &description,
                &portcullis_store::Actor::cli_admin(),
            )
            .await?;
            if json.json {
                output::json(&ScopeView::from(&rec))
            } else {
                crate::outln!("created scope {}", rec.name);
                Ok(())
            }
        }
        ScopeCommand::List { json } => {
            let scopes = ctx.store.list_scopes().await?;
            if json.json {
                let views: Vec<ScopeView> = scopes.iter().map(ScopeView::from).collect();
                return output::json(&views);
            }
            let rows: Vec<Vec<String>> = scopes
                .iter()
                .map(|s| vec![s.name.clone(), s.description.clone()])
                .collect();
            output::table(&["SCOPE", "DESCRIPTION"], &rows);
            Ok(())
        }
    }
}
