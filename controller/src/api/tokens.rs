//! Tokens for admins: make one (shown once), list them, revoke one. Each change is journaled.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use takt_core::Input;
use takt_core::identity::{IdentityInput, Role, Scope};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Caller, new_token};
use super::body::JsonBody;
use super::commands::{Committed, submit};
use super::lists::PageParams;
use super::problem::{ApiError, CommandProblems, ReadProblems};
use super::views::{Page, TokenView};

/// A token to make: for a plant role, or for one tenant (exactly one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// Who will hold it ("HMI line A1", "Seats GmbH planner").
    pub label: String,
    pub role: Option<RoleName>,
    /// A supplier's or carrier's id.
    pub tenant: Option<String>,
}

/// A plant role: `operator` (line side), `yard` (gate and dock), `supervisor` (overrides, and
/// what both of those may do), `admin` (everything, and tokens).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Operator,
    Yard,
    Supervisor,
    Admin,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Operator => Role::Operator,
            RoleName::Yard => Role::Yard,
            RoleName::Supervisor => Role::Supervisor,
            RoleName::Admin => Role::Admin,
        }
    }
}

/// A token just made. `token` is shown this once; the controller keeps only its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
    pub journal_id: i64,
}

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

/// The scope a body asks for, or the field at fault.
pub fn scope_of(role: Option<Role>, tenant: Option<String>) -> Result<Scope, ApiError> {
    match (role, tenant.map(|t| t.trim().to_owned())) {
        (Some(role), None) => Ok(Scope::Role { role }),
        (None, Some(tenant)) if !tenant.is_empty() => Ok(Scope::Tenant { tenant }),
        (None, Some(_)) => Err(ApiError::Invalid {
            field: "tenant".to_owned(),
            detail: "a tenant id is required".to_owned(),
        }),
        _ => Err(ApiError::Invalid {
            field: "role".to_owned(),
            detail: "give exactly one of role and tenant".to_owned(),
        }),
    }
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    summary = "Make a token (the response is the only time it is shown)",
    request_body = NewTokenBody,
    responses((status = 201, body = IssuedToken), CommandProblems),
    security(("bearer" = [])))]
async fn create(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    caller.require(Role::Admin, "making tokens")?;
    let label = body.label.trim().to_owned();
    if label.is_empty() {
        return Err(ApiError::Invalid {
            field: "label".to_owned(),
            detail: "say who holds the token".to_owned(),
        });
    }
    let scope = scope_of(body.role.map(Role::from), body.tenant)?;
    if let Some(tenant) = scope.tenant()
        && !state.plant.is_tenant(tenant)
    {
        return Err(ApiError::Invalid {
            field: "tenant".to_owned(),
            detail: format!("no supplier or carrier `{tenant}` in the configuration"),
        });
    }
    let made = new_token(scope, &label).map_err(|e| ApiError::Internal(e.to_string()))?;
    let input = Input::Identity(IdentityInput::IssueToken(made.grant.clone()));
    // No idempotency key: a retry must make a new token (the first one was never shown).
    let Json(committed) = submit(&state, &caller, &HeaderMap::new(), input, None).await?;
    let view = state
        .store
        .api_token(&made.grant.id)
        .await?
        .map(TokenView::from)
        .ok_or_else(|| ApiError::Internal("a token just journaled is not in the store".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token: made.token,
            view,
            journal_id: committed.journal_id,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", summary = "Every token, revoked ones too",
    params(PageParams),
    responses((status = 200, body = Page<TokenView>), ReadProblems),
    security(("bearer" = [])))]
async fn list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<TokenView>>, ApiError> {
    caller.require(Role::Admin, "listing tokens")?;
    let query = PageParams::of(&uri)?;
    let tokens = state.store.api_tokens(&query).await?;
    let full = tokens.len() == query.limit as usize;
    let items: Vec<TokenView> = tokens.into_iter().map(TokenView::from).collect();
    let next = items.last().filter(|_| full).map(|t| t.id.clone());
    Ok(Json(Page { items, next }))
}

#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "tokens",
    summary = "Revoke a token: it authenticates nobody from the next request on",
    params(("id" = String, Path, description = "The token's id (the 8 hex digits after `takt_`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn revoke(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Admin, "revoking tokens")?;
    if state.store.api_token(&id).await?.is_none() {
        return Err(ApiError::NotFound { what: "token", id });
    }
    let input = Input::Identity(IdentityInput::RevokeToken { id });
    submit(&state, &caller, &headers, input, None).await
}
