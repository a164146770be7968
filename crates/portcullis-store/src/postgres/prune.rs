//! Housekeeping on PostgreSQL: removes what can no longer matter, in one
//! transaction, on one node at a time (the others find the lock taken and skip).

use super::lock;
use crate::{Pruned, StoreResult};
use deadpool_postgres::Object;

/// One pruning pass at `now`.
pub(super) async fn prune(c: &mut Object, now: i64) -> StoreResult<Pruned> {
    let tx = c.transaction().await?;
    let led: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock($1)",
            &[&lock::HOUSEKEEPING],
        )
        .await?
        .try_get(0)?;
    if !led {
        return Ok(Pruned::default());
    }
    // A label's last issue is read from its families (migration 0009): fold the
    // time of those about to go into their labels first.
    tx.execute(
        "UPDATE labels l SET last_issued_at = GREATEST(l.last_issued_at, f.t) \
         FROM (SELECT client_id, label, max(coalesce(last_issued_at, created_at)) AS t \
               FROM token_families WHERE expires_at <= $1 AND label IS NOT NULL \
               GROUP BY client_id, label) f \
         WHERE l.client_id = f.client_id AND l.name = f.label",
        &[&now],
    )
    .await?;
    // A family is kept until its last token expired: reuse detection needs its
    // spent refresh tokens until then, even after it was revoked.
    let families = tx
        .execute("DELETE FROM token_families WHERE expires_at <= $1", &[&now])
        .await?;
    tx.execute("DELETE FROM refresh_tokens WHERE expires_at <= $1", &[&now])
        .await?;
    let revocations = tx
        .execute("DELETE FROM revocations WHERE expires_at <= $1", &[&now])
        .await?;
    let grace_responses = tx
        .execute(
            "UPDATE refresh_tokens SET grace_response = NULL WHERE grace_response IS NOT NULL \
             AND spent_at <= $1 - (SELECT coalesce(max(refresh_reuse_grace), 0) FROM clients)",
            &[&now],
        )
        .await?;
    // A code lives 60 s; it is kept an hour longer so that a late second use is
    // still recognised as reuse (and its tokens revoked).
    let codes = tx
        .execute(
            "DELETE FROM authorization_codes WHERE expires_at <= $1::bigint - 3600",
            &[&now],
        )
        .await?;
    tx.commit().await?;
    Ok(Pruned {
        families,
        revocations,
        grace_responses,
        codes,
    })
}
