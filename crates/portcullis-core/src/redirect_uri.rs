//! Redirect URIs registered on a client (RFC 6749 §3.1.2, RFC 9700 §2.1, §4.1.3):
//! absolute, no fragment, exact-match only; `https`, or `http` on a loopback host,
//! or a private-use scheme for native apps (RFC 8252 §7.1).

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A registered redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

/// Why a redirect URI was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid redirect URI {0:?}: {1}")]
pub struct RedirectUriError(pub String, pub &'static str);

impl RedirectUri {
    /// Parses and checks a redirect URI.
    pub fn parse(s: &str) -> Result<Self, RedirectUriError> {
        let err = |why| Err(RedirectUriError(s.chars().take(100).collect(), why));
        if s.len() > 2000 {
            return err("longer than 2000 characters");
        }
        if s.bytes()
            .any(|c| c <= b' ' || c == 0x7f || c == b'"' || c == b'<' || c == b'>')
        {
            return err("contains spaces, quotes or control characters");
        }
        if s.contains('#') {
            return err("must not contain a fragment");
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return err("not an absolute URI");
        };
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if !scheme_ok || rest.is_empty() {
            return err("not an absolute URI");
        }
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "https" | "http" => {
                let Some(after) = rest.strip_prefix("//") else {
                    return err("http(s) URI without an authority");
                };
                let authority = after.split(['/', '?']).next().unwrap_or("");
                if authority.is_empty() || authority.contains('@') {
                    return err("missing host, or userinfo present");
                }
                let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
                    match v6.split_once(']') {
                        Some((h, rest)) => (h, rest),
                        None => return err("unclosed IPv6 address"),
                    }
                } else {
                    match authority.find(':') {
                        Some(i) => (&authority[..i], &authority[i..]),
                        None => (authority, ""),
                    }
                };
                if host.is_empty() {
                    return err("missing host");
                }
                // After the host: nothing, or `:` and a port number.
                let port_ok = port.is_empty()
                    || port.strip_prefix(':').is_some_and(|p| {
                        !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
                    });
                if !port_ok {
                    return err("the port must be a number");
                }
                let loopback = matches!(host, "localhost" | "127.0.0.1" | "::1");
                if scheme == "http" && !loopback {
                    return err("http is only allowed for loopback hosts; use https");
                }
            }
            "javascript" | "data" | "file" | "vbscript" => return err("scheme not allowed"),
            // RFC 8252 §7.1: private-use schemes are reverse domain names.
            other if !other.contains('.') => {
                return err("custom schemes must be reverse domain names (com.example.app)");
            }
            _ => {}
        }
        Ok(Self(s.to_owned()))
    }
    /// The URI text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RedirectUri {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_loopback_and_native_schemes() {
        for u in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:9000/callback",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(RedirectUri::parse(u).is_ok(), "{u}");
        }
    }

    #[test]
    fn refuses_fragments_plain_http_and_scripts() {
        for u in [
            "",
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "https://user@evil.example/",
            "https:///nohost",
            "myapp:/cb",
            "https://a b/",
        ] {
            assert!(RedirectUri::parse(u).is_err(), "{u}");
        }
    }
}
