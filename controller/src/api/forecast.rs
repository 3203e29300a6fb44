//! Forecast sharing: the plant's MES posts its planned sequence; each supplier reads its demand
//! per part and hour beside what the broadcast then brought, and the accuracy of the one
//! against the other.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use takt_core::Input;
use takt_core::forecast::{Plan, PlannedVehicle};
use takt_core::identity::Role;
use takt_core::suppliers::SupplierInput;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::body::JsonBody;
use super::commands::{Committed, submit};
use super::problem::{ApiError, CommandProblems, ReadProblems};

/// A plan of two weeks at a 30-second takt is some 40,000 vehicles: more than the API's usual
/// body limit, so this route has its own.
const PLAN_BYTES: usize = 8 * 1024 * 1024;

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    let plan = OpenApiRouter::new()
        .routes(routes!(post_plan))
        .layer(DefaultBodyLimit::max(PLAN_BYTES));
    OpenApiRouter::new()
        .routes(routes!(own_forecast))
        .merge(plan)
}

/// A line's planned production sequence, days ahead; it replaces the line's previous plan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    pub line: String,
    /// At most two weeks between the first and the last.
    pub vehicles: Vec<PlannedBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedBody {
    /// When the vehicle is planned at the line's broadcast point.
    pub planned_at: DateTime<Utc>,
    pub model: String,
    /// `KEY=VALUE` option codes, as they will be broadcast.
    #[serde(default)]
    pub options: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/forecast", tag = "supplier",
    summary = "The plant's planned sequence for a line (MES/ERP; supervisor)",
    description = "Each planned vehicle is resolved through the variant rules like a broadcast, \
        and its supplier-built parts counted in the hour they are needed at the install station \
        (planned time + the station's offset in takts). It replaces the line's previous plan; each \
        supplier hears the demand rows that changed as a `forecast` event. A model or option code \
        the plant does not know is refused (422) naming the vehicle.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    request_body = PlanBody,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn post_plan(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PlanBody>,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Supervisor, "posting the planned sequence")?;
    let plan = Plan {
        line: body.line,
        vehicles: body
            .vehicles
            .into_iter()
            .map(|v| PlannedVehicle {
                planned_at: v.planned_at,
                model: v.model,
                options: v.options,
            })
            .collect(),
    };
    submit(
        &state,
        &caller,
        &headers,
        Input::Suppliers(SupplierInput::Plan(plan)),
        None,
    )
    .await
}

/// The forecast and the broadcast's calls for one part in one hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct DemandView {
    pub line: String,
    pub family: String,
    pub part: String,
    /// The hour (its start, UTC) the parts are needed at the install station.
    pub hour: DateTime<Utc>,
    /// What the current plan says.
    pub forecast: u32,
    /// Calls the broadcast created for this part, due in this hour.
    pub actual: u32,
}

/// How well the forecast matched, per part over the period: `1 − Σ|forecast − actual| / Σ
/// actual` (weighted absolute percentage error, taken from 1), `null` without any actual.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccuracyView {
    pub family: String,
    pub part: String,
    pub forecast: u32,
    pub actual: u32,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastView {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub demand: Vec<DemandView>,
    pub accuracy: Vec<AccuracyView>,
}

#[derive(Debug, Deserialize)]
struct DemandRow {
    line: String,
    family: String,
    part: String,
    hour: DateTime<Utc>,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
struct CallRow {
    line: String,
    family: String,
    part: Option<String>,
    due_at: DateTime<Utc>,
    status: String,
}

#[utoipa::path(get, path = "/api/v1/supplier/forecast", tag = "supplier",
    summary = "The caller's demand by the plan, beside what the broadcast brought",
    description = "Over whole hours: `from` is rounded down and `to` up to the hour.",
    params(super::kpis::PeriodParams),
    responses((status = 200, body = ForecastView), ReadProblems),
    security(("bearer" = [])))]
async fn own_forecast(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<ForecastView>, ApiError> {
    let tenant = caller.tenant("reading a supplier's forecast")?;
    let (from, to) = super::kpis::period(&uri)?;
    // Whole hours both ends: an hour's forecast is compared with all of that hour's calls.
    let hour = TimeDelta::hours(1);
    let from = from.duration_trunc(hour).unwrap_or(from);
    let to = match to.duration_trunc(hour) {
        Ok(start) if start < to => start + hour,
        _ => to,
    };
    let demand: Vec<DemandRow> = state.store.tenant_demand(tenant, from, to).await?;
    let calls: Vec<CallRow> = state.store.tenant_calls_due(tenant, from, to).await?;
    type Key = (String, String, String, DateTime<Utc>);
    let mut rows: BTreeMap<Key, (u32, u32)> = BTreeMap::new();
    for d in demand {
        let quantity = u32::try_from(d.quantity).unwrap_or(0);
        rows.entry((d.line, d.family, d.part, d.hour))
            .or_default()
            .0 += quantity;
    }
    for c in calls.into_iter().filter(|c| c.status != "cancelled") {
        let Some(part) = c.part else { continue };
        let due = c.due_at.duration_trunc(hour).unwrap_or(c.due_at);
        rows.entry((c.line, c.family, part, due)).or_default().1 += 1;
    }
    let mut totals: BTreeMap<(String, String), (u32, u32, u32)> = BTreeMap::new();
    let demand = rows
        .into_iter()
        .filter(|(_, (forecast, actual))| forecast + actual > 0)
        .map(|((line, family, part, hour), (forecast, actual))| {
            let t = totals.entry((family.clone(), part.clone())).or_default();
            t.0 += forecast;
            t.1 += actual;
            t.2 += forecast.abs_diff(actual);
            DemandView {
                line,
                family,
                part,
                hour,
                forecast,
                actual,
            }
        })
        .collect();
    let accuracy = totals
        .into_iter()
        .map(|((family, part), (forecast, actual, error))| AccuracyView {
            family,
            part,
            forecast,
            actual,
            accuracy: (actual > 0).then(|| 1.0 - f64::from(error) / f64::from(actual)),
        })
        .collect();
    Ok(Json(ForecastView {
        from,
        to,
        demand,
        accuracy,
    }))
}
