//! `portcullis user create|list|disable|enable|reset-password`: end users, through
//! the same service as the admin pages and API.

use crate::cli::UserCommand;
use crate::context::Ctx;
use crate::output;
use portcullis_server::service::denylist::Denylist;
use portcullis_server::service::users::UserService;
use portcullis_server::views::UserView;
use portcullis_store::{Actor, UserRecord};
use std::sync::Arc;

fn print(user: &UserRecord, json: bool, done: &str) -> anyhow::Result<()> {
    if json {
        return output::json(&UserView::new(user));
    }
    crate::outln!("{done} user {} ({})", user.name, user.id);
    Ok(())
}

/// Runs a user command. Revocations made here reach running servers through the
/// database (they read it within a second).
pub async fn run(ctx: Ctx, cmd: UserCommand) -> anyhow::Result<()> {
    let users = UserService::new(
        Arc::clone(&ctx.store),
        ctx.master.token_hasher(),
        Arc::clone(&ctx.clock),
        Arc::new(Denylist::default()),
        ctx.revocation_ttl,
    );
    let admin = Actor::cli_admin();
    match cmd {
        UserCommand::Create { name, json, .. } => {
            let u = users
                .create(&name, &crate::commands::admin::password_line()?, &admin)
                .await?;
            print(&u, json.json, "created")
        }
        UserCommand::List { json } => {
            let list = users.list().await?;
            if json.json {
                let views: Vec<UserView> = list.iter().map(UserView::new).collect();
                return output::json(&views);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|u| {
                    let v = UserView::new(u);
                    vec![v.id, v.status, v.name, v.created_at]
                })
                .collect();
            output::table(&["USER_ID", "STATUS", "NAME", "CREATED_AT"], &rows);
            Ok(())
        }
        UserCommand::Disable { name, json } => {
            let u = users.set_status(&name, false, &admin).await?;
            print(&u, json.json, "disabled")
        }
        UserCommand::Enable { name, json } => {
            let u = users.set_status(&name, true, &admin).await?;
            print(&u, json.json, "enabled")
        }
        UserCommand::ResetPassword { name, json, .. } => {
            let u = users
                .reset_password(&name, &crate::commands::admin::password_line()?, &admin)
                .await?;
            print(&u, json.json, "set the password of")
        }
    }
}
