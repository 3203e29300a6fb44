//! Reads for plant users: each projection as pages in key order, resumed by cursor.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use serde::Deserialize;
use takt_core::identity::Role;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::problem::{ApiError, ItemReadProblems, ReadProblems};
use super::views::{
    AlarmView, CallView, CoverageView, LineView, Page, RackView, ShipmentView, TaskView,
    VehicleView,
};
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
        .routes(routes!(lines))
        .routes(routes!(coverage))
        .routes(routes!(shipments))
}

/// Every plant role reads the plant; a tenant reads only its own, through its own endpoints.
pub(super) fn plant_user(caller: &Caller) -> Result<(), ApiError> {
    let plant_user = [Role::Operator, Role::Yard]
        .into_iter()
        .any(|r| caller.scope.has_role(r));
    if plant_user {
        Ok(())
    } else {
        Err(ApiError::Forbidden("reading the plant's lists"))
    }
}

/// A page of what was read for `query`, with the cursor of the next if it was full.
pub(super) fn paged<T>(
    items: Vec<T>,
    query: &PageQuery,
    key: impl Fn(&T) -> String,
) -> Json<Page<T>> {
    let full = items.len() == query.limit as usize;
    let next = items.last().filter(|_| full).map(key);
    Json(Page { items, next })
}

/// A page of `projection` for a plant user, with the cursor of the next.
async fn page<T: serde::de::DeserializeOwned>(
    state: &ApiState,
    caller: &Caller,
    uri: &Uri,
    projection: Projection,
    key: impl Fn(&T) -> String,
) -> Result<Json<Page<T>>, ApiError> {
    plant_user(caller)?;
    let query = PageParams::of(uri)?;
    let items: Vec<T> = state.store.plant_page(projection, &query).await?;
    Ok(paged(items, &query, key))
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

#[utoipa::path(get, path = "/api/v1/lines", tag = "lines",
    summary = "Lines: running or stopped and why, takt, time stopped",
    params(PageParams),
    responses((status = 200, body = Page<LineView>), ReadProblems),
    security(("bearer" = [])))]
async fn lines(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<LineView>>, ApiError> {
    page(&state, &caller, &uri, Projection::Lines, |l: &LineView| {
        l.line.clone()
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/lines/{line}/coverage", tag = "lines",
    summary = "Coverage of a line's families, by family: minutes and vehicles ready ahead",
    params(("line" = String, Path, description = "A configured line"), PageParams),
    responses((status = 200, body = Page<CoverageView>), ItemReadProblems),
    security(("bearer" = [])))]
async fn coverage(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(line): Path<String>,
    uri: Uri,
) -> Result<Json<Page<CoverageView>>, ApiError> {
    plant_user(&caller)?;
    if state.plant.line(&line).is_none() {
        return Err(ApiError::NotFound {
            what: "line",
            id: line,
        });
    }
    let query = PageParams::of(&uri)?;
    let items: Vec<CoverageView> = state.store.line_coverage(&line, &query).await?;
    Ok(paged(items, &query, |c| c.family.clone()))
}

#[utoipa::path(get, path = "/api/v1/shipments", tag = "supplier",
    summary = "Every supplier's shipments, by id (plant users)",
    params(PageParams),
    responses((status = 200, body = Page<ShipmentView>), ReadProblems),
    security(("bearer" = [])))]
async fn shipments(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<ShipmentView>>, ApiError> {
    page(
        &state,
        &caller,
        &uri,
        Projection::Shipments,
        |s: &ShipmentView| s.id.to_string(),
    )
    .await
}
