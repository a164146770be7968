//! A small migrator: numbered SQL files embedded in the binary, each applied once in
//! its own transaction and recorded in `schema_migrations`. The same numbering for
//! every backend. A database newer than the binary is refused rather than guessed at.

/// `(version, name, sql)`.
pub(crate) type Migration = (i64, &'static str, &'static str);

/// SQLite migrations, in order.
pub(crate) const SQLITE: &[Migration] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "revocation",
        include_str!("../migrations/sqlite/0002_revocation.sql"),
    ),
    (
        3,
        "data",
        include_str!("../migrations/sqlite/0003_data.sql"),
    ),
    (
        4,
        "admin",
        include_str!("../migrations/sqlite/0004_admin.sql"),
    ),
    (
        5,
        "refresh_selectors",
        include_str!("../migrations/sqlite/0005_refresh_selectors.sql"),
    ),
    (
        6,
        "families_by_time",
        include_str!("../migrations/sqlite/0006_families_by_time.sql"),
    ),
    (
        7,
        "refresh_tokens_by_selector_only",
        include_str!("../migrations/sqlite/0007_refresh_tokens_by_selector_only.sql"),
    ),
    (
        8,
        "audit_by_client_id",
        include_str!("../migrations/sqlite/0008_audit_by_client_id.sql"),
    ),
    (
        9,
        "label_issue_times_on_families",
        include_str!("../migrations/sqlite/0009_label_issue_times_on_families.sql"),
    ),
    (
        10,
        "end_users",
        include_str!("../migrations/sqlite/0010_end_users.sql"),
    ),
    (
        11,
        "codes_spent_in_place",
        include_str!("../migrations/sqlite/0011_codes_spent_in_place.sql"),
    ),
];

/// PostgreSQL migrations, in order (the same numbers and names as SQLite's).
pub(crate) const POSTGRES: &[Migration] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "revocation",
        include_str!("../migrations/postgres/0002_revocation.sql"),
    ),
    (
        3,
        "data",
        include_str!("../migrations/postgres/0003_data.sql"),
    ),
    (
        4,
        "admin",
        include_str!("../migrations/postgres/0004_admin.sql"),
    ),
    (
        5,
        "refresh_selectors",
        include_str!("../migrations/postgres/0005_refresh_selectors.sql"),
    ),
    (
        6,
        "families_by_time",
        include_str!("../migrations/postgres/0006_families_by_time.sql"),
    ),
    (
        7,
        "refresh_tokens_by_selector_only",
        include_str!("../migrations/postgres/0007_refresh_tokens_by_selector_only.sql"),
    ),
    (
        8,
        "audit_by_client_id",
        include_str!("../migrations/postgres/0008_audit_by_client_id.sql"),
    ),
    (
        9,
        "label_issue_times_on_families",
        include_str!("../migrations/postgres/0009_label_issue_times_on_families.sql"),
    ),
    (
        10,
        "end_users",
        include_str!("../migrations/postgres/0010_end_users.sql"),
    ),
    (
        11,
        "codes_spent_in_place",
        include_str!("../migrations/postgres/0011_codes_spent_in_place.sql"),
    ),
];
