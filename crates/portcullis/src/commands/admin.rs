//! `portcullis admin create-user|reset-password NAME --password-stdin`.

use crate::cli::AdminCommand;
use crate::context::Ctx;
use anyhow::{Context, bail};
use portcullis_crypto::password::hash_password;
use std::io::BufRead;

const MIN_PASSWORD_CHARS: usize = 12;

/// The first line of standard input (`--password-stdin`), without its line end.
pub fn password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_password() -> anyhow::Result<String> {
    let pw = password_line()?;
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    if pw.chars().count() > 1024 {
        bail!("the password is longer than 1024 characters");
    }
    Ok(pw)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'@'));
    if !ok {
        bail!("user names are 1-64 characters of letters, digits and . _ - @");
    }
    Ok(())
}

/// Runs an admin command.
pub async fn run(ctx: Ctx, cmd: AdminCommand) -> anyhow::Result<()> {
    let now = ctx.clock.now();
    match cmd {
        AdminCommand::CreateUser { name, .. } => {
            check_name(&name)?;
            let hash = hash_password(&read_password()?)?;
            ctx.store.create_admin_user(&name, &hash, now).await?;
            crate::outln!("created admin user {name}");
        }
        AdminCommand::ResetPassword { name, .. } => {
            check_name(&name)?;
            let hash = hash_password(&read_password()?)?;
            ctx.store.set_admin_password(&name, &hash, now).await?;
            crate::outln!("password changed for admin user {name}");
        }
    }
    Ok(())
}
