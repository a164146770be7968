//! The change feed: one connection per node, outside the pool, `LISTEN`s on the
//! `portcullis` channel. Transactions that change what nodes cache send a
//! notification when they commit (`revocations`, `client:<id>`, `keys`,
//! `scopes`); this task turns each into a [`StoreEvent`]. When the connection
//! drops it reconnects (every second until it can) and sends
//! [`StoreEvent::Resync`], since notifications sent meanwhile are lost.

use crate::StoreEvent;
use futures_util::StreamExt;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, Config, NoTls};

/// How long to wait before reconnecting.
const RETRY: Duration = Duration::from_secs(1);

/// The event a notification payload names.
fn event(payload: &str) -> Option<StoreEvent> {
    match payload {
        "revocations" => Some(StoreEvent::Revocations),
        "keys" => Some(StoreEvent::Keys),
        "scopes" => Some(StoreEvent::Scopes),
        p => p
            .strip_prefix("client:")
            .map(|id| StoreEvent::Client(id.to_owned())),
    }
}

/// Starts the listener; it ends soon after the store (which holds `alive`) is
/// dropped. The returned receiver fires once it listens.
pub(super) fn spawn(
    config: Config,
    events: broadcast::Sender<StoreEvent>,
    alive: Weak<()>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (listening, ready) = tokio::sync::oneshot::channel();
    let mut listening = Some(listening);
    tokio::spawn(async move {
        let mut first = true;
        while alive.strong_count() > 0 {
            let e = listen(&config, &events, first, &alive, &mut listening).await;
            if alive.strong_count() == 0 {
                return;
            }
            tracing::warn!(error = %e, "the change feed from PostgreSQL stopped; reconnecting");
            first = false;
            tokio::time::sleep(RETRY).await;
        }
    });
    ready
}

/// Listens until the connection fails or the store is gone; returns why it stopped.
async fn listen(
    config: &Config,
    events: &broadcast::Sender<StoreEvent>,
    first: bool,
    alive: &Weak<()>,
    listening: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> String {
    let (client, mut connection) = match config.connect(NoTls).await {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the LISTEN below to complete.
    let driver = tokio::spawn(async move {
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(Ok(n.payload().to_owned())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
        let _ = tx.send(Err("the connection closed".into()));
    });
    let why = async {
        if let Err(e) = client.batch_execute("LISTEN portcullis").await {
            return e.to_string();
        }
        if let Some(l) = listening.take() {
            let _ = l.send(());
        }
        if !first {
            // Whatever was announced while we were away is lost: reload.
            let _ = events.send(StoreEvent::Resync);
            tracing::info!("the change feed from PostgreSQL is back");
        }
        let mut check = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    // No receiver yet (or any more) is fine: nothing to tell.
                    Some(Ok(payload)) => {
                        if let Some(e) = event(&payload) {
                            let _ = events.send(e);
                        }
                    }
                    Some(Err(e)) => return e,
                    None => return "the connection closed".to_owned(),
                },
                _ = check.tick() => {
                    if alive.strong_count() == 0 {
                        return "the store was closed".to_owned();
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    why
}
