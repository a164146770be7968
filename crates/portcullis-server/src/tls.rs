//! Native TLS (SPEC §1 `--tls-cert`, `--tls-key`), so one binary can face clients without
//! a proxy: rustls on the aws-lc-rs provider, TLS 1.2 and 1.3, HTTP/1.1 (ALPN `http/1.1`).
//!
//! The certificate and key are re-read on SIGHUP (after `certbot renew`, say): connections
//! made afterwards get the new certificate, open ones keep theirs, and files that do not
//! load leave the old certificate in place. The swap happens inside the certificate
//! resolver, so the server configuration (and its session tickets) stays the same.
//!
//! Handshakes run in tasks of their own, each bounded in time, so a slow or silent client
//! never holds up the accept loop. Finished ones reach `axum::serve` through
//! [`TlsListener`], which keeps axum's graceful shutdown and `ConnectInfo<SocketAddr>`.

use crate::config::TlsFiles;
use anyhow::{Context, bail};
use axum::serve::{Listener, ListenerExt, TapIo};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{Error as RustlsError, InconsistentKeys, ServerConfig};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the accept loop (which takes them at once).
const READY_QUEUE: usize = 64;
/// After an accept error that is not the client's (too many open files): the pause
/// before trying again, as `axum::serve` does, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The certificate chain and key of `--tls-cert` and `--tls-key`, and the server
/// configuration that presents them. Clones share the certificate: a reload through
/// one is seen by all.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCert>,
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Reads the PEM files; an error names the file at fault.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(read(files, &provider)?))));
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("setting up TLS")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        // The server speaks HTTP/1.1 only (axum is built without HTTP/2).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            files: files.clone(),
            provider,
            current,
            config: Arc::new(config),
        })
    }

    /// Re-reads the PEM files and, when they load, serves the new certificate to new
    /// connections; when they do not, the old one stays and the error says why.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(read(&self.files, &self.provider)?);
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The files this certificate comes from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// The certificate handshakes present; replaced whole on reload.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The certificate chain and its key, checked to belong together.
fn read(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let cert_path = files.cert.display();
    let key_path = files.key.display();
    let pem = std::fs::read(&files.cert)
        .with_context(|| format!("cannot read the TLS certificate {cert_path}"))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("the TLS certificate {cert_path} is not valid PEM"))?;
    if chain.is_empty() {
        bail!("the TLS certificate {cert_path} holds no CERTIFICATE block");
    }
    let pem =
        std::fs::read(&files.key).with_context(|| format!("cannot read the TLS key {key_path}"))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            anyhow::anyhow!("the TLS key {key_path} holds no PRIVATE KEY block")
        }
        e => anyhow::Error::new(e).context(format!("the TLS key {key_path} is not valid PEM")),
    })?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("the TLS key {key_path} is not a usable private key"))?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        // A key type whose public half rustls cannot derive: the handshake will tell.
        Ok(()) | Err(RustlsError::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            bail!("the TLS key {key_path} is not the key of the certificate {cert_path}")
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "the TLS certificate {cert_path} is not a usable certificate"
        ))),
    }
}

/// Takes over SIGHUP, whose default action would end the process: with TLS, each one
/// reloads the certificate ([`Tls::reload`]); without, it is noted and ignored. Call it
/// before saying the server is ready, so a reload request never finds it unprepared.
pub fn reload_on_hangup(tls: Option<Tls>) -> anyhow::Result<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: nothing to reload (TLS is off)");
                continue;
            };
            // Two small files: reading them in place is quicker than a blocking task.
            match tls.reload() {
                Ok(()) => tracing::info!(
                    cert = %tls.files.cert.display(),
                    "TLS certificate reloaded"
                ),
                Err(e) => tracing::warn!(
                    error = %format!("{e:#}"),
                    "TLS certificate not reloaded; still serving the previous one"
                ),
            }
        }
    }))
}

/// A connection, handshake done.
type Conn = TlsStream<TcpStream>;

/// What [`listener`] makes of a `TcpListener`.
pub type HttpsListener = TapIo<TlsListener, fn(&mut Conn)>;

/// `listener` speaking TLS, as `axum::serve` takes it. The `TapIo` wrapper sets
/// `TCP_NODELAY` (a response's records go out at once, not after the client's delayed
/// ACK), and through it axum gives handlers `ConnectInfo<SocketAddr>`: axum implements
/// that for any listener wrapped in `TapIo`.
pub fn listener(listener: TcpListener, tls: &Tls) -> io::Result<HttpsListener> {
    let no_delay: fn(&mut Conn) = |stream| {
        if let Err(e) = stream.get_ref().0.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    };
    Ok(TlsListener::new(listener, tls)?.tap_io(no_delay))
}

/// Accepts TCP connections and hands over those whose TLS handshake finished.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener`.
    pub fn new(listener: TcpListener, tls: &Tls) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = TlsAcceptor::from(Arc::clone(&tls.config));
        Ok(Self {
            local,
            ready,
            acceptor: tokio::spawn(accept_loop(listener, acceptor, tx)),
        })
    }
}

impl Drop for TlsListener {
    /// `axum::serve` drops its listener at shutdown: stop accepting (the socket closes),
    /// and handshakes still under way find nobody to hand over to.
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl Listener for TlsListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(Conn, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                if !is_connection_error(&e) {
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    if ready.send((stream, peer)).await.is_err() {
                        tracing::debug!(%peer, "shutting down; connection closed unserved");
                    }
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Errors that concern one connection only (the client gave up before it was accepted).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
