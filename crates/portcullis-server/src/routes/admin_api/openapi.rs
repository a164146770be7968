//! `GET /admin/api/v1/openapi.json`: the OpenAPI 3 document of the admin API,
//! generated from the handlers' annotations (no authentication needed), and a
//! Swagger UI page reading it at `/admin/api/docs/` (assets vendored at build time).

use super::{ErrorView, audit, clients, keys, scopes, tokens};
use crate::state::AppState;
use crate::views::{
    ActorView, AuditView, ClientView, FamilyView, KeyView, LabelView, MintedView, RotatedKeyView,
    ScopeView,
};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis admin API", description = "Client, token, scope, key and audit administration. Authenticate with a bearer token carrying the `admin` scope, or an admin session cookie plus `X-CSRF-Token` on unsafe methods."),
    modifiers(&Security),
    security(("bearer" = [])),
    paths(
        clients::list, clients::create, clients::show, clients::update, clients::delete,
        clients::disable, clients::enable, clients::rotate_secret,
        tokens::labels, tokens::list, tokens::mint, tokens::revoke,
        scopes::list, scopes::create,
        keys::list, keys::rotate,
        audit::list,
    ),
    components(schemas(
        ClientView, ScopeView, FamilyView, AuditView, ActorView, LabelView, KeyView,
        RotatedKeyView, MintedView, ErrorView,
        clients::ClientBody, clients::RotateSecretBody, tokens::MintBody, tokens::RevokeBody,
        tokens::RevokedView, scopes::ScopeBody, keys::RotateKeyBody,
    ))
)]
pub struct ApiDoc;

/// GET `/admin/api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Swagger UI sets inline styles; everything else stays as strict as elsewhere.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                        img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                        form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn docs_csp(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    );
    resp
}

/// `/admin/api/docs`: Swagger UI over [`document`], with its own CSP.
pub fn swagger_ui() -> Router<AppState> {
    Router::from(
        SwaggerUi::new("/admin/api/docs").config(Config::new(["/admin/api/v1/openapi.json"])),
    )
    .layer(axum::middleware::map_response(docs_csp))
}
