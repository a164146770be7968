//! The store's integration tests: one conformance suite that every backend must
//! pass unchanged ([`conformance`]), run against each backend by its own module
//! ([`sqlite`], [`postgres`]) with what only that backend has.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod conformance;
mod postgres;
mod sqlite;
