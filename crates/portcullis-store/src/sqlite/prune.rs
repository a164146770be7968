//! Housekeeping: removes what can no longer matter, in one transaction.

use super::changed;
use crate::{Pruned, StoreResult};
use rusqlite::Transaction;

/// The pass's statements, in order, each with `?1` the time of the pass. Every one
/// reads by an index (a test checks their plans): the pass holds the writer's
/// transaction, so a scan of a large table would hold back every grant behind it.
pub(super) const PRUNE: [&str; 6] = [
    // A label's last issue is read from its families (migration 13): fold the
    // time of those about to go into their labels first. By expiry: grouped by
    // client and label, SQLite would otherwise read every family by the index by
    // client, holding the write lock for seconds on a large database.
    "UPDATE labels SET last_issued_at = max(coalesce(labels.last_issued_at, 0), f.t) \
     FROM (SELECT client_id, label, max(coalesce(last_issued_at, created_at)) AS t \
           FROM token_families INDEXED BY token_families_by_expiry \
           WHERE expires_at <= ?1 AND label IS NOT NULL \
           GROUP BY client_id, label) f \
     WHERE labels.client_id = f.client_id AND labels.name = f.label",
    // A family is kept until its last token expired: reuse detection needs its
    // spent refresh tokens until then, even after it was revoked.
    "DELETE FROM token_families WHERE expires_at <= ?1",
    // A refresh token past its own expiry is refused as expired whether spent or
    // not, so reuse detection no longer needs it.
    "DELETE FROM refresh_tokens WHERE expires_at <= ?1",
    "DELETE FROM revocations WHERE expires_at <= ?1",
    // Grace answers are only needed for the longest grace a client has; the spent
    // token itself stays for reuse detection. Their own table (migration 15)
    // holds only the answers kept since the last pass.
    "DELETE FROM refresh_grace \
     WHERE spent_at <= ?1 - (SELECT coalesce(max(refresh_reuse_grace), 0) FROM clients)",
    // A code lives 60 s; it is kept an hour longer so that a late second use is
    // still recognised as reuse (and its tokens revoked).
    "DELETE FROM authorization_codes WHERE expires_at <= ?1 - 3600",
];

/// One pruning pass at `now`.
pub(super) fn prune(tx: &Transaction<'_>, now: i64) -> StoreResult<Pruned> {
    let mut changes = [0; PRUNE.len()];
    for (n, sql) in changes.iter_mut().zip(PRUNE) {
        *n = tx.execute(sql, [now])?;
    }
    let [_, families, _, revocations, grace_responses, codes] = changes;
    Ok(Pruned {
        families: changed(families),
        revocations: changed(revocations),
        grace_responses: changed(grace_responses),
        codes: changed(codes),
    })
}
