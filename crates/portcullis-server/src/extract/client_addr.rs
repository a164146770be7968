//! The caller's address, for throttling and the audit log: the TCP peer, or,
//! when the peer is one of the `--trusted-proxy` blocks, the client address the
//! proxy forwarded (`Forwarded`, else `X-Forwarded-For`). From any other peer those
//! headers are ignored, so nobody can pass for another address.

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// Resolves the address of a request from `peer` with these headers.
    pub fn resolve(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> Self {
        if state.trusted_proxies.is_empty() {
            return Self(peer.to_canonical());
        }
        let values = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or("\u{0}"))
                .collect()
        };
        Self(portcullis_core::net::client_address(
            peer,
            &values("forwarded"),
            &values("x-forwarded-for"),
            &state.trusted_proxies,
        ))
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        // Served without connection info (never in `serve`): an unspecified address,
        // one source for everything, which only throttles and never trusts.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(Self::resolve(state, peer, &parts.headers))
    }
}
