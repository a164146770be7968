//! [`Fault`]: what went wrong inside, as far as an answer needs to know.

use portcullis_store::StoreError;

/// Something inside failed. The caller learns only whether to retry: a database
/// that is unavailable is 503 with `Retry-After` on every surface; anything else is
/// an opaque 500. The detail is for the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Fault {
    /// The database cannot be reached or did not answer in time
    /// ([`StoreError::Unavailable`]).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a database error, a crypto failure, a broken invariant.
    #[error("{0}")]
    Broken(String),
}

impl Fault {
    /// A broken invariant, described.
    pub fn broken(detail: impl std::fmt::Display) -> Self {
        Self::Broken(detail.to_string())
    }

    /// Logs the detail at the level it deserves, naming the surface.
    pub(crate) fn log(&self, surface: &'static str) {
        match self {
            Self::Unavailable(detail) => {
                tracing::warn!(%detail, surface, "a request found the database unavailable");
            }
            Self::Broken(detail) => tracing::error!(%detail, surface, "internal error"),
        }
    }
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(d) => Self::Unavailable(d),
            other => Self::Broken(other.to_string()),
        }
    }
}

impl From<portcullis_crypto::CryptoError> for Fault {
    fn from(e: portcullis_crypto::CryptoError) -> Self {
        Self::broken(e)
    }
}

impl From<crate::keyring::KeyringError> for Fault {
    fn from(e: crate::keyring::KeyringError) -> Self {
        match e {
            crate::keyring::KeyringError::Store(s) => s.into(),
            other => Self::broken(other),
        }
    }
}

impl From<crate::service::tokens::IssueError> for Fault {
    fn from(e: crate::service::tokens::IssueError) -> Self {
        use crate::service::tokens::IssueError;
        match e {
            IssueError::Store(s) => s.into(),
            other => Self::broken(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unavailable_store_is_a_fault_to_retry() {
        let f = Fault::from(StoreError::Unavailable("timed out".into()));
        assert!(matches!(f, Fault::Unavailable(_)));
        for e in [
            StoreError::Backend("disk I/O error".into()),
            StoreError::NotFound("x".into()),
            // A backend message that merely mentions the word is not unavailability.
            StoreError::Backend("database unavailable: quoted".into()),
        ] {
            assert!(matches!(Fault::from(e), Fault::Broken(_)));
        }
    }
}
