//! Resolved server settings (SPEC §1). The binary layers defaults, the TOML file,
//! `PORTCULLIS_*` variables and flags into these; the server only reads them.

use portcullis_core::Ttl;
use portcullis_crypto::Algorithm;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `serve` needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to bind (port 0: any free port).
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Most connections to PostgreSQL (per process).
    pub database_pool_size: usize,
    /// `iss`; `None`: `http://<bound address>` (`https://` with [`Settings::tls`]).
    pub issuer: Option<String>,
    /// `aud`; `None`: the issuer.
    pub audience: Option<String>,
    /// Default access token lifetime.
    pub access_token_ttl: Ttl,
    /// Default refresh token lifetime.
    pub refresh_token_ttl: Ttl,
    /// Algorithm for newly created signing keys.
    pub signing_alg: Algorithm,
    /// Master key file (`None` when the key came from `PORTCULLIS_MASTER_KEY`).
    pub master_key_file: Option<PathBuf>,
    /// `--trusted-proxy`: reverse proxies whose `Forwarded` / `X-Forwarded-For`
    /// is believed for the client address.
    pub trusted_proxies: Vec<portcullis_core::Cidr>,
    /// Audit events older than this are pruned.
    pub audit_retention: Ttl,
    /// The current signing key is replaced once it is this old.
    pub key_rotation_interval: Ttl,
    /// `--tls-cert` and `--tls-key`: serve HTTPS natively; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of native TLS, re-read on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The defaults of SPEC §1.
pub mod defaults {
    /// `--listen`.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `--database-url`.
    pub const DATABASE_URL: &str = "sqlite://portcullis-data/portcullis.db";
    /// `--database-pool-size`.
    pub const DATABASE_POOL_SIZE: usize = 16;
    /// `--access-token-ttl`.
    pub const ACCESS_TOKEN_TTL: &str = "1d";
    /// `--refresh-token-ttl`.
    pub const REFRESH_TOKEN_TTL: &str = "365d";
    /// `--signing-alg`.
    pub const SIGNING_ALG: &str = "RS256";
    /// `--audit-retention`.
    pub const AUDIT_RETENTION: &str = "400d";
    /// `--key-rotation-interval`.
    pub const KEY_ROTATION_INTERVAL: &str = "90d";
    /// Where data lives when the database is not a SQLite file.
    pub const DATA_DIR: &str = "portcullis-data";
}
