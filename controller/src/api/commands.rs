//! Operator commands: each one an input to the journal, given by the caller's token, answered
//! only after its commit with the journal id.
//!
//! Checked before anything is submitted, so that a bad request journals nothing: the role, the
//! body, the ids it names (404 when the plant has no such alarm, call, rack, family, station or
//! line). What only the core can judge (a call already picked, a rack not closed) is journaled
//! as rejected and answered 422 with the entry's id.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use takt_core::identity::Role;
use takt_core::model::{CallId, RackStatus};
use takt_core::{Input, Outcome};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::body::JsonBody;
use super::problem::{ApiError, CommandProblems};
use super::views::{AlarmView, CallView, RackView};
use crate::store::{Origin, Projection};
use takt_core::{AlarmInput, PickingInput, SequencingInput};

/// The header that makes a retried POST answer the same and journal once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const KEY_MAX: usize = 255;

/// A command's answer: the journal entry that holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Committed {
    pub journal_id: i64,
    /// `applied`, or `ignored` when there was nothing to do (an alarm already acknowledged).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Answered from the entry an earlier request with the same `Idempotency-Key` made.
    pub repeat: bool,
}

/// An override's body: why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why the override (journaled with it); not empty.
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShelveBody {
    /// Until when the alarm is shelved (ISO 8601, in the future).
    pub until: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// The part number to deliver for this call.
    pub part: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResequenceBody {
    /// The broadcast point the vehicle re-enters at.
    pub point: String,
    pub vin: String,
    /// The sequence number it re-enters under.
    pub seq: u32,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    pub vin: String,
    pub reason: String,
}

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(acknowledge))
        .routes(routes!(shelve))
        .routes(routes!(unshelve))
        .routes(routes!(resolve_call))
        .routes(routes!(close_rack))
        .routes(routes!(rack_shipped))
        .routes(routes!(rack_delivered))
        .routes(routes!(reset_station))
        .routes(routes!(resequence))
        .routes(routes!(cancel_vehicle))
}

/// The caller's `Idempotency-Key`, if it sent a usable one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let invalid = || ApiError::Invalid {
        field: "Idempotency-Key".to_owned(),
        detail: format!("1 to {KEY_MAX} visible ASCII characters"),
    };
    let key = value.to_str().map_err(|_| invalid())?;
    if key.is_empty() || key.len() > KEY_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

/// An override's reason: required, not blank.
fn reason(text: &str) -> Result<String, ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ApiError::Invalid {
            field: "reason".to_owned(),
            detail: "an override needs a reason".to_owned(),
        });
    }
    Ok(trimmed.to_owned())
}

/// Journal `input` as given by `caller` and answer once it is durable.
pub(super) async fn submit(
    state: &ApiState,
    caller: &Caller,
    headers: &HeaderMap,
    input: Input,
    note: Option<String>,
) -> Result<Json<Committed>, ApiError> {
    let origin = Origin {
        actor: Some(caller.actor()),
        note,
        idempotency_key: idempotency_key(headers)?,
    };
    let applied = state.writer.submit_from(input, origin).await?;
    let (outcome, reason) = match applied.outcome {
        Outcome::Applied => ("applied", None),
        Outcome::Ignored(reason) => ("ignored", Some(reason)),
        Outcome::Rejected(reason) => {
            let field = takt_core::io::rejected_field(&reason).map(str::to_owned);
            return Err(ApiError::Refused {
                reason,
                journal_id: applied.id,
                field,
            });
        }
    };
    Ok(Json(Committed {
        journal_id: applied.id,
        outcome: outcome.to_owned(),
        reason,
        repeat: applied.repeat,
    }))
}

/// 404 unless the projection has a row with this key.
async fn must_exist<T: serde::de::DeserializeOwned>(
    state: &ApiState,
    projection: Projection,
    what: &'static str,
    id: &str,
) -> Result<T, ApiError> {
    let not_found = || ApiError::NotFound {
        what,
        id: id.to_owned(),
    };
    match state.store.plant_row::<T>(projection, id).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) | Err(crate::store::StoreError::BadCursor { .. }) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/alarms/{id}/acknowledge", tag = "alarms",
    summary = "Acknowledge an alarm",
    params(("id" = String, Path, description = "The alarm id (`kind:subject`), URL-encoded"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key answers the same")),
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn acknowledge(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Operator, "acknowledging alarms")?;
    must_exist::<AlarmView>(&state, Projection::Alarms, "alarm", &id).await?;
    submit(
        &state,
        &caller,
        &headers,
        Input::Alarms(AlarmInput::Acknowledge { alarm: id }),
        None,
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/alarms/{id}/shelve", tag = "alarms",
    summary = "Shelve an alarm until a time (an override: needs a reason)",
    params(("id" = String, Path, description = "The alarm id, URL-encoded"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    request_body = ShelveBody,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn shelve(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ShelveBody>,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Supervisor, "shelving alarms")?;
    let note = reason(&body.reason)?;
    if body.until <= Utc::now() {
        return Err(ApiError::Invalid {
            field: "until".to_owned(),
            detail: "must be in the future".to_owned(),
        });
    }
    must_exist::<AlarmView>(&state, Projection::Alarms, "alarm", &id).await?;
    let input = Input::Alarms(AlarmInput::Shelve {
        alarm: id,
        until: Some(body.until),
    });
    submit(&state, &caller, &headers, input, Some(note)).await
}

#[utoipa::path(post, path = "/api/v1/alarms/{id}/unshelve", tag = "alarms",
    summary = "Unshelve an alarm",
    params(("id" = String, Path, description = "The alarm id, URL-encoded"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    request_body = Reason,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn unshelve(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Reason>,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Supervisor, "unshelving alarms")?;
    let note = reason(&body.reason)?;
    must_exist::<AlarmView>(&state, Projection::Alarms, "alarm", &id).await?;
    let input = Input::Alarms(AlarmInput::Shelve {
        alarm: id,
        until: None,
    });
    submit(&state, &caller, &headers, input, Some(note)).await
}

#[utoipa::path(post, path = "/api/v1/calls/{id}/resolve", tag = "calls",
    summary = "Name the part for a call (an override: needs a reason)",
    params(("id" = i64, Path, description = "The call id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    request_body = ResolveBody,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn resolve_call(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ResolveBody>,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Supervisor, "resolving calls")?;
    let note = reason(&body.reason)?;
    let part = body.part.trim();
    if part.is_empty() {
        return Err(ApiError::Invalid {
            field: "part".to_owned(),
            detail: "a part number is required".to_owned(),
        });
    }
    let call: CallView = must_exist(&state, Projection::Calls, "call", &id).await?;
    let call = CallId(u64::try_from(call.id).unwrap_or_default());
    let input = Input::Sequencing(SequencingInput::ResolveCall {
        call,
        part: part.to_owned(),
    });
    submit(&state, &caller, &headers, input, Some(note)).await
}

#[utoipa::path(post, path = "/api/v1/families/{family}/close-rack", tag = "racks",
    summary = "Close a family's open rack before it is full",
    params(("family" = String, Path, description = "The part family, as configured"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn close_rack(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(family): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Operator, "closing racks")?;
    if state.plant.family(&family).is_none() {
        return Err(ApiError::NotFound {
            what: "family",
            id: family,
        });
    }
    submit(
        &state,
        &caller,
        &headers,
        Input::Picking(PickingInput::CloseRack { family }),
        None,
    )
    .await
}

/// A rack reported moved by the yard or the line.
async fn rack_moved(
    state: &ApiState,
    caller: &Caller,
    headers: &HeaderMap,
    rack: String,
    to: RackStatus,
) -> Result<Json<Committed>, ApiError> {
    if !(caller.scope.has_role(Role::Yard) || caller.scope.has_role(Role::Operator)) {
        return Err(ApiError::Forbidden("reporting racks moved"));
    }
    must_exist::<RackView>(state, Projection::Racks, "rack", &rack).await?;
    submit(
        state,
        caller,
        headers,
        Input::Picking(PickingInput::RackMoved { rack, to }),
        None,
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/racks/{id}/shipped", tag = "racks",
    summary = "A closed rack left for the line",
    params(("id" = String, Path, description = "The rack id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn rack_shipped(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Committed>, ApiError> {
    rack_moved(&state, &caller, &headers, id, RackStatus::Shipped).await
}

#[utoipa::path(post, path = "/api/v1/racks/{id}/delivered", tag = "racks",
    summary = "A rack arrived at the line",
    params(("id" = String, Path, description = "The rack id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn rack_delivered(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Committed>, ApiError> {
    rack_moved(&state, &caller, &headers, id, RackStatus::Delivered).await
}

#[utoipa::path(post, path = "/api/v1/stations/{station}/reset", tag = "stations",
    summary = "Clear a station's error lights and light its current task again",
    params(("station" = String, Path, description = "The station, as configured"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn reset_station(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(station): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Operator, "resetting stations")?;
    if state.plant.station(&station).is_none() {
        return Err(ApiError::NotFound {
            what: "station",
            id: station,
        });
    }
    submit(
        &state,
        &caller,
        &headers,
        Input::Picking(PickingInput::ResetStation { station }),
        None,
    )
    .await
}

/// 404 unless `line` is configured (and `point`, when given, is one of its broadcast points).
fn known_line(state: &ApiState, line: &str, point: Option<&str>) -> Result<(), ApiError> {
    let Some(config) = state.plant.line(line) else {
        return Err(ApiError::NotFound {
            what: "line",
            id: line.to_owned(),
        });
    };
    if let Some(point) = point
        && !config.broadcast_points.iter().any(|p| p.id == point)
    {
        return Err(ApiError::Invalid {
            field: "point".to_owned(),
            detail: format!("line {line} has no broadcast point {point:?}"),
        });
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/lines/{line}/resequence", tag = "vehicles",
    summary = "Put a vehicle held for repair back into the sequence (an override)",
    params(("line" = String, Path, description = "The line, as configured"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    request_body = ResequenceBody,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn resequence(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(line): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ResequenceBody>,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Supervisor, "resequencing vehicles")?;
    let note = reason(&body.reason)?;
    known_line(&state, &line, Some(&body.point))?;
    let input = Input::Sequencing(SequencingInput::Resequence {
        line,
        point: body.point,
        vin: body.vin,
        seq: body.seq,
    });
    submit(&state, &caller, &headers, input, Some(note)).await
}

#[utoipa::path(post, path = "/api/v1/lines/{line}/cancel", tag = "vehicles",
    summary = "Take a vehicle out of the sequence for good (an override)",
    params(("line" = String, Path, description = "The line, as configured"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    request_body = CancelBody,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn cancel_vehicle(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(line): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CancelBody>,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Supervisor, "cancelling vehicles")?;
    let note = reason(&body.reason)?;
    known_line(&state, &line, None)?;
    let input = Input::Sequencing(SequencingInput::Cancel {
        line,
        vin: body.vin,
    });
    submit(&state, &caller, &headers, input, Some(note)).await
}
