//! The JWKS cache: refetch on an unknown `kid`, at most once per interval however
//! many requests miss at once, and refresh of an old key set.

use super::*;
use crate::{BearerError, Guard};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Verifies `tokens` concurrently; returns the results in order.
async fn verify_all(guard: &Arc<Guard>, tokens: Vec<String>) -> Vec<Result<(), BearerError>> {
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let g = Arc::clone(guard);
            tokio::spawn(async move { g.verify(&t).await.map(|_| ()) })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_in_key_is_fetched_once_for_50_concurrent_requests() {
    let old = TestKey::rsa("old");
    let new = TestKey::ec("new");
    let issuer = FakeIssuer::start(&[&old]).await;
    let guard = Arc::new(issuer.guard().await);
    assert_eq!(issuer.jwks_hits(), 1);
    issuer.publish(&[&new, &old]);
    // A slow refetch: every request below misses while it is in flight.
    issuer.state.jwks_delay_ms.store(300, Ordering::SeqCst);
    let tokens = (0..50).map(|_| new.sign(&issuer.claims())).collect();
    let results = verify_all(&guard, tokens).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(issuer.jwks_hits(), 2, "exactly one refetch");
    // The old key still verifies, from the cache.
    guard.verify(&old.sign(&issuer.claims())).await.unwrap();
    assert_eq!(issuer.jwks_hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_refetches_at_most_once_per_interval() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let interval = Duration::from_millis(500);
    let config = issuer.config().with_min_jwks_refetch_interval(interval);
    let guard = Arc::new(Guard::discover(config).await.unwrap());
    issuer.state.jwks_delay_ms.store(100, Ordering::SeqCst);
    let started = Instant::now();
    let bogus = |i: usize| {
        let mut h = key.header();
        h.kid = Some(format!("bogus-{i}"));
        key.sign_with(&h, &issuer.claims())
    };
    let results = verify_all(&guard, (0..50).map(bogus).collect()).await;
    for r in &results {
        assert_eq!(
            r,
            &Err(BearerError::InvalidToken(
                "the token is signed with an unknown key".into()
            ))
        );
    }
    assert_eq!(issuer.jwks_hits(), 2, "one refetch for 50 unknown kids");
    let results = verify_all(&guard, (50..100).map(bogus).collect()).await;
    assert!(results.iter().all(Result::is_err));
    if started.elapsed() < interval {
        assert_eq!(
            issuer.jwks_hits(),
            2,
            "no second refetch within the interval"
        );
    }
    // Once the interval has passed, an unknown kid may refetch again: once.
    let mut i = 100;
    assert!(
        eventually(Duration::from_secs(5), || {
            i += 1;
            let token = bogus(i);
            let g = Arc::clone(&guard);
            let state = Arc::clone(&issuer.state);
            async move {
                let _ = g.verify(&token).await;
                state.jwks_hits.load(Ordering::SeqCst) == 3
            }
        })
        .await
    );
    assert!(started.elapsed() >= interval);
    // Valid tokens were never affected.
    guard.verify(&key.sign(&issuer.claims())).await.unwrap();
    assert_eq!(issuer.jwks_hits(), 3);
}

#[tokio::test]
async fn an_unreachable_jwks_is_a_503_for_unknown_kids_and_known_keys_keep_working() {
    let key = TestKey::rsa("k1");
    let new = TestKey::rsa("k2");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await;
    issuer.state.jwks_status.store(500, Ordering::SeqCst);
    let r = guard.verify(&new.sign(&issuer.claims())).await;
    assert!(matches!(r, Err(BearerError::Unavailable(_))), "{r:?}");
    // Within the interval the answer stays "cannot check", without asking again.
    let r = guard.verify(&new.sign(&issuer.claims())).await;
    assert!(matches!(r, Err(BearerError::Unavailable(_))), "{r:?}");
    assert_eq!(issuer.jwks_hits(), 2);
    guard.verify(&key.sign(&issuer.claims())).await.unwrap();
}

#[tokio::test]
async fn a_key_withdrawn_from_the_jwks_stops_being_trusted_after_max_age() {
    let kept = TestKey::ed("kept");
    let withdrawn = TestKey::rsa("withdrawn");
    let issuer = FakeIssuer::start(&[&kept, &withdrawn]).await;
    let config = issuer
        .config()
        .with_jwks_max_age(Duration::from_millis(200))
        .with_min_jwks_refetch_interval(Duration::from_millis(100));
    let guard = Guard::discover(config).await.unwrap();
    let token = withdrawn.sign(&issuer.claims());
    guard.verify(&token).await.unwrap();
    issuer.publish(&[&kept]);
    assert!(
        eventually(Duration::from_secs(5), || async {
            guard.verify(&token).await.is_err()
        })
        .await,
        "the withdrawn key is dropped after the max age"
    );
    guard.verify(&kept.sign(&issuer.claims())).await.unwrap();
}
