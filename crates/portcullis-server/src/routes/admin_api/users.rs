//! `/admin/api/v1/users[/{id}[/disable|/enable|/reset-password|/grants[/{client_id}
//! [/remove-scope]]]]`: end users and what they allowed applications, through
//! `service::users`, as the admin pages and `portcullis user …` do it. Ending a grant
//! or narrowing it revokes its tokens at once (the service does it).

use super::{ApiJson, ErrorView, rules};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::state::AppState;
use crate::views::{GrantView, UserView};
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use portcullis_core::ScopeSet;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Required, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

fn no_user() -> ApiError {
    ApiError::not_found("no user with that id")
}

/// The `{id}` of a `/users/{id}…` path: a user id (`usr_…`). Anything else, a user
/// name included, is 404 like an unknown id (never axum's plain-text 400).
#[derive(Debug)]
pub struct UserIdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) if id.starts_with("usr_") => Ok(Self(id)),
            _ => Err(no_user()),
        }
    }
}

fn user_id_param() -> Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(
            "User id (`usr_…`). Any other id, a user name included, is 404 like an unknown one.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(rules::USER_ID_PATTERN)),
        ))
        .build()
}

impl IntoParams for UserIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![user_id_param()]
    }
}

/// The `{id}` and `{client_id}` of a `/users/{id}/grants/{client_id}…` path; either
/// malformed is 404, like an unknown one.
#[derive(Debug)]
pub struct GrantPath {
    /// The user's id.
    pub user_id: String,
    /// The application's client id.
    pub client_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for GrantPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(Path((user_id, client_id))) if user_id.starts_with("usr_") => {
                Ok(Self { user_id, client_id })
            }
            _ => Err(no_user()),
        }
    }
}

impl IntoParams for GrantPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            user_id_param(),
            ParameterBuilder::new()
                .name("client_id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The application's client id (`pc_…`). Any other id is 404, like one the \
                     user allowed nothing.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(rules::CLIENT_ID_PATTERN)),
                ))
                .build(),
        ]
    }
}

const NAME_RULE: &str = "1 to 64 characters, none a control, format (bidi, zero-width) or white \
                         space character (an e-mail address works). Stored in Unicode NFC, where \
                         it must also be at most 64 characters (only a few rare characters, such \
                         as U+0958, are longer in NFC); two names that are the same in NFC are the \
                         same name.";

const PASSWORD_RULE: &str = "8 to 1024 characters, any (spaces count). Stored only as an \
                             Argon2id hash.";

/// Body of a user creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// Sign-in name.
    pub name: String,
    /// Password.
    pub password: String,
}

impl PartialSchema for NewUserBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Body of a user creation."))
            .property(
                "name",
                rules::string(NAME_RULE)
                    .pattern(Some(rules::user_name_pattern()))
                    .min_length(Some(1))
                    .max_length(Some(portcullis_core::user::MAX_USER_NAME_CHARS)),
            )
            .required("name")
            .property("password", rules::password_schema(PASSWORD_RULE))
            .required("password")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for NewUserBody {}

/// Body of a password reset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The new password.
    pub password: String,
}

impl PartialSchema for PasswordBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Body of a password reset."))
            .property("password", rules::password_schema(PASSWORD_RULE))
            .required("password")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for PasswordBody {}

/// Body of a scope removal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveScopeBody {
    /// The scope to take away.
    pub scope: String,
}

impl PartialSchema for RemoveScopeBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Body of a scope removal."))
            .property(
                "scope",
                rules::scope_name_schema(
                    "The scope to take away from the grant (one it includes, else 404).",
                ),
            )
            .required("scope")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for RemoveScopeBody {}

/// Every end user, by name.
#[utoipa::path(get, path = "/admin/api/v1/users", tag = "users", operation_id = "list_users",
    responses((status = 200, description = "Every end user, by name (no password hashes).", body = Vec<UserView>)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let all = state.users.list().await?;
    Ok(Json(all.iter().map(UserView::new).collect()))
}

/// Creates an end user.
#[utoipa::path(post, path = "/admin/api/v1/users", tag = "users", operation_id = "create_user",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created, active.", body = UserView),
        (status = 400, description = "A malformed body, `name` or `password` (the description names it), or a malformed bearer request.", body = ErrorView),
        (status = 409, description = "A user of that name exists.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    rules::user_name(&body.name)?;
    rules::password("password", &body.password)?;
    let u = state
        .users
        .create(&body.name, &body.password, &caller.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(UserView::new(&u))))
}

/// One end user.
#[utoipa::path(get, path = "/admin/api/v1/users/{id}", tag = "users", operation_id = "show_user",
    params(UserIdPath),
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 404, description = "No such user.", body = ErrorView)))]
pub async fn show(
    State(state): State<AppState>,
    _caller: AdminCaller,
    UserIdPath(id): UserIdPath,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(UserView::new(&state.users.get(&id).await?)))
}

async fn set_status(
    state: &AppState,
    caller: &AdminCaller,
    id: &str,
    active: bool,
) -> Result<Json<UserView>, ApiError> {
    let u = state.users.set_status(id, active, &caller.actor).await?;
    Ok(Json(UserView::new(&u)))
}

/// Disables an end user: they cannot sign in, and every token issued on their behalf
/// is revoked.
#[utoipa::path(post, path = "/admin/api/v1/users/{id}/disable", tag = "users", operation_id = "disable_user",
    params(UserIdPath),
    responses(
        (status = 200, description = "Disabled (also when they already were); their sessions ended and the tokens issued on their behalf are revoked for good.", body = UserView),
        (status = 404, description = "No such user.", body = ErrorView)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: AdminCaller,
    UserIdPath(id): UserIdPath,
) -> Result<Json<UserView>, ApiError> {
    set_status(&state, &caller, &id, false).await
}

/// Enables an end user again (their revoked tokens stay revoked).
#[utoipa::path(post, path = "/admin/api/v1/users/{id}/enable", tag = "users", operation_id = "enable_user",
    params(UserIdPath),
    responses(
        (status = 200, description = "Enabled (also when they already were).", body = UserView),
        (status = 404, description = "No such user.", body = ErrorView)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: AdminCaller,
    UserIdPath(id): UserIdPath,
) -> Result<Json<UserView>, ApiError> {
    set_status(&state, &caller, &id, true).await
}

/// Sets an end user's password; their sessions end.
#[utoipa::path(post, path = "/admin/api/v1/users/{id}/reset-password", tag = "users",
    operation_id = "reset_user_password",
    request_body = PasswordBody,
    params(UserIdPath),
    responses(
        (status = 200, description = "Set; the user's sessions ended (the tokens of the applications they allowed keep working).", body = UserView),
        (status = 400, description = "A malformed body or `password`, or a malformed bearer request.", body = ErrorView),
        (status = 404, description = "No such user.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn reset_password(
    State(state): State<AppState>,
    caller: AdminCaller,
    UserIdPath(id): UserIdPath,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<UserView>, ApiError> {
    rules::password("password", &body.password)?;
    let u = state
        .users
        .reset_password(&id, &body.password, &caller.actor)
        .await?;
    Ok(Json(UserView::new(&u)))
}

/// What a user allowed applications.
#[utoipa::path(get, path = "/admin/api/v1/users/{id}/grants", tag = "users", operation_id = "list_user_grants",
    params(UserIdPath),
    responses(
        (status = 200, description = "The applications the user allowed, with the scopes and last use of each.", body = Vec<GrantView>),
        (status = 404, description = "No such user.", body = ErrorView)))]
pub async fn grants(
    State(state): State<AppState>,
    _caller: AdminCaller,
    UserIdPath(id): UserIdPath,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    let u = state.users.get(&id).await?;
    let consents = state.users.consents(&u.id).await?;
    Ok(Json(consents.iter().map(GrantView::from).collect()))
}

fn no_grant() -> ApiError {
    ApiError::not_found("grant not found")
}

/// Ends a grant: the application's tokens for this user are revoked at once, and it
/// must ask the user again.
#[utoipa::path(delete, path = "/admin/api/v1/users/{id}/grants/{client_id}", tag = "users",
    operation_id = "revoke_user_grant",
    params(GrantPath),
    responses(
        (status = 204, description = "Ended; the application's tokens for this user are revoked."),
        (status = 404, description = "No such user, or the user allowed that application nothing.", body = ErrorView)))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    caller: AdminCaller,
    p: GrantPath,
) -> Result<StatusCode, ApiError> {
    let u = state.users.get(&p.user_id).await?;
    state
        .users
        .revoke_consent(&u.id, &p.client_id, None, &caller.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes one scope away from a grant. Its tokens are revoked at once: the application
/// asks for the scopes left (no consent needed) or the user again. Taking the last
/// scope ends the grant.
#[utoipa::path(post, path = "/admin/api/v1/users/{id}/grants/{client_id}/remove-scope", tag = "users",
    operation_id = "remove_user_grant_scope",
    request_body = RemoveScopeBody,
    params(GrantPath),
    responses(
        (status = 200, description = "Narrowed: the grant as it now is. The application's tokens for this user are revoked.", body = GrantView),
        (status = 204, description = "That was the grant's last scope: the grant ended, its tokens are revoked."),
        (status = 400, description = "A malformed body or `scope`, or a malformed bearer request.", body = ErrorView),
        (status = 404, description = "No such user, the user allowed that application nothing, or not that scope.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn remove_scope(
    State(state): State<AppState>,
    caller: AdminCaller,
    p: GrantPath,
    ApiJson(body): ApiJson<RemoveScopeBody>,
) -> Result<Response, ApiError> {
    rules::scope_names("scope", std::slice::from_ref(&body.scope))?;
    let remove =
        ScopeSet::parse(&body.scope).map_err(|e| ApiError::bad_request(format!("scope: {e}")))?;
    let u = state.users.get(&p.user_id).await?;
    let grant = state
        .users
        .consent(&u.id, &p.client_id)
        .await?
        .ok_or_else(no_grant)?;
    if !grant.scopes.contains_str(&body.scope) {
        return Err(ApiError::not_found(format!(
            "the grant does not include the scope {}",
            body.scope
        )));
    }
    state
        .users
        .revoke_consent(&u.id, &p.client_id, Some(&remove), &caller.actor)
        .await?;
    let now = state.users.consents(&u.id).await?;
    Ok(match now.iter().find(|c| c.client_id == p.client_id) {
        Some(c) => Json(GrantView::from(c)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}
