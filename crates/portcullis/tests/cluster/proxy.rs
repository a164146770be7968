//! A TCP proxy in front of PostgreSQL that the test can cut: every connection
//! through it is closed and new ones are refused (the port is closed), which is
//! what a node sees of a database that stopped; restoring it listens again on
//! the same port, as a restarted database would.

use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The proxy.
pub struct Cutoff {
    listen: SocketAddr,
    target: SocketAddr,
    database_url: String,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn target_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let host_port = rest.split('/').next().unwrap();
    let host_port = host_port.rsplit('@').next().unwrap();
    host_port.parse().unwrap()
}

/// Accepts connections and forwards each to `target` until aborted; aborting
/// drops the listener and every forwarding task with it.
async fn serve(listener: TcpListener, target: SocketAddr) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        conns.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

impl Cutoff {
    /// A proxy to the database of `database_url`, listening on a free port.
    pub async fn start(database_url: &str) -> Self {
        let target = target_of(database_url);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = listener.local_addr().unwrap();
        let via = database_url.replacen(&target.to_string(), &listen.to_string(), 1);
        Self {
            listen,
            target,
            database_url: via,
            task: Mutex::new(Some(tokio::spawn(serve(listener, target)))),
        }
    }

    /// The database's URL through the proxy.
    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    /// Closes every connection and the port.
    pub async fn cut(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.listen).await.unwrap();
        *self.task.lock().unwrap() = Some(tokio::spawn(serve(listener, self.target)));
    }
}
