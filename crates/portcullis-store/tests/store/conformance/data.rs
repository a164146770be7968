//! Uploads: stored, replayed by idempotency key, and counted per label.

use super::fixtures::*;
use portcullis_store::prelude::*;
use portcullis_store::{NewUpload, SiteCounters, UploadOutcome};

pub async fn an_upload_is_stored_replayed_with_its_key_and_refused_with_another_body<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    let first = NewUpload {
        records: vec!["{}".into(), "{}".into(), "{}".into()],
        ..upload(PC, "b1", Some("home"), Some("key-1"))
    };
    assert_eq!(
        s.store_upload(first.clone()).await.unwrap(),
        UploadOutcome::Stored {
            batch_id: "b1".into(),
            accepted: 3
        }
    );
    let retry = NewUpload {
        batch_id: "b2".into(),
        received_at: 200,
        ..first.clone()
    };
    assert_eq!(
        s.store_upload(retry).await.unwrap(),
        UploadOutcome::Replayed {
            batch_id: "b1".into(),
            accepted: 3
        }
    );
    let reused = NewUpload {
        batch_id: "b3".into(),
        body_hash: [0xEE; 32],
        records: vec!["{}".into()],
        ..first.clone()
    };
    assert_eq!(
        s.store_upload(reused).await.unwrap(),
        UploadOutcome::KeyReused
    );
    // Keys are the client's own: another client may use the same one.
    let theirs = NewUpload {
        batch_id: "b4".into(),
        client_id: OTHER.into(),
        ..first
    };
    assert_eq!(
        s.store_upload(theirs).await.unwrap(),
        UploadOutcome::Stored {
            batch_id: "b4".into(),
            accepted: 3
        }
    );

    assert_eq!(
        s.site_counters(&cid(PC)).await.unwrap(),
        [SiteCounters {
            label: Some("home".into()),
            records: 3,
            batches: 1,
            last_upload_at: Some(100),
        }],
        "a replay or a refused reuse counts nothing"
    );
    let labels = s.list_labels(&cid(PC), 300).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].uploads, 1);
}

pub async fn uploads_without_a_key_are_each_stored_and_counted_per_label<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    assert!(s.site_counters(&cid(PC)).await.unwrap().is_empty());
    for (batch, label, at) in [
        ("b1", Some("home"), 100),
        ("b2", Some("home"), 300),
        ("b3", Some("home"), 200),
        ("b4", None, 150),
    ] {
        let u = NewUpload {
            received_at: at,
            ..upload(PC, batch, label, None)
        };
        assert_eq!(
            s.store_upload(u).await.unwrap(),
            UploadOutcome::Stored {
                batch_id: batch.into(),
                accepted: 2
            }
        );
    }
    assert_eq!(
        s.site_counters(&cid(PC)).await.unwrap(),
        [
            SiteCounters {
                label: None,
                records: 2,
                batches: 1,
                last_upload_at: Some(150),
            },
            SiteCounters {
                label: Some("home".into()),
                records: 6,
                batches: 3,
                last_upload_at: Some(300),
            },
        ]
    );
    let labels = s.list_labels(&cid(PC), 400).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].name, "home");
    assert_eq!(labels[0].uploads, 3);
    assert_eq!(labels[0].last_used_at, Some(300));
    assert!(s.site_counters(&cid(OTHER)).await.unwrap().is_empty());
}
