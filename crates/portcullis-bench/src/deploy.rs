//! A deployment under test: the server on its database, as one process on a
//! temporary SQLite file or as one or more nodes sharing a fresh PostgreSQL
//! database (and one master key). The first node is started (twice, as
//! [`ServerProcess::start_on`] does), the bench client is created through it,
//! and then the other nodes are started on the now-prepared database.
//! [`Deployment::shutdown`] stops every node and then drops the database; if the
//! run fails instead, dropping the [`Deployment`] kills the nodes and then drops
//! the database.

use crate::load::{Plan, Target};
use crate::postgres::{self, BenchDatabase, Sampler};
use crate::report::ServerFacts;
use crate::server::{CLUSTER_ISSUER, Credentials, DEFAULT_LOG, ServerProcess};
use crate::{Alg, CommonArgs};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// Where the server keeps its data.
#[derive(Debug, Clone)]
pub enum Engine {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh database on the PostgreSQL server `admin_url` names.
    Postgres {
        /// The URL the user gave (its database is only connected to).
        admin_url: String,
    },
}

impl Engine {
    /// The engine `--database-url` asks for.
    pub fn from_args(args: &CommonArgs) -> Self {
        match &args.database_url {
            Some(url) => Self::Postgres {
                admin_url: url.clone(),
            },
            None => Self::Sqlite,
        }
    }

    /// `SQLite`, `PostgreSQL 1 node`, `PostgreSQL 2 nodes`.
    pub fn label(&self, nodes: usize) -> String {
        match self {
            Self::Sqlite => "SQLite".to_owned(),
            Self::Postgres { .. } if nodes == 1 => "PostgreSQL 1 node".to_owned(),
            Self::Postgres { .. } => format!("PostgreSQL {nodes} nodes"),
        }
    }
}

/// A running deployment.
pub struct Deployment {
    /// The server processes, the first one first.
    nodes: Vec<ServerProcess>,
    /// Their URLs, in the same order.
    pub targets: Vec<Arc<Target>>,
    /// The bench client, created through the first node.
    pub creds: Credentials,
    /// What the bench learnt about the first node.
    pub facts: ServerFacts,
    /// Spawn to ready of each further node (on the existing database).
    pub peers_ready: Vec<Duration>,
    /// The PostgreSQL statistics of the database, on PostgreSQL.
    sampler: Option<Arc<Sampler>>,
    /// A line on the database.
    description: String,
    // Declared last: dropped after the nodes have been killed.
    database: Option<BenchDatabase>,
}

impl Deployment {
    /// Starts `nodes` servers signing with `alg` on a fresh database of `engine`,
    /// PostgreSQL nodes with `--database-pool-size pool_size` when given, the
    /// database first prefilled with `prefill` token families.
    pub async fn start(
        alg: Alg,
        engine: &Engine,
        nodes: usize,
        pool_size: Option<u16>,
        prefill: u64,
    ) -> anyhow::Result<Self> {
        let (database, sampler, description) = match engine {
            Engine::Sqlite => (None, None, "database: a temporary SQLite file".to_owned()),
            Engine::Postgres { admin_url } => {
                let database = BenchDatabase::create(admin_url).await?;
                let sampler = Sampler::connect(admin_url, database.name()).await?;
                let settings = sampler.describe().await?;
                let description = format!(
                    "database: {settings}; fresh database {}{}{}",
                    postgres::redact(database.url()),
                    if nodes == 1 {
                        ", one node".to_owned()
                    } else {
                        format!(
                            ", {nodes} nodes sharing it, one master key and the issuer {CLUSTER_ISSUER}, \
                             the workers round-robin over them"
                        )
                    },
                    pool_size
                        .map(|n| format!(", pool size {n}"))
                        .unwrap_or_default(),
                );
                (Some(database), Some(Arc::new(sampler)), description)
            }
        };
        let first = ServerProcess::start_on(
            alg,
            DEFAULT_LOG,
            database.as_ref().map(BenchDatabase::url),
            pool_size,
            prefill,
        )
        .await
        .with_context(|| format!("starting a {} server", alg.as_str()))?;
        let facts = ServerFacts {
            first_ready_ms: first.first_ready.as_secs_f64() * 1000.0,
            ready_ms: first.ready.as_secs_f64() * 1000.0,
            idle_rss_kib: first.rss_kib().ok(),
            peak_rss_kib: None,
        };
        let creds = first.create_client("bench").await?;
        let mut servers = vec![first];
        let mut peers_ready = Vec::new();
        for n in 2..=nodes {
            let first = servers.first().context("no first node")?;
            let peer = first
                .start_peer()
                .await
                .with_context(|| format!("starting node {n}"))?;
            peers_ready.push(peer.ready);
            servers.push(peer);
        }
        let mut targets = Vec::with_capacity(servers.len());
        for server in &servers {
            targets.push(Arc::new(Target::from_url(&server.url).await?));
        }
        Ok(Self {
            nodes: servers,
            targets,
            creds,
            facts,
            peers_ready,
            sampler,
            description,
            database,
        })
    }

    /// The line describing the database (engine, settings, nodes).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// How to drive one level against this deployment.
    pub fn plan(&self, concurrency: usize, warmup: Duration, duration: Duration) -> Plan {
        Plan {
            concurrency,
            warmup,
            duration,
            server_pids: self.nodes.iter().map(ServerProcess::pid).collect(),
            database: self.sampler.clone(),
        }
    }

    /// The first admin the first node created, if it said so on its first start.
    pub fn first_admin(&self) -> Option<crate::server::AdminCredentials> {
        self.nodes.first().and_then(|n| n.first_admin.clone())
    }

    /// Notes the first node's peak memory in [`Self::facts`].
    pub fn note_peak_rss(&mut self) {
        self.facts.peak_rss_kib = self.nodes.first().and_then(|n| n.peak_rss_kib().ok());
    }

    /// Stops every node, then drops the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let Self {
            nodes, database, ..
        } = self;
        let mut result = Ok(());
        for node in nodes {
            let stopped = node.shutdown().await;
            if result.is_ok() {
                result = stopped;
            }
        }
        if let Some(database) = database {
            let dropped = database.drop_now().await;
            if result.is_ok() {
                result = dropped;
            }
        }
        result
    }
}
