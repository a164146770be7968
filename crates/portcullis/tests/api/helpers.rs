//! What this suite adds to `portcullis_testkit`: the binary under test. The HTTP
//! helpers are the testkit's, shared with the other suites.

pub use portcullis_testkit::http::*;
pub use portcullis_testkit::{Engine, TestServer};
use std::path::Path;

/// The binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_portcullis"))
}

/// A new server with `extra` serve flags.
pub fn server(extra: &[&str]) -> TestServer {
    TestServer::start(bin(), extra).expect("server starts")
}
