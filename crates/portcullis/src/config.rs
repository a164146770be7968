//! Configuration layering (SPEC §1, STYLE "Configuration"): defaults, then the TOML
//! file, then `PORTCULLIS_*` variables, then flags. Clap already gives flags
//! precedence over variables; here the result is laid over the file and defaults.

use crate::cli::{GlobalArgs, ServerArgs};
use anyhow::{Context, bail};
use portcullis_core::Ttl;
use portcullis_crypto::Algorithm;
use portcullis_server::config::{Settings, TlsFiles, defaults};
use portcullis_store::sqlite::sqlite_path;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The TOML file. Unknown keys are an error, so a typo is never silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen`.
    pub listen: Option<String>,
    /// `database_url`.
    pub database_url: Option<String>,
    /// `database_pool_size`.
    pub database_pool_size: Option<u16>,
    /// `log_format`: `text` or `json`.
    pub log_format: Option<String>,
    /// `issuer`.
    pub issuer: Option<String>,
    /// `audience`.
    pub audience: Option<String>,
    /// `access_token_ttl` (`"1d"` or seconds).
    pub access_token_ttl: Option<Ttl>,
    /// `refresh_token_ttl`.
    pub refresh_token_ttl: Option<Ttl>,
    /// `signing_alg`.
    pub signing_alg: Option<String>,
    /// `master_key_file`.
    pub master_key_file: Option<PathBuf>,
    /// `trusted_proxy`: a list of IPs or CIDR blocks.
    pub trusted_proxy: Option<Vec<String>>,
    /// `audit_retention`.
    pub audit_retention: Option<Ttl>,
    /// `key_rotation_interval`.
    pub key_rotation_interval: Option<Ttl>,
    /// `tls_cert`: a PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: its PEM private key.
    pub tls_key: Option<PathBuf>,
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySpec {
    /// `PORTCULLIS_MASTER_KEY` (base64).
    Inline(String),
    /// A file, created on first use.
    File(PathBuf),
}

/// Reads the TOML file, if one was named.
pub fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().to_owned();
        anyhow::anyhow!("config file {}: {msg}", path.display())
    })
}

fn ttl(flag: Option<&str>, file: Option<Ttl>, default: &str, what: &str) -> anyhow::Result<Ttl> {
    if let Some(f) = flag {
        return f.parse().with_context(|| format!("--{what}"));
    }
    if let Some(t) = file {
        if t.secs() == 0 {
            bail!("{what} must be more than 0s");
        }
        return Ok(t);
    }
    default.parse().with_context(|| format!("default {what}"))
}

/// Resolves every setting.
pub fn resolve(
    global: &GlobalArgs,
    server: &ServerArgs,
) -> anyhow::Result<(Settings, MasterKeySpec)> {
    let file = read_file(global.config.as_deref())?;
    let listen_text = server
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| defaults::LISTEN.into());
    let listen: SocketAddr = listen_text
        .parse()
        .with_context(|| format!("--listen {listen_text:?} is not an IP address and port"))?;
    let database_url = global
        .database_url
        .clone()
        .or(file.database_url)
        .unwrap_or_else(|| defaults::DATABASE_URL.into());
    let alg_text = server
        .signing_alg
        .clone()
        .or(file.signing_alg)
        .unwrap_or_else(|| defaults::SIGNING_ALG.into());
    let signing_alg: Algorithm = alg_text.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let issuer = server.issuer.clone().or(file.issuer);
    if let Some(i) = &issuer {
        check_issuer(i)?;
    }
    let settings = Settings {
        listen,
        issuer,
        audience: server.audience.clone().or(file.audience),
        access_token_ttl: ttl(
            server.access_token_ttl.as_deref(),
            file.access_token_ttl,
            defaults::ACCESS_TOKEN_TTL,
            "access-token-ttl",
        )?,
        refresh_token_ttl: ttl(
            server.refresh_token_ttl.as_deref(),
            file.refresh_token_ttl,
            defaults::REFRESH_TOKEN_TTL,
            "refresh-token-ttl",
        )?,
        signing_alg,
        master_key_file: None,
        database_url,
        database_pool_size: pool_size(global.database_pool_size, file.database_pool_size)?,
        trusted_proxies: trusted_proxies(&server.trusted_proxy, file.trusted_proxy)?,
        audit_retention: ttl(
            server.audit_retention.as_deref(),
            file.audit_retention,
            defaults::AUDIT_RETENTION,
            "audit-retention",
        )?,
        key_rotation_interval: ttl(
            server.key_rotation_interval.as_deref(),
            file.key_rotation_interval,
            defaults::KEY_ROTATION_INTERVAL,
            "key-rotation-interval",
        )?,
        tls: tls_files(
            server.tls_cert.clone().or(file.tls_cert),
            server.tls_key.clone().or(file.tls_key),
        )?,
    };
    let master = match std::env::var("PORTCULLIS_MASTER_KEY") {
        Ok(v) if !v.trim().is_empty() => MasterKeySpec::Inline(v),
        _ => MasterKeySpec::File(
            global
                .master_key_file
                .clone()
                .or(file.master_key_file)
                .unwrap_or_else(|| data_dir(&settings.database_url).join("master.key")),
        ),
    };
    let settings = Settings {
        master_key_file: match &master {
            MasterKeySpec::File(p) => Some(p.clone()),
            MasterKeySpec::Inline(_) => None,
        },
        ..settings
    };
    Ok((settings, master))
}

/// `--database-pool-size` (the flag is range-checked by clap; the file here).
fn pool_size(flag: Option<u16>, file: Option<u16>) -> anyhow::Result<usize> {
    let n = flag
        .or(file)
        .map_or(defaults::DATABASE_POOL_SIZE, usize::from);
    if !(2..=1000).contains(&n) {
        bail!("database_pool_size {n} is not in 2..=1000");
    }
    Ok(n)
}

/// `--trusted-proxy` flags (or the variable) replace the file's list.
fn trusted_proxies(
    flags: &[String],
    file: Option<Vec<String>>,
) -> anyhow::Result<Vec<portcullis_core::Cidr>> {
    let list = if flags.is_empty() {
        file.unwrap_or_default()
    } else {
        flags.to_vec()
    };
    list.iter()
        .map(|c| {
            c.trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("--trusted-proxy: {e}"))
        })
        .collect()
}

/// `--tls-cert` and `--tls-key`: both (HTTPS) or neither (plain HTTP).
fn tls_files(cert: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<Option<TlsFiles>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => {
            bail!("--tls-cert needs --tls-key (give both, or neither for plain HTTP)")
        }
        (None, Some(_)) => {
            bail!("--tls-key needs --tls-cert (give both, or neither for plain HTTP)")
        }
    }
}

/// RFC 8414 §2: the issuer is an http(s) URL with no query or fragment.
fn check_issuer(i: &str) -> anyhow::Result<()> {
    let ok = (i.starts_with("https://") || i.starts_with("http://"))
        && !i.contains(['?', '#'])
        && !i.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        bail!("--issuer {i:?} must be an http(s) URL without query or fragment");
    }
    Ok(())
}

/// The directory holding the SQLite file (and, by default, the master key).
pub fn data_dir(database_url: &str) -> PathBuf {
    sqlite_path(database_url)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("p.toml");
        std::fs::write(
            &cfg,
            "listen = \"127.0.0.1:9999\"\naccess_token_ttl = \"15m\"\n",
        )
        .unwrap();
        let global = GlobalArgs {
            config: Some(cfg),
            ..GlobalArgs::default()
        };
        let server = ServerArgs {
            access_token_ttl: Some("1h".into()),
            ..ServerArgs::default()
        };
        let (s, _) = resolve(&global, &server).unwrap();
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.access_token_ttl.secs(), 3600);
        assert_eq!(s.refresh_token_ttl.secs(), 365 * 86400);
        assert_eq!(s.audit_retention.secs(), 400 * 86400);
        assert_eq!(s.key_rotation_interval.secs(), 90 * 86400);
        let short = ServerArgs {
            audit_retention: Some("30d".into()),
            ..ServerArgs::default()
        };
        let (s, _) = resolve(&global, &short).unwrap();
        assert_eq!(s.audit_retention.secs(), 30 * 86400);
    }

    #[test]
    fn trusted_proxies_come_from_flags_or_the_file_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("p.toml");
        std::fs::write(&cfg, "trusted_proxy = [\"10.0.0.0/8\", \"::1\"]\n").unwrap();
        let global = GlobalArgs {
            config: Some(cfg),
            ..GlobalArgs::default()
        };
        let (s, _) = resolve(&global, &ServerArgs::default()).unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "::1/128"]);
        let flags = ServerArgs {
            trusted_proxy: vec!["192.0.2.0/24".into()],
            ..ServerArgs::default()
        };
        let (s, _) = resolve(&global, &flags).unwrap();
        assert_eq!(s.trusted_proxies.len(), 1);
        let bad = ServerArgs {
            trusted_proxy: vec!["10.0.0.0/40".into()],
            ..ServerArgs::default()
        };
        let err = resolve(&global, &bad).unwrap_err().to_string();
        assert!(err.contains("--trusted-proxy"), "{err}");
    }

    #[test]
    fn tls_files_come_in_pairs_from_flags_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("p.toml");
        std::fs::write(&cfg, "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
        let global = GlobalArgs {
            config: Some(cfg),
            ..GlobalArgs::default()
        };
        let (s, _) = resolve(&global, &ServerArgs::default()).unwrap();
        let files = s.tls.unwrap();
        assert_eq!(
            (files.cert, files.key),
            (PathBuf::from("c.pem"), PathBuf::from("k.pem"))
        );
        let flag = ServerArgs {
            tls_cert: Some("other.pem".into()),
            ..ServerArgs::default()
        };
        let (s, _) = resolve(&global, &flag).unwrap();
        assert_eq!(s.tls.unwrap().cert, PathBuf::from("other.pem"));
        let (s, _) = resolve(&GlobalArgs::default(), &ServerArgs::default()).unwrap();
        assert!(s.tls.is_none());
        let err = resolve(&GlobalArgs::default(), &flag)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("p.toml");
        std::fs::write(&cfg, "lisen = \"127.0.0.1:9999\"\n").unwrap();
        let err = read_file(Some(&cfg)).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn the_master_key_defaults_beside_the_database() {
        assert_eq!(data_dir("sqlite://x/y/p.db"), PathBuf::from("x/y"));
        assert_eq!(data_dir("sqlite://p.db"), PathBuf::from("portcullis-data"));
        assert_eq!(data_dir("sqlite:///abs/p.db"), PathBuf::from("/abs"));
    }
}
