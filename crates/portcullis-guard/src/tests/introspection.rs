//! Introspection: revoked tokens refused, answers cached, failures fail closed.

use super::*;
use crate::{BearerError, Guard, GuardError, IntrospectionConfig};
use std::sync::atomic::Ordering;

async fn guard_with_introspection(issuer: &FakeIssuer, ttl: Duration) -> Guard {
    let ic = IntrospectionConfig::new("pc_guard", "pcs_se cret:&").with_cache_ttl(ttl);
    Guard::discover(issuer.config().with_introspection(ic))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_inactive_token_is_refused_and_the_answer_cached() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    issuer.state.active.store(false, Ordering::SeqCst);
    let guard = guard_with_introspection(&issuer, Duration::from_secs(60)).await;
    let token = key.sign(&issuer.claims());
    for _ in 0..5 {
        let r = guard.verify(&token).await;
        assert_eq!(
            r,
            Err(BearerError::InvalidToken(
                "the token is no longer active (revoked?)".into()
            ))
        );
    }
    assert_eq!(issuer.introspection_hits(), 1, "answered from the cache");
    let (auth, form) = issuer
        .state
        .introspection_seen
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    // RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
    assert_eq!(
        auth,
        format!("Basic {}", STANDARD.encode("pc_guard:pcs_se+cret%3A%26"))
    );
    assert!(form.contains(&format!("token={token}")), "{form}");
    // Another token is a separate answer.
    let mut c = issuer.claims();
    c["jti"] = "fam_2.x".into();
    assert!(guard.verify(&key.sign(&c)).await.is_err());
    assert_eq!(issuer.introspection_hits(), 2);
}

#[tokio::test]
async fn a_revocation_is_honoured_once_the_cached_answer_expires() {
    let key = TestKey::ec("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = guard_with_introspection(&issuer, Duration::from_millis(200)).await;
    let token = key.sign(&issuer.claims());
    guard.verify(&token).await.unwrap();
    guard.verify(&token).await.unwrap();
    assert_eq!(issuer.introspection_hits(), 1);
    issuer.state.active.store(false, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(5), || async {
            guard.verify(&token).await.is_err()
        })
        .await
    );
    assert_eq!(
        issuer.introspection_hits(),
        2,
        "asked again only after the ttl"
    );
}

#[tokio::test]
async fn forged_tokens_never_reach_the_introspection_endpoint() {
    let key = TestKey::rsa("k1");
    let other = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = guard_with_introspection(&issuer, Duration::from_secs(10)).await;
    assert!(guard.verify(&other.sign(&issuer.claims())).await.is_err());
    assert_eq!(issuer.introspection_hits(), 0);
}

#[tokio::test]
async fn an_introspection_endpoint_that_fails_is_a_503_not_an_acceptance() {
    let key = TestKey::ed("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = guard_with_introspection(&issuer, Duration::from_secs(10)).await;
    let token = key.sign(&issuer.claims());
    for status in [500, 401, 404] {
        issuer
            .state
            .introspection_status
            .store(status, Ordering::SeqCst);
        let r = guard.verify(&token).await;
        assert!(
            matches!(r, Err(BearerError::Unavailable(_))),
            "{status}: {r:?}"
        );
    }
    // Failures are not cached: the next good answer is used at once.
    issuer
        .state
        .introspection_status
        .store(200, Ordering::SeqCst);
    guard.verify(&token).await.unwrap();
}

#[tokio::test]
async fn introspection_needs_an_advertised_endpoint() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    issuer
        .state
        .advertise_introspection
        .store(false, Ordering::SeqCst);
    let config = issuer
        .config()
        .with_introspection(IntrospectionConfig::new("a", "b"));
    assert!(matches!(
        Guard::discover(config).await,
        Err(GuardError::NoIntrospectionEndpoint)
    ));
}

#[tokio::test]
async fn the_answer_cache_is_bounded() {
    let key = TestKey::ec("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let ic = IntrospectionConfig::new("pc_guard", "s").with_cache_capacity(4);
    let guard = Guard::discover(issuer.config().with_introspection(ic))
        .await
        .unwrap();
    for i in 0..20 {
        let mut c = issuer.claims();
        c["jti"] = format!("fam.{i}").into();
        guard.verify(&key.sign(&c)).await.unwrap();
    }
    assert_eq!(issuer.introspection_hits(), 20);
    let cached = guard.introspection_cached();
    assert!(cached <= 4 && cached > 0, "{cached}");
}
