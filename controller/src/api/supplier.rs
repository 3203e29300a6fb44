//! The supplier's side: its own sequence calls, and its acknowledgements of them.
//!
//! Every route here is for a tenant token and reads through the store's tenant functions, so a
//! supplier reaches its own calls and nothing else: another's call answers 404 exactly as a call
//! that does not exist. Plant tokens get 403 and read the plant's lists instead.

use std::sync::Arc;

use axum::Json;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use takt_core::Input;
use takt_core::identity::Role;
use takt_core::model::CallId;
use takt_core::suppliers::{AckStage, Asn, AsnRack, AsnSlot, SkippedCall, SupplierInput};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::body::JsonBody;
use super::commands::{Committed, submit};
use super::events::EventView;
use super::lists::{PageParams, paged};
use super::problem::{ApiError, CommandProblems, ItemReadProblems, ReadProblems};
use super::views::{CallView, Page, ShipmentView};
use crate::deljit::{CallEvent, interchange};
use crate::store::{EventReader, Projection, TenantProjection};

pub(super) fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(own_calls))
        .routes(routes!(own_call))
        .routes(routes!(acknowledge_call))
        .routes(routes!(own_shipments, send_asn))
        .routes(routes!(own_shipment))
        .routes(routes!(update_eta))
        .routes(routes!(shipment_arrived))
        .routes(routes!(deljit))
}

/// Where a DELJIT read starts and how many events it reads.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeljitParams {
    /// The `Takt-Last-Event-Id` of the read before; `0` (the default) for everything kept.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Events to read, 1 to 1000 (default 500); only the call events among them are messages.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The header that tells a DELJIT reader where to resume.
pub const LAST_EVENT_HEADER: &str = "takt-last-event-id";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EtaBody {
    /// The new expected arrival (ISO 8601, not in the past).
    pub eta: DateTime<Utc>,
}

/// An advance shipping notice: closed racks of the caller's, slot by slot, on one trailer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AsnBody {
    /// The supplier's own ASN number, 1 to 35 characters.
    pub number: String,
    /// A carrier of the plant's configuration.
    pub carrier: String,
    /// Trailer number or plate.
    pub trailer: String,
    /// Expected arrival at the plant (ISO 8601, not in the past).
    pub eta: DateTime<Utc>,
    /// The racks loaded, each listing every slot it carries.
    pub racks: Vec<AsnRackBody>,
    /// Calls of these racks shipped without their part, each with why.
    #[serde(default)]
    pub skipped: Vec<SkippedBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AsnRackBody {
    /// The plant's rack id, as the calls name it.
    pub rack: String,
    pub slots: Vec<AsnSlotBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AsnSlotBody {
    /// 1-based.
    pub slot: u32,
    /// The call whose part is in it.
    pub call: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkippedBody {
    pub call: u64,
    pub reason: String,
}

impl AsnBody {
    fn into_asn(self, tenant: &str) -> Asn {
        Asn {
            tenant: tenant.to_owned(),
            number: self.number,
            carrier: self.carrier,
            trailer: self.trailer,
            eta: self.eta,
            racks: self
                .racks
                .into_iter()
                .map(|r| AsnRack {
                    rack: r.rack,
                    slots: r
                        .slots
                        .into_iter()
                        .map(|s| AsnSlot {
                            slot: s.slot,
                            call: CallId(s.call),
                        })
                        .collect(),
                })
                .collect(),
            skipped: self
                .skipped
                .into_iter()
                .map(|s| SkippedCall {
                    call: CallId(s.call),
                    reason: s.reason,
                })
                .collect(),
        }
    }
}

/// How far the supplier has got with a call.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The call reached the supplier's system.
    Received,
    /// Its part is built (which implies received).
    Built,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeBody {
    pub stage: Stage,
}

/// The caller's own row `id` of `projection`, or 404 whether it is another's or nobody's.
async fn own<T: serde::de::DeserializeOwned>(
    state: &ApiState,
    projection: TenantProjection,
    what: &'static str,
    tenant: &str,
    id: &str,
) -> Result<T, ApiError> {
    let not_found = || ApiError::NotFound {
        what,
        id: id.to_owned(),
    };
    match state.store.tenant_row::<T>(projection, tenant, id).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) | Err(crate::store::StoreError::BadCursor { .. }) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/supplier/calls", tag = "supplier",
    summary = "The caller's own sequence calls, by id",
    description = "For a supplier's token: the calls of the families it builds, live and finished, \
        with its acknowledgements. Follow new ones on `/api/v1/events`.",
    params(PageParams),
    responses((status = 200, body = Page<CallView>), ReadProblems),
    security(("bearer" = [])))]
async fn own_calls(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<CallView>>, ApiError> {
    let tenant = caller.tenant("reading a supplier's calls")?;
    let query = PageParams::of(&uri)?;
    let items: Vec<CallView> = state
        .store
        .tenant_page(TenantProjection::Calls, tenant, &query)
        .await?;
    Ok(paged(items, &query, |c: &CallView| c.id.to_string()))
}

#[utoipa::path(get, path = "/api/v1/supplier/calls/{id}", tag = "supplier",
    summary = "One of the caller's own calls",
    params(("id" = i64, Path, description = "The call id")),
    responses((status = 200, body = CallView), ItemReadProblems),
    security(("bearer" = [])))]
async fn own_call(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CallView>, ApiError> {
    let tenant = caller.tenant("reading a supplier's calls")?;
    own(&state, TenantProjection::Calls, "call", tenant, &id)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/v1/supplier/calls/{id}/acknowledge", tag = "supplier",
    summary = "Acknowledge one of the caller's calls: received, or built",
    description = "Journaled with the caller, answered after the commit. Acknowledging a stage \
        again answers `ignored`; a call no longer in sequence is refused (422).",
    params(("id" = i64, Path, description = "The call id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key answers the same")),
    request_body = AcknowledgeBody,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn acknowledge_call(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AcknowledgeBody>,
) -> Result<Json<Committed>, ApiError> {
    let tenant = caller.tenant("acknowledging a supplier's calls")?;
    let call: CallView = own(&state, TenantProjection::Calls, "call", tenant, &id).await?;
    let stage = match body.stage {
        Stage::Received => AckStage::Received,
        Stage::Built => AckStage::Built,
    };
    let input = Input::Suppliers(SupplierInput::AcknowledgeCall {
        tenant: tenant.to_owned(),
        call: CallId(u64::try_from(call.id).unwrap_or_default()),
        stage,
    });
    submit(&state, &caller, &headers, input, None).await
}

#[utoipa::path(post, path = "/api/v1/supplier/shipments", tag = "supplier",
    summary = "Send an ASN: closed racks, slot by slot, on their way",
    description = "Checked whole against the racks the sequence composed: the caller's racks, \
        closed, in rack order per family, every slot holding the call the plant put there, none \
        left out unless listed under `skipped` with a reason. A wrong ASN is refused (422) naming \
        the field — `racks[1].slots[2].call` — and ships nothing; the refusal is journaled. \
        Accepted, its racks and calls are `shipped`.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key answers the same")),
    request_body = AsnBody,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn send_asn(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AsnBody>,
) -> Result<Json<Committed>, ApiError> {
    let tenant = caller.tenant("sending a supplier's ASN")?;
    let input = Input::Suppliers(SupplierInput::Ship(body.into_asn(tenant)));
    submit(&state, &caller, &headers, input, None).await
}

#[utoipa::path(get, path = "/api/v1/supplier/shipments", tag = "supplier",
    summary = "The caller's own shipments, by id",
    params(PageParams),
    responses((status = 200, body = Page<ShipmentView>), ReadProblems),
    security(("bearer" = [])))]
async fn own_shipments(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Page<ShipmentView>>, ApiError> {
    let tenant = caller.tenant("reading a supplier's shipments")?;
    let query = PageParams::of(&uri)?;
    let items: Vec<ShipmentView> = state
        .store
        .tenant_page(TenantProjection::Shipments, tenant, &query)
        .await?;
    Ok(paged(items, &query, |s: &ShipmentView| s.id.to_string()))
}

#[utoipa::path(get, path = "/api/v1/supplier/shipments/{id}", tag = "supplier",
    summary = "One of the caller's own shipments",
    params(("id" = i64, Path, description = "The shipment id")),
    responses((status = 200, body = ShipmentView), ItemReadProblems),
    security(("bearer" = [])))]
async fn own_shipment(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ShipmentView>, ApiError> {
    let tenant = caller.tenant("reading a supplier's shipments")?;
    own(&state, TenantProjection::Shipments, "shipment", tenant, &id)
        .await
        .map(Json)
}

/// `id` as a shipment id, or 404 as for any id the caller has no shipment under.
fn shipment_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound {
        what: "shipment",
        id: id.to_owned(),
    })
}

#[utoipa::path(post, path = "/api/v1/supplier/shipments/{id}/eta", tag = "supplier",
    summary = "A new ETA for one of the caller's shipments in transit",
    description = "An ETA after the time the line needs the shipment's first part raises \
        `shipment_late` for the plant and sets `at_risk` on the shipment the supplier reads, \
        in the same commit; an ETA in time clears both.",
    params(("id" = i64, Path, description = "The shipment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key answers the same")),
    request_body = EtaBody,
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn update_eta(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<EtaBody>,
) -> Result<Json<Committed>, ApiError> {
    let tenant = caller.tenant("updating a supplier's ETA")?;
    let shipment = shipment_id(&id)?;
    let _: ShipmentView = own(&state, TenantProjection::Shipments, "shipment", tenant, &id).await?;
    let input = Input::Suppliers(SupplierInput::UpdateEta {
        tenant: tenant.to_owned(),
        shipment,
        eta: body.eta,
    });
    submit(&state, &caller, &headers, input, None).await
}

#[utoipa::path(post, path = "/api/v1/shipments/{id}/arrived", tag = "supplier",
    summary = "A shipment's trailer reached the plant (yard)",
    params(("id" = i64, Path, description = "The shipment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = Committed), CommandProblems),
    security(("bearer" = [])))]
async fn shipment_arrived(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Committed>, ApiError> {
    caller.require(Role::Yard, "reporting a shipment arrived")?;
    let shipment = shipment_id(&id)?;
    if state
        .store
        .plant_row::<ShipmentView>(Projection::Shipments, &id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound {
            what: "shipment",
            id,
        });
    }
    let input = Input::Suppliers(SupplierInput::ShipmentArrived { shipment });
    submit(&state, &caller, &headers, input, None).await
}

#[utoipa::path(get, path = "/api/v1/supplier/deljit", tag = "supplier",
    summary = "The caller's calls as EDIFACT DELJIT (D.96A), by cursor",
    description = "One interchange (UNB…UNZ) with one DELJIT message per call event after \
        `after`: function 9 for a call created, 5 changed, 1 cancelled; SEQ with the sequence \
        number and 1159 = the broadcast (1 or 2) it came from, GIR with the VIN (VV), LIN with \
        the part (IN). Resume with `after` = the `Takt-Last-Event-Id` answered; 204 when there \
        is nothing after the cursor.",
    params(DeljitParams),
    responses(
        (status = 200, description = "A DELJIT interchange", content_type = "application/EDIFACT",
            body = String,
            headers(("Takt-Last-Event-Id" = i64, description = "The last event read: the next `after`"))),
        (status = 204, description = "Nothing after the cursor",
            headers(("Takt-Last-Event-Id" = i64, description = "The cursor, unchanged"))),
        ItemReadProblems),
    security(("bearer" = [])))]
async fn deljit(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant("reading a supplier's DELJIT")?;
    let params = Query::<DeljitParams>::try_from_uri(&uri).map_err(|e| ApiError::Invalid {
        field: "query".to_owned(),
        detail: e.body_text(),
    })?;
    let after = params.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::Invalid {
            field: "after".to_owned(),
            detail: "an event id (a number, 0 or more)".to_owned(),
        });
    }
    let limit = params.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit".to_owned(),
            detail: "1 to 1000".to_owned(),
        });
    }
    // Without a cursor the read starts at whatever is kept; a cursor the outbox has pruned past
    // is answered 410, as for the streams.
    if params.after.is_some() {
        super::events::still_kept(&state.store, after).await?;
    }
    let read: Vec<EventView> = state
        .store
        .events_after(&EventReader::Tenant(tenant.to_owned()), after, limit)
        .await?;
    let Some(last) = read.last().map(|e| e.id) else {
        return Ok((
            StatusCode::NO_CONTENT,
            [(LAST_EVENT_HEADER, after.to_string())],
        )
            .into_response());
    };
    let events: Vec<CallEvent> = read
        .into_iter()
        .filter_map(|e| {
            let event = serde_json::from_value(e.payload).ok()?;
            Some(CallEvent {
                id: e.id,
                at: e.at,
                event,
            })
        })
        .collect();
    let reference = format!("T{last}");
    let made = interchange(&state.plant, tenant, &reference, Utc::now(), &events)
        .map_err(|e| ApiError::Internal(format!("writing the DELJIT interchange: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/EDIFACT".to_owned()),
            (HeaderName::from_static(LAST_EVENT_HEADER), last.to_string()),
        ],
        made.bytes,
    )
        .into_response())
}
