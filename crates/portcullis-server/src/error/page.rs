//! The admin pages' answers: plain text for what has no page of its own (a
//! missing client, a fault). Form mistakes are shown on the form itself.

use super::{Fault, unavailable_response};
use crate::service::clients::ClientOpError;
use crate::service::users::UserOpError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The admin pages' error sink.
#[derive(Debug)]
pub enum PageError {
    /// 404: `what` does not exist.
    NotFound(String),
    /// Something inside failed: 503 with `Retry-After`, or an opaque 500.
    Fault(Fault),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound(what) => {
                (StatusCode::NOT_FOUND, format!("{what} not found")).into_response()
            }
            Self::Fault(fault) => {
                fault.log("admin pages");
                match fault {
                    Fault::Unavailable(_) => {
                        unavailable_response("The database is unavailable; try again in a moment.")
                    }
                    Fault::Broken(_) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
                    }
                }
            }
        }
    }
}

super::faults_into!(PageError, |f| PageError::Fault(f));

impl From<ClientOpError> for PageError {
    /// For pages that only read a client: every refusal but a fault is "not found".
    fn from(e: ClientOpError) -> Self {
        match e {
            ClientOpError::Fault(f) => Self::Fault(f),
            _ => Self::NotFound("client".into()),
        }
    }
}

impl From<UserOpError> for PageError {
    /// For what a page cannot show on a form: a missing user or grant, a fault. The
    /// forms that can be refused (a name, a password) show why next to the field, so
    /// a refusal reaching this is a bug: an opaque 500.
    fn from(e: UserOpError) -> Self {
        match e {
            UserOpError::NotFound(what) => Self::NotFound(what),
            UserOpError::Fault(f) => Self::Fault(f),
            other => Self::Fault(Fault::broken(other)),
        }
    }
}
