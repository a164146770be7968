//! Failed-authentication throttles that never become a lockout: a correct
//! credential from a source that has not itself been failing is never refused;
//! behind a `--trusted-proxy` the forwarded address is the source, and from any
//! other peer forwarded headers change nothing.

use crate::admin::{Browser, first_admin_password};
use crate::helpers::*;
use portcullis_testkit::TestServer;
use reqwest::{Client, Response};

const CC: [(&str, &str); 1] = [("grant_type", "client_credentials")];

async fn token_via(
    client: &Client,
    s: &TestServer,
    id: &str,
    secret: &str,
    forwarded_for: Option<&str>,
) -> Response {
    let mut req = client
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(id, Some(secret))
        .form(&CC);
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap()
}

fn retry_after(r: &Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_failing_source_is_throttled_but_a_correct_secret_always_passes() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Guessed", &[]).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(
            token_basic(&s, &id, "pcs_guess", &CC)
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = token_basic(&s, &id, "pcs_guess", &CC).await;
    assert_eq!(r.status(), 429);
    assert!((1..=60).contains(&retry_after(&r)));
    let (_, e, _, _) = oauth_error(r).await;
    assert_eq!(e, "invalid_client");
    // The secret is checked before the throttle: the right one passes, even from here.
    let r = token_basic(&s, &id, &secret, &CC).await;
    assert_eq!(r.status(), 200);
    // Revocation and introspection authenticate the same way.
    let r = http()
        .post(format!("{}/oauth/introspect", s.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Another source is not touched by this one's failures.
    let other = http_from("127.0.0.2");
    let r = token_via(&other, &s, &id, "pcs_guess", None).await;
    assert_eq!(r.status(), 401);
    // A burst is audited once.
    let events = s.audit_events("client.auth_failed_burst").unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["source"], "127.0.0.1");
}

#[tokio::test]
async fn failures_against_a_client_id_from_many_sources_do_not_lock_that_client_out() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Public id", &[]).unwrap();
    // 120 failures for this client id, from six addresses (more than the old
    // per-client limit of 100 a minute).
    for n in 2..8 {
        let attacker = http_from(&format!("127.0.0.{n}"));
        for _ in 0..20 {
            let r = token_via(&attacker, &s, &id, "pcs_wrong", None).await;
            assert_eq!(r.status(), 401);
        }
    }
    let r = token_basic(&s, &id, &secret, &CC).await;
    assert_eq!(r.status(), 200, "the client itself still gets tokens");
}

#[tokio::test]
async fn forwarded_addresses_are_ignored_from_an_untrusted_peer() {
    let s = server(&[]);
    let (id, _) = s.create_client("Spoofed", &[]).unwrap();
    let client = http();
    let mut last = 0;
    for i in 0..21 {
        let xff = format!("198.51.100.{i}");
        last = token_via(&client, &s, &id, "pcs_x", Some(&xff))
            .await
            .status()
            .as_u16();
    }
    // Every made-up address was the same source: the peer.
    assert_eq!(last, 429);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_its_own_source() {
    let s = server(&["--trusted-proxy", "127.0.0.1/32"]);
    let (id, secret) = s.create_client("Behind nginx", &[]).unwrap();
    let proxy = http();
    for _ in 0..21 {
        token_via(&proxy, &s, &id, "pcs_junk", Some("203.0.113.66")).await;
    }
    let r = token_via(&proxy, &s, &id, "pcs_junk", Some("203.0.113.66")).await;
    assert_eq!(r.status(), 429, "the junk source is throttled");
    // Other clients behind the same proxy are not: a wrong secret is a plain 401,
    // the right one a token.
    let r = token_via(&proxy, &s, &id, "pcs_typo", Some("198.51.100.7")).await;
    assert_eq!(r.status(), 401);
    let r = token_via(&proxy, &s, &id, &secret, Some("198.51.100.8")).await;
    assert_eq!(r.status(), 200);
    // A client-supplied entry left of the proxy's own is not believed.
    let r = token_via(
        &proxy,
        &s,
        &id,
        "pcs_junk",
        Some("198.51.100.9, 203.0.113.66"),
    )
    .await;
    assert_eq!(r.status(), 429);
    // RFC 7239 Forwarded works too.
    let r = proxy
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(&id, Some("pcs_junk"))
        .header("forwarded", "for=203.0.113.66;proto=https")
        .form(&CC)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // IPv6 is counted by /64: new addresses in the same /64 are the same source.
    for i in 0..20 {
        let xff = format!("2001:db8:7:7::{:x}", i + 1);
        token_via(&proxy, &s, &id, "pcs_junk", Some(&xff)).await;
    }
    let r = token_via(&proxy, &s, &id, "pcs_junk", Some("2001:db8:7:7:abcd::1")).await;
    assert_eq!(r.status(), 429);
    let r = token_via(&proxy, &s, &id, "pcs_junk", Some("2001:db8:7:8::1")).await;
    assert_eq!(r.status(), 401);
    // The audit log names the forwarded source.
    let events = s.audit_events("client.auth_failed_burst").unwrap();
    let sources: Vec<&str> = events
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert!(sources.contains(&"203.0.113.66"), "{sources:?}");
}

#[tokio::test]
async fn one_source_guessing_the_admin_password_does_not_lock_the_admin_out() {
    let s = server(&[]);
    let pw = first_admin_password(&s);
    let mut attacker = Browser::new(&s);
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(
            attacker
                .login("admin", "wrong password!")
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(statuses[..10].iter().all(|c| *c == 401), "{statuses:?}");
    assert_eq!(statuses[10], 429);
    let r = attacker.login("admin", &pw).await;
    assert_eq!(
        r.status(),
        429,
        "the failing source waits, even with the password"
    );
    assert!((1..=60).contains(&retry_after(&r)));
    // The admin, from anywhere else, signs in at once.
    let mut admin = Browser::from_addr(&s, "127.0.0.2");
    let r = admin.login("admin", &pw).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin");
    let events = s.audit_events("admin.login_failed_burst").unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn a_flood_against_the_admin_from_many_sources_delays_but_never_refuses_the_admin() {
    let s = server(&["--trusted-proxy", "127.0.0.1"]);
    let pw = first_admin_password(&s);
    // 30 sources, one wrong password each: no source reaches a limit.
    for i in 0..30 {
        let mut b = Browser::new(&s);
        let r = b
            .login_forwarded("admin", "not it", &format!("192.0.2.{i}"))
            .await;
        assert_eq!(r.status(), 401);
    }
    let events = s.audit_events("admin.login_flood").unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    // The admin, from a source that has not been failing, gets in (a little later).
    let mut admin = Browser::new(&s);
    let r = admin.login_forwarded("admin", &pw, "198.51.100.1").await;
    assert_eq!(r.status(), 303);
}
