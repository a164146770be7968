//! Fixtures shared by the checks: clients and their secrets, grants and
//! rotations, audit events and readers, revocations, uploads, end users with
//! their sessions, consents and authorization codes.

use portcullis_core::{
    AuditKind, Client, ClientId, ClientStatus, GrantType, ScopeName, ScopeSet, Ttl,
};
use portcullis_store::prelude::*;
use portcullis_store::{
    Actor, AuditFilter, AuditRecord, ConsentRecord, FamilyRecord, NewAuditEvent, NewCode, NewGrant,
    NewRefresh, NewUpload, Revocation, Rotation, UserRecord, UserSessionRow,
};

pub(crate) const PC: &str = "pc_test";
pub(crate) const OTHER: &str = "pc_other";

pub(crate) fn cid(id: &str) -> ClientId {
    ClientId::parse(id).unwrap()
}

pub(crate) fn scope_set(names: &[&str]) -> ScopeSet {
    names.iter().map(|n| ScopeName::parse(n).unwrap()).collect()
}

/// A stand-in for an HMAC: distinct inputs give distinct values.
pub(crate) fn digest(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in s.bytes().enumerate() {
        out[i % 32] = out[i % 32].wrapping_mul(31).wrapping_add(b);
    }
    out[31] ^= s.len() as u8;
    out
}

/// An active client taking client credentials and refresh tokens, no grace.
pub(crate) fn client(id: &str) -> Client {
    Client {
        id: cid(id),
        name: format!("client {id}"),
        scopes: scope_set(&["upload-data"]),
        grant_types: vec![GrantType::ClientCredentials, GrantType::RefreshToken],
        redirect_uris: vec![],
        status: ClientStatus::Active,
        created_at: 10,
        access_token_ttl: None,
        refresh_token_ttl: None,
        issue_refresh_token: true,
        refresh_reuse_grace: Ttl::from_secs_allow_zero(0).unwrap(),
    }
}

/// The audit kind named `name`.
pub(crate) fn k(name: &str) -> AuditKind {
    name.parse().unwrap()
}

/// A scope set from its space-separated names.
pub(crate) fn ss(names: &str) -> ScopeSet {
    ScopeSet::parse(names).unwrap()
}

/// An admin's audit event about a client.
pub(crate) fn admin_event(at: i64, kind: &str, client: &str) -> NewAuditEvent {
    NewAuditEvent {
        target: Some(client.into()),
        client_id: Some(client.into()),
        ..NewAuditEvent::new(at, k(kind), Actor::cli_admin())
    }
}

pub(crate) fn client_actor(client: &str) -> Actor {
    Actor {
        kind: "client",
        id: Some(client.into()),
        source: Some("192.0.2.7".into()),
    }
}

/// Registers `client(id)` with the secret `digest(id)`.
pub(crate) async fn create<S: Store + ?Sized>(s: &S, id: &str) {
    create_client(s, &client(id)).await;
}

pub(crate) async fn create_client<S: Store + ?Sized>(s: &S, c: &Client) {
    s.create_client(
        c,
        &digest(c.id.as_str()),
        &admin_event(c.created_at, "client.create", c.id.as_str()),
    )
    .await
    .unwrap();
}

/// The selector of a family's first refresh token.
pub(crate) fn rt(family: &str) -> String {
    format!("rt_{family}")
}

/// A grant at 100 whose family and first refresh token (`rt(family)`) last until 1000.
pub(crate) fn grant(client: &str, family: &str, label: Option<&str>) -> NewGrant {
    NewGrant {
        family_id: family.into(),
        client_id: client.into(),
        label: label.map(Into::into),
        subject: client.into(),
        scopes: ss("upload-data"),
        grant_type: "client_credentials".into(),
        created_at: 100,
        expires_at: 1000,
        refresh_token: Some(NewRefresh {
            id: rt(family),
            hash: digest(&rt(family)),
            expires_at: 1000,
        }),
        actor: client_actor(client),
        spends_code: None,
    }
}

pub(crate) async fn granted<S: Store + ?Sized>(s: &S, g: NewGrant) {
    assert!(s.record_grant(g).await.unwrap(), "the grant is recorded");
}

/// Spends `old` for `new` (which, like its family, lasts until 1000).
pub(crate) fn rotation(client: &str, family: &str, old: &str, new: &str, now: i64) -> Rotation {
    Rotation {
        old_id: old.into(),
        old_hash: digest(old),
        family_id: family.into(),
        client_id: client.into(),
        now,
        new: NewRefresh {
            id: new.into(),
            hash: digest(new),
            expires_at: 1000,
        },
        scopes: ss("upload-data"),
        family_expires_at: 1000,
        grace_response: None,
        audit: NewAuditEvent {
            target: Some(family.into()),
            client_id: Some(client.into()),
            ..NewAuditEvent::new(now, k("token.refresh"), client_actor(client))
        },
    }
}

pub(crate) fn everything() -> AuditFilter {
    AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    }
}

pub(crate) async fn audit_of<S: Store + ?Sized>(s: &S, kind: &str) -> Vec<AuditRecord> {
    s.list_audit(&AuditFilter {
        kind: Some(k(kind)),
        ..everything()
    })
    .await
    .unwrap()
}

pub(crate) async fn all_audit<S: Store + ?Sized>(s: &S) -> Vec<AuditRecord> {
    s.list_audit(&everything()).await.unwrap()
}

/// Every revocation still live at 0 (all the checks' revocations).
pub(crate) async fn revocations<S: Store + ?Sized>(s: &S) -> Vec<Revocation> {
    s.revocations_since(0, 0).await.unwrap()
}

/// A revocation without its sequence number.
pub(crate) fn rev(r: &Revocation) -> (&str, &str, Option<i64>, i64) {
    (&r.kind, &r.target, r.issued_before, r.expires_at)
}

pub(crate) async fn family<S: Store + ?Sized>(s: &S, id: &str) -> FamilyRecord {
    s.get_family(id).await.unwrap().expect("the family exists")
}

pub(crate) async fn spent_at<S: Store + ?Sized>(s: &S, selector: &str) -> Option<i64> {
    s.find_refresh_token(selector)
        .await
        .unwrap()
        .expect("the refresh token exists")
        .spent_at
}

pub(crate) async fn secrets<S: Store + ?Sized>(s: &S, id: &str, now: i64) -> Vec<[u8; 32]> {
    let mut hashes = s
        .get_client_auth(&cid(id), now)
        .await
        .unwrap()
        .expect("the client exists")
        .secret_hashes;
    hashes.sort();
    hashes
}

pub(crate) fn sorted(mut hashes: Vec<[u8; 32]>) -> Vec<[u8; 32]> {
    hashes.sort();
    hashes
}

pub(crate) fn upload(
    client: &str,
    batch: &str,
    label: Option<&str>,
    key: Option<&str>,
) -> NewUpload {
    NewUpload {
        batch_id: batch.into(),
        client_id: client.into(),
        label: label.map(Into::into),
        token_id: format!("jti_{batch}"),
        received_at: 100,
        idempotency_key: key.map(Into::into),
        body_hash: digest(batch),
        records: vec![r#"{"n":1}"#.into(), r#"{"n":2}"#.into()],
    }
}

/// The id of the end user the user checks mostly act on.
pub(crate) const ALICE: &str = "usr_alice";
/// Another end user, who must be left alone.
pub(crate) const BOB: &str = "usr_bob";

/// An active end user with id `id` and sign-in name `name`, created at 10.
pub(crate) fn user(id: &str, name: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        name: name.into(),
        password_hash: format!("$argon2id${name}"),
        active: true,
        created_at: 10,
        updated_at: 10,
    }
}

/// An admin's audit event about an end user.
pub(crate) fn user_event(at: i64, kind: &str, user: &str) -> NewAuditEvent {
    NewAuditEvent {
        target: Some(user.into()),
        ..NewAuditEvent::new(at, k(kind), Actor::cli_admin())
    }
}

/// An end user's own audit event about what they allowed `client`.
pub(crate) fn consent_event(at: i64, kind: &str, user: &str, client: &str) -> NewAuditEvent {
    NewAuditEvent {
        target: Some(user.into()),
        client_id: Some(client.into()),
        ..NewAuditEvent::new(at, k(kind), user_actor(user))
    }
}

pub(crate) fn user_actor(user: &str) -> Actor {
    Actor {
        kind: "user",
        id: Some(user.into()),
        source: Some("198.51.100.4".into()),
    }
}

/// Creates `user(id, name)` with its audit event.
pub(crate) async fn create_user<S: Store + ?Sized>(s: &S, id: &str, name: &str) {
    s.create_user(&user(id, name), &user_event(10, "user.create", id))
        .await
        .unwrap();
}

/// A grant at 100 by the authorization code flow: `user` let `client` have the
/// family `family`, which (with its first refresh token, `rt(family)`) lasts
/// until 1000.
pub(crate) fn user_grant(client: &str, family: &str, user: &str) -> NewGrant {
    NewGrant {
        subject: user.into(),
        grant_type: "authorization_code".into(),
        actor: user_actor(user),
        ..grant(client, family, None)
    }
}

/// A session of `user` whose cookie hashes to `[n; 32]`.
pub(crate) fn session(n: u8, user: &str, created_at: i64, expires_at: i64) -> UserSessionRow {
    UserSessionRow {
        id_hash: [n; 32],
        user_id: user.into(),
        csrf_token: format!("csrf-{n}"),
        created_at,
        last_seen_at: created_at,
        expires_at,
        source: Some("198.51.100.4".into()),
    }
}

/// An authorization code `name` (stored as `digest(name)`) that `user` let
/// `client` have at 100, valid until 160.
pub(crate) fn code(name: &str, client: &str, user: &str) -> NewCode {
    NewCode {
        hash: digest(name),
        client_id: client.into(),
        user_id: user.into(),
        redirect_uri: "https://app.example/cb".into(),
        redirect_uri_given: true,
        scopes: ss("upload-data view-indicator"),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        family_id: Some(format!("fam_of_{name}")),
        created_at: 100,
        expires_at: 160,
    }
}

/// What `user` allowed `client` at `at` (the client's name is the store's to fill in).
pub(crate) fn consent(user: &str, client: &str, scopes: &str, at: i64) -> ConsentRecord {
    ConsentRecord {
        user_id: user.into(),
        client_id: client.into(),
        client_name: String::new(),
        scopes: ss(scopes),
        created_at: at,
        updated_at: at,
        last_used_at: None,
    }
}
