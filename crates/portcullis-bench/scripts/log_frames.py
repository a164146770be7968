#!/usr/bin/env python3
"""Log frames SQLite writes per client-credentials grant, for a schema and a batch size.

Applies the first MIGRATIONS files of crates/portcullis-store/migrations/sqlite/ to a
fresh database, then records GRANTS grants the way the group-commit writer does (the
family, its refresh token, the label upsert and the audit event; 100 labels in turn),
BATCH grants per transaction, and counts the frames the write-ahead log receives.
Comparing two migration counts shows what a schema change does to the write volume
of the token endpoint without the noise of a load test.

    python3 crates/portcullis-bench/scripts/log_frames.py 5 24   # before migration 6
    python3 crates/portcullis-bench/scripts/log_frames.py 6 24   # after it
"""

import glob
import os
import random
import sqlite3
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MIGRATIONS = sorted(
    glob.glob(os.path.join(HERE, "../../portcullis-store/migrations/sqlite/0*.sql"))
)
PAGE = 4096
FRAME = PAGE + 24
WAL_HEADER = 32


def main():
    upto = int(sys.argv[1]) if len(sys.argv) > 1 else len(MIGRATIONS)
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    grants = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "f.db")
        c = sqlite3.connect(db, isolation_level=None)
        for m in MIGRATIONS[:upto]:
            with open(m) as f:
                c.executescript(f.read())
        c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA wal_autocheckpoint = 0")
        c.execute(
            "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, "
            "updated_at) VALUES ('pc_x', 'b', 'active', '[]', '[]', 0, 0)"
        )
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        millis = 1_700_000_000_000
        frames = 0

        def log_frames():
            return max(0, os.path.getsize(db + "-wal") - WAL_HEADER) // FRAME

        for b in range(grants // batch):
            c.execute("BEGIN IMMEDIATE")
            for i in range(batch):
                n = b * batch + i
                millis += 1
                now = millis // 1000
                family = "fam_%013d%013d" % (millis, random.getrandbits(40))
                label = "home-%d" % (n % 100)
                c.execute(
                    "INSERT INTO token_families (id, client_id, label, subject, scopes, "
                    "grant_type, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (family, "pc_x", label, "pc_x", "upload-data", "client_credentials",
                     now, now + 31_536_000),
                )
                c.execute(
                    "INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, "
                    "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    ("%013d%013d" % (millis, random.getrandbits(40)), os.urandom(32),
                     family, "upload-data", now, now + 31_536_000),
                )
                c.execute(
                    "INSERT INTO labels (client_id, name, created_at, last_issued_at) "
                    "VALUES (?1, ?2, ?3, ?3) ON CONFLICT (client_id, name) DO UPDATE SET "
                    "last_issued_at = max(coalesce(labels.last_issued_at, 0), "
                    "excluded.last_issued_at)",
                    ("pc_x", label, now),
                )
                c.execute(
                    "INSERT INTO audit_events (at, kind, actor_kind, actor_id, target, "
                    "client_id, label, source, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (now, "token.issue", "client", "pc_x", family, "pc_x", label,
                     "127.0.0.1", None),
                )
            c.execute("COMMIT")
            if b % 50 == 49:
                frames += log_frames()
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        frames += log_frames()
        done = (grants // batch) * batch
        print(
            f"migrations 1-{upto}, {batch} grants a commit: "
            f"{frames / done:.2f} log frames per grant ({frames} frames, {done} grants)"
        )


if __name__ == "__main__":
    main()
