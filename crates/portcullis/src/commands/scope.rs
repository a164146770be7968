//! `portcullis scope create|list`.

use crate::cli::ScopeCommand;
use crate::context::Ctx;
use crate::output;
use portcullis_core::ScopeName;
use portcullis_server::views::ScopeView;
use portcullis_store::ScopeRecord;

/// Runs a scope command.
pub async fn run(ctx: Ctx, cmd: ScopeCommand) -> anyhow::Result<()> {
    match cmd {
        ScopeCommand::Create {
            name,
            description,
            json,
        } => {
            let name = ScopeName::parse(&name)?;
            if description.chars().count() > 500 || description.chars().any(char::is_control) {
                anyhow::bail!("description must be at most 500 printable characters");
            }
            let rec = ScopeRecord {
                name: name.to_string(),
                description,
                created_at: ctx.clock.now(),
            };
            ctx.store.create_scope(&rec).await?;
            if json.json {
                output::json(&ScopeView::from(&rec))
            } else {
                println!("created scope {}", rec.name);
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
