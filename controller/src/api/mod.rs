//! The plant API, `/api/v1`: the way in for people and partners.
//!
//! Codemap: [`auth`] (tokens and who a request is from), [`problem`] (the one error type, as
//! problem+json), [`body`] (JSON bodies that name the field at fault), [`limits`] (body size,
//! requests in flight, time per request, rate per token), [`commands`] (operator commands,
//! journaled with their actor and answered after the commit), [`lists`] (the projections by
//! cursor), [`supplier`] (a supplier's own calls and acknowledgements, through the store's
//! tenant reads), [`tokens`] (admins' token management), [`views`] (what each row looks like).
//!
//! Invariants: every route but the document itself needs a token; every answer that is not a
//! success is problem+json; a request that is refused journals nothing, except a command the
//! core itself refuses (journaled as rejected, answered 422 with the entry's id); the OpenAPI
//! document is generated from these handlers, so it cannot drift from them.

pub mod auth;
pub mod body;
pub mod commands;
pub mod events;
pub mod forecast;
pub mod kpis;
pub mod limits;
pub mod lists;
pub mod problem;
pub mod supplier;
pub mod tokens;
pub mod views;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use takt_core::ConfigIndex;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use tokio::sync::{Semaphore, watch};

use crate::runtime::writer;
use crate::store::Store;
use limits::{LimitSettings, Limits};

/// What the handlers share.
#[derive(Debug)]
pub struct ApiState {
    pub writer: writer::Handle,
    pub store: Store,
    pub plant: Arc<ConfigIndex>,
    pub limits: Arc<Limits>,
    /// Open event streams, bounded by [`LimitSettings::streams`].
    pub streams: Arc<Semaphore>,
    /// Set when the controller stops: open streams end, so that HTTP can finish.
    pub closing: watch::Receiver<bool>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Takt plant API",
        description = "Line-side sequencing and yard automation. Every error is RFC 9457 \
            problem+json; times are ISO 8601 UTC; lists page by cursor (`after` = the `next` of \
            the page before); POSTs take an `Idempotency-Key`.",
    ),
    modifiers(&BearerAuth),
    // Named by every error answer; the derive of the answers' enums does not register it.
    components(schemas(problem::Problem)),
    tags(
        (name = "alarms", description = "ISA-18.2 alarms: acknowledge, shelve"),
        (name = "calls", description = "Sequence calls"),
        (name = "racks", description = "Racks filled in sequence and their moves"),
        (name = "stations", description = "Pick and put stations and their tasks"),
        (name = "vehicles", description = "Vehicles in sequence; resequence and cancel"),
        (name = "lines", description = "Line state and coverage"),
        (name = "tokens", description = "API tokens (admins)"),
        (name = "supplier", description = "A supplier's own calls and its acknowledgements (tenant tokens)"),
        (name = "events", description = "The event stream: SSE or WebSocket, resumable by event id"),
    )
)]
struct ApiDoc;

/// Declares the bearer scheme the handlers name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `takt token create` or POST /api/v1/tokens",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API's routes and its OpenAPI document.
fn parts() -> (Router<Arc<ApiState>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(commands::routes())
        .merge(lists::routes())
        .merge(tokens::routes())
        .merge(events::routes())
        .merge(supplier::routes())
        .merge(forecast::routes())
        .merge(kpis::routes())
        .split_for_parts()
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The API router with its limits, ready to merge into the controller's.
pub fn router(
    writer: writer::Handle,
    store: Store,
    plant: Arc<ConfigIndex>,
    settings: LimitSettings,
    closing: watch::Receiver<bool>,
) -> Router {
    let limits = Arc::new(Limits::new(settings));
    let (routes, document) = parts();
    let document = Arc::new(document);
    let state = Arc::new(ApiState {
        writer,
        store,
        plant,
        limits: limits.clone(),
        streams: Arc::new(Semaphore::new(settings.streams)),
        closing,
    });
    routes
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .fallback(|| async {
            problem::ApiError::NotFound {
                what: "route",
                id: String::new(),
            }
        })
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(limits, limits::guard))
        .layer(DefaultBodyLimit::max(settings.body_bytes))
}

#[cfg(test)]
mod tests {
    /// Every `$ref` in the document names a schema it defines: a dangling one makes clients
    /// and checkers (schemathesis) skip what it describes.
    #[test]
    fn every_reference_in_the_document_resolves() {
        let doc = serde_json::to_value(super::openapi()).expect("the document serialises");
        let mut refs = Vec::new();
        let mut stack = vec![&doc];
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                        refs.push(r.clone());
                    }
                    stack.extend(map.values());
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {r}"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} is not defined"
            );
        }
    }
}
