//! The token service against a real store and keys, with a fixed clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::keyring::create_signing_key;
use portcullis_core::FixedClock;
use portcullis_core::{Audience, AuditKind};
use portcullis_crypto::Algorithm;
use portcullis_store::{NewAuditEvent, NewGrant, SqliteStore};

async fn service(dir: &std::path::Path, clock: Arc<FixedClock>) -> TokenService {
    let store: DynStore = Arc::new(SqliteStore::open(&dir.join("t.db")).await.unwrap());
    store.migrate().await.unwrap();
    let master = Arc::new(MasterKey::from_bytes(&[7; 32]).unwrap());
    create_signing_key(&store, &master, Algorithm::ES256, 0, 60)
        .await
        .unwrap();
    let keys = Keyring::load(&store, &master, 0).await.unwrap();
    TokenService {
        store,
        keys: Arc::new(keys),
        hasher: master.token_hasher(),
        issuer: "https://iss".into(),
        audience: "https://aud".into(),
        access_ttl: Ttl::from_secs(60).unwrap(),
        refresh_ttl: Ttl::from_secs(600).unwrap(),
        clock,
        denylist: Arc::new(Denylist::default()),
        verified: VerifiedCache::default(),
        master,
    }
}

fn claims(iat: i64, nbf: i64, exp: i64) -> AccessClaims {
    AccessClaims {
        iss: "https://iss".into(),
        sub: "pc_x".into(),
        aud: Audience::Many(vec!["other".into(), "https://aud".into()]),
        client_id: "pc_x".into(),
        jti: "fam_x.1".into(),
        iat,
        nbf,
        exp,
        scope: "upload-data".into(),
        scopes: vec!["upload-data".into()],
        label: None,
    }
}

#[tokio::test]
async fn time_claims_are_checked_without_leeway_against_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(1000));
    let svc = service(dir.path(), clock.clone()).await;
    let sign = |c: &AccessClaims| svc.keys.get().current.sign_jwt(c).unwrap();
    assert!(svc.verify(&sign(&claims(1000, 1000, 1060))).is_ok());
    assert_eq!(
        svc.verify(&sign(&claims(1000, 1001, 1060))).err(),
        Some(TokenRejection::NotYetValid)
    );
    assert_eq!(
        svc.verify(&sign(&claims(900, 900, 1000))).err(),
        Some(TokenRejection::Expired)
    );
    let t = sign(&claims(1000, 1000, 1060));
    clock.advance(59);
    assert!(svc.verify(&t).is_ok());
    clock.advance(1);
    assert_eq!(svc.verify(&t).err(), Some(TokenRejection::Expired));
}

#[tokio::test]
async fn issuer_audience_and_denylist_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), Arc::new(FixedClock::new(1000))).await;
    let sign = |c: &AccessClaims| svc.keys.get().current.sign_jwt(c).unwrap();
    let mut c = claims(1000, 1000, 1060);
    c.iss = "https://evil".into();
    assert_eq!(svc.verify(&sign(&c)).err(), Some(TokenRejection::Issuer));
    let mut c = claims(1000, 1000, 1060);
    c.aud = Audience::One("https://elsewhere".into());
    assert_eq!(svc.verify(&sign(&c)).err(), Some(TokenRejection::Audience));
    svc.denylist.add_family("fam_x", 2000);
    assert!(matches!(
        svc.verify(&sign(&claims(1000, 1000, 1060))).err(),
        Some(TokenRejection::Revoked(_))
    ));
}

#[tokio::test]
async fn a_refresh_token_from_before_selectors_still_refreshes_once() {
    use portcullis_core::{ClientId, ClientStatus, ScopeName};
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), Arc::new(FixedClock::new(1000))).await;
    let client = Client {
        id: ClientId::parse("pc_old").unwrap(),
        name: "old".into(),
        scopes: [ScopeName::parse("upload-data").unwrap()]
            .into_iter()
            .collect(),
        grant_types: vec![GrantType::ClientCredentials, GrantType::RefreshToken],
        redirect_uris: vec![],
        status: ClientStatus::Active,
        created_at: 0,
        access_token_ttl: None,
        refresh_token_ttl: None,
        issue_refresh_token: true,
        refresh_reuse_grace: Ttl::from_secs_allow_zero(0).unwrap(),
    };
    svc.store
        .create_client(
            &client,
            &[9; 32],
            &NewAuditEvent::new(0, AuditKind::ClientCreate, Actor::system()),
        )
        .await
        .unwrap();
    // A token of the old shape (`pcr_` + 256 bits, no selector), stored as
    // migration 5 leaves such rows: keyed by `h` + the hex of its HMAC.
    let old = PlainToken::generate(TokenKind::RefreshToken).unwrap();
    assert_eq!(
        PlainToken::selector(TokenKind::RefreshToken, old.expose()),
        None
    );
    let hash = svc.hasher.hash(TokenKind::RefreshToken, old.expose());
    let id = portcullis_store::sqlite::legacy_refresh_id(&hash.0);
    assert_eq!(id.len(), 65);
    assert_eq!(id, id.to_ascii_uppercase().replacen('H', "h", 1));
    svc.store
        .record_grant(NewGrant {
            family_id: "fam_old".into(),
            client_id: "pc_old".into(),
            label: None,
            subject: "pc_old".into(),
            scopes: ScopeSet::parse("upload-data").unwrap(),
            grant_type: "client_credentials".into(),
            created_at: 900,
            expires_at: 5000,
            refresh_token: Some(NewRefresh {
                id,
                hash: hash.0,
                expires_at: 5000,
            }),
            actor: Actor::system(),
            spends_code: None,
        })
        .await
        .unwrap();
    let (found, _) = svc.find_refresh(old.expose()).await.unwrap().unwrap();
    assert_eq!(found.family.id, "fam_old");
    // A forged token naming the same row by selector-less shape finds nothing.
    assert!(svc.find_refresh("pcr_forged").await.unwrap().is_none());
    let next = svc
        .refresh(&client, old.expose(), None, Actor::system())
        .await
        .unwrap();
    let new = next.refresh_token.unwrap();
    assert!(PlainToken::selector(TokenKind::RefreshToken, &new).is_some());
    assert!(
        svc.refresh(&client, &new, None, Actor::system())
            .await
            .is_ok()
    );
    // The old one is spent: presenting it again is reuse.
    assert!(
        svc.refresh(&client, old.expose(), None, Actor::system())
            .await
            .is_err()
    );
}
