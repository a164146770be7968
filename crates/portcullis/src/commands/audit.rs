//! `portcullis audit list`.

use crate::cli::AuditCommand;
use crate::context::Ctx;
use crate::output;
use anyhow::Context;
use portcullis_core::Ttl;
use portcullis_server::views::AuditView;
use portcullis_store::AuditFilter;

/// Runs an audit command.
pub async fn run(ctx: Ctx, cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        client,
        label,
        kind,
        since,
        limit,
        before,
        json,
    } = cmd;
    if !(1..=1000).contains(&limit) {
        anyhow::bail!("--limit must be between 1 and 1000");
    }
    let kind = kind
        .map(|k| k.parse::<portcullis_core::AuditKind>())
        .transpose()
        .context("--kind")?;
    let since = since
        .map(|s| s.parse::<Ttl>().context("--since"))
        .transpose()?
        .map(|t| ctx.clock.now() - t.secs_i64());
    let events = ctx
        .store
        .list_audit(&AuditFilter {
            client_id: client,
            label,
            kind,
            since,
            before_id: before,
            limit,
        })
        .await?;
    let views: Vec<AuditView> = events.iter().map(AuditView::from).collect();
    if json.json {
        return output::json(&views);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.at.clone(),
                e.kind.clone(),
                format!(
                    "{}{}",
                    e.actor.kind,
                    e.actor
                        .id
                        .as_ref()
                        .map(|i| format!(":{i}"))
                        .unwrap_or_default()
                ),
                e.target.clone().unwrap_or_default(),
                e.label.clone().unwrap_or_default(),
                e.source.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &["ID", "AT", "KIND", "ACTOR", "TARGET", "LABEL", "SOURCE"],
        &rows,
    );
    Ok(())
}
