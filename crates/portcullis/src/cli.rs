//! The command-line grammar (SPEC §2). Every server flag has a `PORTCULLIS_*`
//! variable and may come from the TOML file given with `--config`; flags win over
//! variables, which win over the file, which wins over the defaults.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Portcullis: an OAuth 2.0 authorization server with a co-located resource server.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the data lives; every command needs these.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML file with any of the settings below (unknown keys are an error).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB
    /// [default: sqlite://portcullis-data/portcullis.db].
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_URL",
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// How logs are written to stderr: `text` (for people) or `json` (one object a
    /// line, with the request's id, for log collectors) [default: text].
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_LOG_FORMAT",
        value_name = "FORMAT",
        value_parser = ["text", "json"]
    )]
    pub log_format: Option<String>,
    /// Most connections this process opens to PostgreSQL [default: 16].
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_POOL_SIZE",
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(2..=1000)
    )]
    pub database_pool_size: Option<u16>,
    /// 32-byte key encrypting private keys at rest [default: <data dir>/master.key].
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_MASTER_KEY_FILE",
        value_name = "FILE"
    )]
    pub master_key_file: Option<PathBuf>,
}

/// Server settings, for the commands that sign or serve.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Address to serve on (port 0: any free port) [default: 127.0.0.1:8080].
    #[arg(long, env = "PORTCULLIS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The `iss` of tokens [default: http://<listen address>].
    #[arg(long, env = "PORTCULLIS_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// The `aud` of access tokens [default: the issuer].
    #[arg(long, env = "PORTCULLIS_AUDIENCE", value_name = "AUD")]
    pub audience: Option<String>,
    /// Access token lifetime [default: 1d].
    #[arg(long, env = "PORTCULLIS_ACCESS_TOKEN_TTL", value_name = "DURATION")]
    pub access_token_ttl: Option<String>,
    /// Refresh token lifetime [default: 365d].
    #[arg(long, env = "PORTCULLIS_REFRESH_TOKEN_TTL", value_name = "DURATION")]
    pub refresh_token_ttl: Option<String>,
    /// RS256, ES256 or EdDSA, for newly created signing keys [default: RS256].
    #[arg(long, env = "PORTCULLIS_SIGNING_ALG", value_name = "ALG")]
    pub signing_alg: Option<String>,
    /// The current signing key is replaced by a new one of the same algorithm once
    /// it is this old; the old one stays published until its tokens expire [default: 90d].
    #[arg(
        long,
        env = "PORTCULLIS_KEY_ROTATION_INTERVAL",
        value_name = "DURATION"
    )]
    pub key_rotation_interval: Option<String>,
    /// Audit events older than this are removed by the pruning pass [default: 400d].
    #[arg(long, env = "PORTCULLIS_AUDIT_RETENTION", value_name = "DURATION")]
    pub audit_retention: Option<String>,
    /// A reverse proxy (IP or CIDR, repeatable; comma separated in the variable):
    /// only from these peers is the client address taken from `Forwarded` /
    /// `X-Forwarded-For` [default: none, the peer address is the client's].
    #[arg(
        long = "trusted-proxy",
        env = "PORTCULLIS_TRUSTED_PROXY",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<String>,
    /// Serve HTTPS natively with this PEM certificate chain (leaf first); needs
    /// --tls-key; both are re-read on SIGHUP [default: plain HTTP].
    #[arg(long, env = "PORTCULLIS_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "PORTCULLIS_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (creates the database, a signing key and a first admin on first start).
    Serve(ServerArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage scopes.
    #[command(subcommand)]
    Scope(ScopeCommand),
    /// Mint and list tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Admin users.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// End users (who grant applications access to their data).
    #[command(subcommand)]
    User(UserCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write an online, consistent copy of the SQLite database to FILE (the server
    /// may keep running); restore by putting it in place of the database, with the
    /// same master key.
    Backup {
        /// Where to write the copy (must not exist).
        file: std::path::PathBuf,
    },
}

/// `audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List events, newest first.
    List {
        /// Only this client.
        #[arg(long)]
        client: Option<String>,
        /// Only this label.
        #[arg(long)]
        label: Option<String>,
        /// Only this kind (token.issue, token.refresh, token.revoke, token.reuse_detected,
        /// client.create, client.update, client.disable, client.enable, client.delete,
        /// client.rotate_secret, client.auth_failed_burst, scope.create, key.rotate,
        /// admin.login, admin.login_failed_burst, admin.login_flood).
        #[arg(long)]
        kind: Option<String>,
        /// Only events this recent (e.g. 1h, 7d).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Events older than this id (pagination).
        #[arg(long)]
        before: Option<i64>,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `--json`.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print JSON (the admin API's shapes) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `client …`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a client; its secret is printed once.
    Create {
        /// Human name.
        #[arg(long)]
        name: String,
        /// Allowed scope (repeat); default: every scope except admin and introspect.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Allowed grant (repeat); default: client_credentials and refresh_token.
        #[arg(long = "grant", value_name = "GRANT")]
        grants: Vec<String>,
        /// Redirect URI for the authorization code flow (repeat).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Access token lifetime for this client.
        #[arg(
            long = "access-token-ttl",
            value_name = "DURATION",
            id = "client_access_ttl"
        )]
        access_token_ttl: Option<String>,
        /// Refresh token lifetime for this client.
        #[arg(
            long = "refresh-token-ttl",
            value_name = "DURATION",
            id = "client_refresh_ttl"
        )]
        refresh_token_ttl: Option<String>,
        /// Issue access tokens only.
        #[arg(long)]
        no_refresh_token: bool,
        /// Accept a just-spent refresh token again for this long (a retry after a lost response).
        #[arg(long, value_name = "DURATION")]
        refresh_reuse_grace: Option<String>,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List clients.
    List {
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one client.
    Show {
        /// Client id.
        id: String,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Disable a client (its tokens stop working).
    Disable {
        /// Client id.
        id: String,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Enable a disabled client.
    Enable {
        /// Client id.
        id: String,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete a client and all it owns.
    Delete {
        /// Client id.
        id: String,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Give a client a new secret (printed once).
    RotateSecret {
        /// Client id.
        id: String,
        /// Keep the old secret valid this long (default: it stops at once).
        #[arg(long, value_name = "DURATION")]
        keep_old_for: Option<String>,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `scope …`.
#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Register a scope.
    Create {
        /// Name: [a-z0-9][a-z0-9:._-]{0,63}.
        name: String,
        /// What it allows.
        #[arg(long, default_value = "")]
        description: String,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List scopes.
    List {
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `token …`.
// Parsed once per run: the server settings one variant carries cost nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token set for a client without its secret (as an admin).
    Issue {
        /// Client id.
        #[arg(long)]
        client: String,
        /// Scope (repeat); default: all of the client's.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Data access point, e.g. care-home-042.
        #[arg(long)]
        label: Option<String>,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
        /// Issuer, audience and lifetimes (default: those the server last ran with).
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke one token family, or a client's (or one label's) families.
    Revoke {
        /// A family id (from `token list`).
        #[arg(long)]
        id: Option<String>,
        /// Every family of this client.
        #[arg(long)]
        client: Option<String>,
        /// Only this label (with --client).
        #[arg(long)]
        label: Option<String>,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List a client's token families.
    List {
        /// Client id.
        #[arg(long)]
        client: String,
        /// Only this label.
        #[arg(long)]
        label: Option<String>,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `keys …`.
// Parsed once per run: the server settings one variant carries cost nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys.
    List {
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Make a new key current; the old one verifies until its tokens expire.
    Rotate {
        /// Algorithm and lifetimes.
        #[command(flatten)]
        server: ServerArgs,
        /// JSON output.
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an end user (the password, at least 8 characters, from standard input).
    Create {
        /// User name (1-64 printable characters, no spaces).
        name: String,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List end users.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Disable an end user: they cannot sign in, and every token issued on their
    /// behalf is revoked.
    Disable {
        /// User name (or id).
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Enable an end user again (revoked tokens stay revoked).
    Enable {
        /// User name (or id).
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Set an end user's password (from standard input); their sessions end.
    ResetPassword {
        /// User name (or id).
        name: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin user.
    CreateUser {
        /// User name.
        name: String,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set an admin user's password.
    ResetPassword {
        /// User name.
        name: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}
