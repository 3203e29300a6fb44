//! Shared KPIs: the same numbers for the plant and for each supplier, computed by one function
//! from the calls as the journal recorded them (`docs/kpis.md` defines each).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use takt_core::forecast::MAX_PLAN_DAYS;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::problem::{ApiError, ItemReadProblems, ReadProblems};

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(own_kpis))
        .routes(routes!(supplier_kpis))
}

/// The period: calls due at their install station in `[from, to)`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    pub from: DateTime<Utc>,
    /// Not included; at most two weeks after `from`.
    pub to: DateTime<Utc>,
}

/// One family's KPIs over the period (see `docs/kpis.md`).
#[derive(Debug, Serialize, ToSchema)]
pub struct FamilyKpis {
    pub family: String,
    /// Calls due in the period, cancelled ones left out.
    pub calls: u32,
    /// Of them, delivered to the line by their due time (on time, in full: the part itself).
    pub delivered_on_time: u32,
    /// `delivered_on_time / calls`, 0 to 1; `null` without calls.
    pub otif: Option<f64>,
    /// Reached their install station without their part.
    pub missed: u32,
    /// Seconds from a call's creation to its supplier's receipt: median and 95th percentile.
    pub acknowledgement_p50_s: Option<f64>,
    pub acknowledgement_p95_s: Option<f64>,
    /// Minutes from a call's creation to its part at the line: median, 95th percentile, and
    /// the lead-time variability (P95 − P50).
    pub lead_time_p50_min: Option<f64>,
    pub lead_time_p95_min: Option<f64>,
    pub lead_time_variability_min: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KpiView {
    pub supplier: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub families: Vec<FamilyKpis>,
}

#[derive(Debug, Deserialize)]
struct CallRow {
    family: String,
    status: String,
    due_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    received_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
}

/// The period a read names, checked: `to` after `from`, at most two weeks later.
pub(super) fn period(uri: &Uri) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let period = Query::<PeriodParams>::try_from_uri(uri).map_err(|e| ApiError::Invalid {
        field: "query".to_owned(),
        detail: e.body_text(),
    })?;
    let (from, to) = (period.from, period.to);
    if to <= from || to - from > TimeDelta::days(MAX_PLAN_DAYS) {
        return Err(ApiError::Invalid {
            field: "to".to_owned(),
            detail: format!("after `from`, at most {MAX_PLAN_DAYS} days later"),
        });
    }
    Ok((from, to))
}

/// Nearest-rank percentile `p` (0–100) of `values`, sorted here.
fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values.get(rank.clamp(1, values.len()) - 1).copied()
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// The KPIs of `supplier` over `[from, to)`, for whoever asks: the one computation.
async fn kpis(state: &ApiState, supplier: &str, uri: &Uri) -> Result<Json<KpiView>, ApiError> {
    let (from, to) = period(uri)?;
    let calls: Vec<CallRow> = state.store.tenant_calls_due(supplier, from, to).await?;
    let mut by_family: BTreeMap<String, Vec<CallRow>> = BTreeMap::new();
    for call in calls.into_iter().filter(|c| c.status != "cancelled") {
        by_family.entry(call.family.clone()).or_default().push(call);
    }
    let families = by_family
        .into_iter()
        .map(|(family, calls)| {
            let on_time = calls
                .iter()
                .filter(|c| c.delivered_at.is_some_and(|d| d <= c.due_at))
                .count() as u32;
            let mut acks: Vec<f64> = calls
                .iter()
                .filter_map(|c| c.received_at.map(|r| seconds(r - c.created_at)))
                .collect();
            let mut leads: Vec<f64> = calls
                .iter()
                .filter_map(|c| c.delivered_at.map(|d| seconds(d - c.created_at) / 60.0))
                .collect();
            let (p50, p95) = (percentile(&mut leads, 50.0), percentile(&mut leads, 95.0));
            let n = calls.len() as u32;
            FamilyKpis {
                family,
                calls: n,
                delivered_on_time: on_time,
                otif: (n > 0).then(|| f64::from(on_time) / f64::from(n)),
                missed: calls.iter().filter(|c| c.status == "missed").count() as u32,
                acknowledgement_p50_s: percentile(&mut acks, 50.0),
                acknowledgement_p95_s: percentile(&mut acks, 95.0),
                lead_time_p50_min: p50,
                lead_time_p95_min: p95,
                lead_time_variability_min: p50.zip(p95).map(|(a, b)| b - a),
            }
        })
        .collect();
    Ok(Json(KpiView {
        supplier: supplier.to_owned(),
        from,
        to,
        families,
    }))
}

#[utoipa::path(get, path = "/api/v1/supplier/kpis", tag = "supplier",
    summary = "The caller's KPIs over a period, per family (the numbers the plant sees)",
    params(PeriodParams),
    responses((status = 200, body = KpiView), ReadProblems),
    security(("bearer" = [])))]
async fn own_kpis(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<KpiView>, ApiError> {
    let tenant = caller.tenant("reading a supplier's KPIs")?;
    kpis(&state, tenant, &uri).await
}

#[utoipa::path(get, path = "/api/v1/suppliers/{id}/kpis", tag = "supplier",
    summary = "A supplier's KPIs over a period, per family (plant users)",
    params(("id" = String, Path, description = "The supplier's tenant id"), PeriodParams),
    responses((status = 200, body = KpiView), ItemReadProblems),
    security(("bearer" = [])))]
async fn supplier_kpis(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<KpiView>, ApiError> {
    super::lists::plant_user(&caller)?;
    if !state.plant.config.suppliers.iter().any(|s| s.id == id) {
        return Err(ApiError::NotFound {
            what: "supplier",
            id,
        });
    }
    kpis(&state, &id, &uri).await
}
