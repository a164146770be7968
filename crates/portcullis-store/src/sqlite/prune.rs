//! Housekeeping: removes what can no longer matter, in one transaction.

use super::changed;
use crate::{Pruned, StoreResult};
use rusqlite::Transaction;

/// One pruning pass at `now`.
pub(super) fn prune(tx: &Transaction<'_>, now: i64) -> StoreResult<Pruned> {
    // A label's last issue is read from its families (migration 13): fold the
    // time of those about to go into their labels first. By expiry: grouped by
    // client and label, SQLite would otherwise read every family by the index by
    // client, holding the write lock for seconds on a large database.
    tx.execute(
        "UPDATE labels SET last_issued_at = max(coalesce(labels.last_issued_at, 0), f.t) \
         FROM (SELECT client_id, label, max(coalesce(last_issued_at, created_at)) AS t \
               FROM token_families INDEXED BY token_families_by_expiry \
               WHERE expires_at <= ?1 AND label IS NOT NULL \
               GROUP BY client_id, label) f \
         WHERE labels.client_id = f.client_id AND labels.name = f.label",
        [now],
    )?;
    // A family is kept until its last token expired: reuse detection needs its
    // spent refresh tokens until then, even after it was revoked.
    let families = tx.execute("DELETE FROM token_families WHERE expires_at <= ?1", [now])?;
    // A refresh token past its own expiry is refused as expired whether spent or
    // not, so reuse detection no longer needs it.
    tx.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?1", [now])?;
    let revocations = tx.execute("DELETE FROM revocations WHERE expires_at <= ?1", [now])?;
    // Grace answers are only needed for the longest grace a client has; the spent
    // token itself stays for reuse detection.
    let grace_responses = tx.execute(
        "UPDATE refresh_tokens SET grace_response = NULL WHERE grace_response IS NOT NULL \
         AND spent_at <= ?1 - (SELECT coalesce(max(refresh_reuse_grace), 0) FROM clients)",
        [now],
    )?;
    // A code lives 60 s; it is kept an hour longer so that a late second use is
    // still recognised as reuse (and its tokens revoked).
    let codes = tx.execute(
        "DELETE FROM authorization_codes WHERE expires_at <= ?1 - 3600",
        [now],
    )?;
    Ok(Pruned {
        families: changed(families),
        revocations: changed(revocations),
        grace_responses: changed(grace_responses),
        codes: changed(codes),
    })
}
