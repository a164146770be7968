//! Every SQLite connection is opened here, with its settings in one place.

use crate::StoreResult;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// How long a write waits for a lock another process holds (the CLI while the
/// server runs, or the other way round) before it gives up: long enough for any
/// transaction of ours, and shorter than [`crate::OP_TIMEOUT`], so that a write
/// blocked by another process reports that (as unavailable) before its caller
/// stops waiting, instead of committing after the caller was told it failed.
pub(crate) const WRITE_BUSY_TIMEOUT: Duration = Duration::from_secs(4);

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The one writer of this process: creates the file, sets WAL mode.
    Writer,
    /// A read-only pooled connection.
    Reader,
}

/// Opens a connection to `path` for `role`.
pub(crate) fn open(path: &Path, role: Role) -> StoreResult<Connection> {
    let flags = match role {
        Role::Writer => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Role::Reader => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    match role {
        Role::Writer => {
            conn.busy_timeout(WRITE_BUSY_TIMEOUT)?;
            // WAL: readers never block the writer nor it them. FULL: a commit is on
            // disk before it is acknowledged. A 16 MiB page cache and memory-mapped
            // reads: the pages a batch updates (the tails of the indexes, the
            // labels) stay in memory instead of going through read() per insert.
            // Not larger: when a B-tree balance swaps two pages' numbers it parks
            // one at the pending-byte page (262,145), and the commit after it then
            // walks every page of the cache to drop pages past the end of the
            // file. At 64 MiB that walk took 2% of a refresh's CPU (docs/BENCHMARKS.md,
            // "Refresh: the spend by key and the writer's page cache").
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384; \
                 PRAGMA mmap_size = 268435456; PRAGMA temp_store = memory;",
            )?;
            conn.set_prepared_statement_cache_capacity(64);
        }
        Role::Reader => {
            // Point lookups on the hot path must not wait (see `reader.rs`); the
            // reader pool sets a timeout itself when a read may wait.
            conn.busy_timeout(Duration::ZERO)?;
            // 16 MiB of page cache, and no memory-mapped reads: the file grows with
            // every group commit, and each growth made every mapped reader remap
            // (munmap and TLB shootdowns cost more than the reads). The OS page
            // cache holds the rest.
            conn.execute_batch(
                "PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384; PRAGMA mmap_size = 0; \
                 PRAGMA temp_store = memory;",
            )?;
            conn.set_prepared_statement_cache_capacity(32);
        }
    }
    Ok(conn)
}
