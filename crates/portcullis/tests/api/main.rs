//! Integration tests: each test spawns the real `portcullis` binary on a free
//! loopback port with its own temporary database and talks HTTP to it, or runs
//! the CLI against that database, and asserts what a user would see.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod admin_api;
mod admin_users;
mod authorize;
mod cli;
mod error_bodies;
mod faults;
mod helpers;
mod jwt;
mod lifecycle;
mod logs;
mod metadata;
mod metrics;
mod resource;
mod storage;
mod throttle;
mod tls;
mod token_endpoint;
mod whoami;
