//! The audit log and the dashboard: audit events, their filters and pages,
//! daily counters, and the dashboard's counts.

use super::fixtures::*;
use portcullis_core::AuditKind;
use portcullis_store::prelude::*;
use portcullis_store::{
    Actor, AuditFilter, AuditRecord, NewAuditEvent, NewGrant, NewRefresh, NewUpload, Rotation,
};

pub async fn an_appended_audit_event_reads_back_whole<S: Store + ?Sized>(s: &S) {
    let e = NewAuditEvent {
        at: 123,
        kind: AuditKind::ClientAuthFailedBurst,
        actor: Actor {
            kind: "user",
            id: Some("alice".into()),
            source: Some("203.0.113.9".into()),
        },
        target: Some("fam_x".into()),
        client_id: Some(PC.into()),
        label: Some("home".into()),
        detail: Some(r#"{"why":"bad secret"}"#.into()),
    };
    s.append_audit(&e).await.unwrap();
    s.append_audit(&NewAuditEvent::new(124, k("key.rotate"), Actor::system()))
        .await
        .unwrap();
    let all = all_audit(s).await;
    assert_eq!(all.len(), 2);
    assert!(all[0].id > all[1].id, "newest first");
    assert_eq!(
        all[1],
        AuditRecord {
            id: all[1].id,
            at: 123,
            kind: "client.auth_failed_burst".into(),
            actor_kind: "user".into(),
            actor_id: Some("alice".into()),
            target: Some("fam_x".into()),
            client_id: Some(PC.into()),
            label: Some("home".into()),
            source: Some("203.0.113.9".into()),
            detail: Some(r#"{"why":"bad secret"}"#.into()),
        }
    );
    assert_eq!(
        all[0],
        AuditRecord {
            id: all[0].id,
            at: 124,
            kind: "key.rotate".into(),
            actor_kind: "system".into(),
            actor_id: None,
            target: None,
            client_id: None,
            label: None,
            source: None,
            detail: None,
        }
    );
}

/// The events' numbers (1 = first appended) of what `f` lists, in its order.
async fn numbers<S: Store + ?Sized>(s: &S, ids: &[i64], f: AuditFilter) -> Vec<usize> {
    s.list_audit(&f)
        .await
        .unwrap()
        .iter()
        .map(|r| ids.iter().position(|id| *id == r.id).unwrap() + 1)
        .collect()
}

pub async fn the_audit_log_filters_and_pages_newest_first<S: Store + ?Sized>(s: &S) {
    let events = [
        (100, "token.issue", "pc_a", "home-1"),
        (100, "token.issue", "pc_b", "home-1"),
        (200, "token.refresh", "pc_a", "home-2"),
        (200, "token.issue", "pc_a", "home-1"),
        (300, "token.revoke", "pc_b", "home-2"),
        (300, "token.issue", "pc_a", "home-2"),
        (400, "token.refresh", "pc_a", "home-1"),
        (400, "token.issue", "pc_b", "home-1"),
    ];
    for (at, kind, client, label) in events {
        s.append_audit(&NewAuditEvent {
            client_id: Some(client.into()),
            label: Some(label.into()),
            ..NewAuditEvent::new(at, k(kind), Actor::system())
        })
        .await
        .unwrap();
    }
    let all = all_audit(s).await;
    let mut ids: Vec<i64> = all.iter().map(|r| r.id).collect();
    ids.reverse();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids grow as events are appended"
    );
    let kinds: Vec<&str> = all.iter().rev().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, events.map(|e| e.1), "one record per event");

    let of_client = |c: &str| AuditFilter {
        client_id: Some(c.into()),
        ..everything()
    };
    let n = |f| numbers(s, &ids, f);
    assert_eq!(n(everything()).await, [8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(n(of_client("pc_a")).await, [7, 6, 4, 3, 1]);
    assert!(n(of_client("pc_none")).await.is_empty());
    let label = AuditFilter {
        label: Some("home-2".into()),
        ..everything()
    };
    assert_eq!(n(label.clone()).await, [6, 5, 3]);
    let label_and_client = AuditFilter {
        client_id: Some("pc_a".into()),
        ..label
    };
    assert_eq!(n(label_and_client).await, [6, 3]);
    let kind = AuditFilter {
        kind: Some(AuditKind::TokenIssue),
        ..everything()
    };
    assert_eq!(n(kind.clone()).await, [8, 6, 4, 2, 1]);
    let kind_and_client = AuditFilter {
        client_id: Some("pc_b".into()),
        ..kind.clone()
    };
    assert_eq!(n(kind_and_client).await, [8, 2]);
    let since = AuditFilter {
        since: Some(300),
        ..of_client("pc_a")
    };
    assert_eq!(n(since).await, [7, 6]);
    let since_all = AuditFilter {
        since: Some(200),
        ..everything()
    };
    assert_eq!(n(since_all).await, [8, 7, 6, 5, 4, 3]);
    let before = AuditFilter {
        before_id: Some(ids[4]),
        ..kind
    };
    assert_eq!(n(before).await, [4, 2, 1], "strictly before the id");
    let limited = AuditFilter {
        limit: 3,
        ..everything()
    };
    assert_eq!(n(limited).await, [8, 7, 6], "the newest ones");

    // Pages of two, each after the last id of the one before.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = n(AuditFilter {
            before_id: before,
            limit: 2,
            ..of_client("pc_a")
        })
        .await;
        let Some(&last) = page.last() else { break };
        before = Some(ids[last - 1]);
        pages.push(page);
    }
    assert_eq!(pages, [vec![7, 6], vec![4, 3], vec![1]]);
}

const DAY: i64 = 86_400;

pub async fn daily_counters_add_up_across_calls<S: Store + ?Sized>(s: &S) {
    let today = 20 * DAY;
    s.bump_daily_counters(&[]).await.unwrap();
    s.bump_daily_counters(&[
        (today, "client_auth_failed".into(), 2),
        (today - DAY, "client_auth_failed".into(), 1),
    ])
    .await
    .unwrap();
    s.bump_daily_counters(&[(today, "client_auth_failed".into(), 3)])
        .await
        .unwrap();
    let stats = s.dashboard(today + 100, 7).await.unwrap();
    assert_eq!(stats.failed_auth_per_day, [(today - DAY, 1), (today, 5)]);
}

pub async fn the_dashboard_counts_clients_sites_tokens_uploads_and_failures<S: Store + ?Sized>(
    s: &S,
) {
    let today = 20 * DAY;
    let yesterday = today - DAY;
    let now = today + 3600;
    let empty = s.dashboard(now, 7).await.unwrap();
    assert_eq!(empty.clients, 0);
    assert_eq!(s.count_live_sites(now).await.unwrap(), 0);
    assert_eq!(empty.tokens_today, 0);
    assert_eq!(empty.uploads_today, 0);
    assert!(empty.tokens_per_day.is_empty());
    assert!(empty.uploads_per_site_day.is_empty());
    assert!(empty.failed_auth_per_day.is_empty());

    create(s, "pc_a").await;
    create(s, "pc_b").await;
    let at = |client: &str, fam: &str, label: Option<&str>, created: i64, expires: i64| NewGrant {
        created_at: created,
        expires_at: expires,
        refresh_token: None,
        ..grant(client, fam, label)
    };
    let later = today + 10 * DAY;
    // Live, labelled: two sites of pc_a.
    granted(s, at("pc_a", "fam_1", Some("home-1"), today + 100, later)).await;
    granted(
        s,
        at("pc_a", "fam_2", Some("home-2"), yesterday + 50, later),
    )
    .await;
    // Expired before now, and without a label: no site.
    granted(
        s,
        at("pc_b", "fam_3", Some("home-1"), today + 200, today + 500),
    )
    .await;
    granted(s, at("pc_b", "fam_4", None, today + 300, later)).await;
    // Outside the seven days asked for.
    granted(s, at("pc_b", "fam_5", None, today - 10 * DAY, later)).await;
    // One refresh today.
    granted(
        s,
        NewGrant {
            created_at: today + 100,
            expires_at: later,
            refresh_token: Some(NewRefresh {
                id: "rt_6".into(),
                hash: digest("rt_6"),
                expires_at: later,
            }),
            ..grant("pc_a", "fam_6", None)
        },
    )
    .await;
    let r = Rotation {
        family_expires_at: later,
        new: NewRefresh {
            id: "rt_7".into(),
            hash: digest("rt_7"),
            expires_at: later,
        },
        ..rotation("pc_a", "fam_6", "rt_6", "rt_7", today + 400)
    };
    assert!(s.rotate_refresh_token(r).await.unwrap());

    // Tokens issued are what the servers counted (a grant's or a refresh's audit
    // event is not counted again).
    s.bump_daily_counters(&[
        (today, "client_auth_failed".into(), 4),
        (yesterday, "client_auth_failed".into(), 1),
        (today, "something_else".into(), 9),
        (today, "tokens_issued".into(), 5),
        (yesterday, "tokens_issued".into(), 1),
        (today - 10 * DAY, "tokens_issued".into(), 3),
    ])
    .await
    .unwrap();

    for (batch, label, received) in [
        ("b1", Some("home-1"), today + 10),
        ("b2", Some("home-1"), today + 20),
        ("b3", None, yesterday + 5),
        ("b4", Some("home-1"), today - 30 * DAY),
    ] {
        let u = NewUpload {
            received_at: received,
            ..upload("pc_a", batch, label, None)
        };
        s.store_upload(u).await.unwrap();
    }

    let stats = s.dashboard(now, 7).await.unwrap();
    assert_eq!(stats.clients, 2);
    assert_eq!(s.count_live_sites(now).await.unwrap(), 2);
    assert_eq!(stats.tokens_per_day, [(yesterday, 1), (today, 5)]);
    assert_eq!(stats.tokens_today, 5);
    assert_eq!(
        stats.uploads_per_site_day,
        [
            (String::new(), yesterday, 1),
            ("home-1".to_owned(), today, 2)
        ]
    );
    assert_eq!(stats.uploads_today, 2);
    assert_eq!(stats.failed_auth_per_day, [(yesterday, 1), (today, 4)]);

    let one_day = s.dashboard(now, 1).await.unwrap();
    assert_eq!(one_day.tokens_per_day, [(today, 5)]);
    assert_eq!(one_day.failed_auth_per_day, [(today, 4)]);
}
