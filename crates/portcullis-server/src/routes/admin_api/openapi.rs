//! `GET /admin/api/v1/openapi.json`: the OpenAPI 3 document of the admin API,
//! generated from the handlers' annotations (no authentication needed), and a
//! Swagger UI page reading it at `/admin/api/docs/` (assets vendored at build time).

use super::{ErrorView, audit, clients, keys, scopes, tokens, users};
use crate::error::RETRY_AFTER_UNAVAILABLE;
use crate::state::AppState;
use crate::views::{
    ActorView, AuditView, ClientView, FamilyView, GrantView, KeyView, LabelView, MintedView,
    RotatedKeyView, ScopeView, UserView,
};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::{Json, Router};
use std::sync::OnceLock;
use utoipa::openapi::RefOr;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The bearer scheme, and the answers every operation can give (listed once, under
/// `components/responses`, and referred to from each operation).
struct Common;

/// An answer every operation can give.
struct Answer {
    status: &'static str,
    /// Its name under `components/responses`.
    name: &'static str,
    description: &'static str,
    /// A header it carries, what it holds, and its type.
    header: Option<(&'static str, &'static str, Type)>,
}

const COMMON: [Answer; 5] = [
    Answer {
        status: "400",
        name: "BadBearerRequest",
        description: "The bearer token was sent in the query string (`access_token`), or in \
                      more than one `Authorization` header.",
        header: None,
    },
    Answer {
        status: "401",
        name: "Unauthorized",
        description: "No credentials (`invalid_token`), or a bearer token that is malformed, \
                      expired, revoked, wrongly signed or of a disabled or deleted client.",
        header: Some((
            "WWW-Authenticate",
            "`Bearer realm=\"portcullis\"`, with `error` and `error_description` when a \
             token was refused.",
            Type::String,
        )),
    },
    Answer {
        status: "403",
        name: "Forbidden",
        description: "A token without the `admin` scope (`insufficient_scope`), or session \
                      authentication on an unsafe method without the session's \
                      `X-CSRF-Token` or from another origin (`forbidden`).",
        header: Some((
            "WWW-Authenticate",
            "With `insufficient_scope`: `Bearer realm=\"portcullis\", \
             error=\"insufficient_scope\", …`.",
            Type::String,
        )),
    },
    Answer {
        status: "500",
        name: "ServerError",
        description: "An internal error (`server_error`); the detail is logged, not sent.",
        header: None,
    },
    Answer {
        status: "503",
        name: "Unavailable",
        description: "The database is unavailable (`temporarily_unavailable`); retry after \
                      `Retry-After` seconds.",
        header: Some((
            "Retry-After",
            "Seconds to wait before retrying.",
            Type::Integer,
        )),
    },
];

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for a in &COMMON {
            let mut response = ResponseBuilder::new().description(a.description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorView")))
                    .build(),
            );
            if let Some((h, d, t)) = &a.header {
                let mut schema = ObjectBuilder::new().schema_type(t.clone());
                if *t == Type::Integer {
                    schema = schema.minimum(Some(0)).examples([RETRY_AFTER_UNAVAILABLE]);
                }
                response = response.header(
                    *h,
                    HeaderBuilder::new()
                        .schema(Some(schema))
                        .description(Some(*d))
                        .build(),
                );
            }
            components
                .responses
                .insert(a.name.to_owned(), RefOr::T(response.build()));
        }
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                optional_body_without_null(op);
                for a in &COMMON {
                    // An operation's own 400 (a bad body or query) says it covers this.
                    op.responses
                        .responses
                        .entry(a.status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(a.name)));
                }
            }
        }
    }
}

/// utoipa writes an optional body (`request_body = Option<T>`) as `oneOf: [T, null]`
/// besides `required: false`; but optional means the body may be left out, not that
/// it may be the JSON `null` (which is 400, like any body that is not an object).
fn optional_body_without_null(op: &mut Operation) {
    let Some(RefOr::T(body)) = op.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else {
            continue;
        };
        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
            let mut kept = one_of.items.iter().filter(|s| !is_null_schema(s));
            if let (Some(only), None) = (kept.next(), kept.next()) {
                content.schema = Some(only.clone());
            }
        }
    }
}

fn is_null_schema(s: &RefOr<Schema>) -> bool {
    matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::new(Type::Null))
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis admin API", description = "Client, token, scope, key, end user and audit administration. Authenticate with a bearer token carrying the `admin` scope, or an admin session cookie plus `X-CSRF-Token` on unsafe methods. Request bodies are JSON objects of at most 64 KiB (`Content-Type: application/json`, or none); an empty body reads as `{}`; unknown fields are refused. Every refusal is an `ErrorView`."),
    modifiers(&Common),
    security(("bearer" = [])),
    paths(
        clients::list, clients::create, clients::show, clients::update, clients::delete,
        clients::disable, clients::enable, clients::rotate_secret,
        tokens::labels, tokens::list, tokens::mint, tokens::revoke,
        scopes::list, scopes::create,
        users::list, users::create, users::show, users::disable, users::enable,
        users::reset_password, users::grants, users::revoke_grant, users::remove_scope,
        keys::list, keys::rotate,
        audit::list,
    ),
    components(schemas(
        ClientView, ScopeView, FamilyView, AuditView, ActorView, LabelView, KeyView,
        RotatedKeyView, MintedView, UserView, GrantView, ErrorView,
        clients::ClientBody, clients::RotateSecretBody, tokens::MintBody, tokens::RevokeBody,
        tokens::RevokedView, scopes::ScopeBody, keys::RotateKeyBody, users::NewUserBody,
        users::PasswordBody, users::RemoveScopeBody,
    ))
)]
pub struct ApiDoc;

/// GET `/admin/api/v1/openapi.json` (built once).
pub async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOC.get_or_init(ApiDoc::openapi))
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
