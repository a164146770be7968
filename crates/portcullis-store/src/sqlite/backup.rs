//! `portcullis backup FILE`: an online, consistent copy through SQLite's backup
//! API. The copy is made in one step, inside one read transaction of a WAL
//! reader, so it is the database as of one commit while the server goes on
//! writing; it is written beside the destination and renamed into place only when
//! complete and on disk, so a crash never leaves a half copy under the name asked for.

use crate::{StoreError, StoreResult};
use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};
use std::path::Path;
use std::time::Duration;

/// How long a copy waits for a lock before giving up, and how often it retries.
const WAIT_FOR_LOCKS: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_millis(10);

/// Copies the database `src` is connected to into a new file at `dest`.
pub(super) fn copy(src: &Connection, dest: &Path) -> StoreResult<()> {
    let io = |what: &str, e: std::io::Error| {
        StoreError::Backend(format!("{what} {}: {e}", dest.display()))
    };
    if dest.exists() {
        return Err(StoreError::Conflict(format!(
            "{} already exists; choose a new file name",
            dest.display()
        )));
    }
    let name = dest
        .file_name()
        .ok_or_else(|| StoreError::Backend(format!("{} is not a file name", dest.display())))?;
    let partial = dest.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let _ = std::fs::remove_file(&partial);
    let result = (|| -> StoreResult<()> {
        let mut out = Connection::open(&partial)?;
        {
            let backup = Backup::new(src, &mut out)?;
            // -1: every page in one step, so the copy is one consistent snapshot.
            let mut waited = Duration::ZERO;
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    _ if waited < WAIT_FOR_LOCKS => {
                        std::thread::sleep(RETRY);
                        waited += RETRY;
                    }
                    _ => {
                        return Err(StoreError::Backend(
                            "the database stayed locked; try again".into(),
                        ));
                    }
                }
            }
        }
        // A standalone file: no write-ahead log beside it to lose.
        out.execute_batch("PRAGMA journal_mode = DELETE;")?;
        let ok: String = out.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(StoreError::Backend(format!(
                "the copy failed its integrity check: {ok}"
            )));
        }
        drop(out);
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("cannot flush", e))?;
        std::fs::rename(&partial, dest).map_err(|e| io("cannot write", e))?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("cannot flush the directory of", e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}
