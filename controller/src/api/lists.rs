//! Reads for plant users: each projection as pages in key order, resumed by cursor.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use serde::Deserialize;
use takt_core::identity::Role;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::problem::{ApiError, ReadProblems};
use super::views::{AlarmView, CallView, Page, RackView, TaskView, VehicleView};
use crate::store::{PageQuery, Projection};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1_000;

/// Where a page starts and how long it is.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `next` of the page before; absent for the first page.
    pub after: Option<String>,
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl PageParams {
    /// From the query string, naming the parameter at fault.
    pub(super) fn of(uri: &Uri) -> Result<PageQuery, ApiError> {
        let params = Query::<PageParams>::try_from_uri(uri).map_err(|e| ApiError::Invalid {
            field: "query".to_owned(),
            detail: e.body_text(),
        })?;
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::Invalid {
                field: "limit".to_owned(),
                detail: format!("1 to {MAX_LIMIT}"),
            });
        }
        Ok(PageQuery {
            after: params.after.clone(),
            limit,
        })
    }
}

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(alarms))
        .routes(routes!(calls))
        .routes(routes!(racks))
        .routes(routes!(vehicles))
        .routes(routes!(tasks))
}

/// A page of `projection` for a plant user, with the cursor of the next.
async fn page<T: serde::de::DeserializeOwned>(
    state: &ApiState,
    caller: &Caller,
    uri: &Uri,
    projection: Projection,
    key: impl Fn(&T) -> String,
) -> Result<Json<Page<T>>, ApiError> {
    // Every plant role reads the plant; a tenant reads only its own, through its own endpoints.
    let plant_user = [Role::Operator, Role::Yard]
        .into_iter()
        .any(|r| caller.scope.has_role(r));
    if !plant_user {
        return Err(ApiError::Forbidden("reading the plant's lists"));
    }
    let query = PageParams::of(uri)?;
    let items: Vec<T> = state.store.plant_page(projection, &query).await?;
    let full = items.len() == query.limit as usize;
    let next = items.last().filter(|_| full).map(key);
    Ok(Json(Page { items, next }))
}

#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms", summary = "Alarms, by id",
    params(PageParams),
    responses((status = 200, body = Page<AlarmView>), ReadProblems),
    security(("bearer" = [])))]
async fn alarms(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<AlarmView>>, ApiError> {
    page(
        &state,
        &caller,
        &uri,
        Projection::Alarms,
        |a: &AlarmView| a.id.clone(),
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", summary = "Sequence calls, by id",
    params(PageParams),
    responses((status = 200, body = Page<CallView>), ReadProblems),
    security(("bearer" = [])))]
async fn calls(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<CallView>>, ApiError> {
    page(&state, &caller, &uri, Projection::Calls, |c: &CallView| {
        c.id.to_string()
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/racks", tag = "racks", summary = "Racks, by id",
    params(PageParams),
    responses((status = 200, body = Page<RackView>), ReadProblems),
    security(("bearer" = [])))]
async fn racks(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<RackView>>, ApiError> {
    page(&state, &caller, &uri, Projection::Racks, |r: &RackView| {
        r.id.clone()
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/vehicles", tag = "vehicles", summary = "Vehicles, by id",
    params(PageParams),
    responses((status = 200, body = Page<VehicleView>), ReadProblems),
    security(("bearer" = [])))]
async fn vehicles(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<VehicleView>>, ApiError> {
    page(
        &state,
        &caller,
        &uri,
        Projection::Vehicles,
        |v: &VehicleView| v.id.to_string(),
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "stations", summary = "Pick and put tasks, by id",
    params(PageParams),
    responses((status = 200, body = Page<TaskView>), ReadProblems),
    security(("bearer" = [])))]
async fn tasks(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<TaskView>>, ApiError> {
    page(&state, &caller, &uri, Projection::Tasks, |t: &TaskView| {
        t.id.to_string()
    })
    .await
}
