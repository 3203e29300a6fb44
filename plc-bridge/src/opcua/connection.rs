//! One connection to a line server: open, use, and notice when it is gone.
//!
//! async-opcua can reconnect by itself, but after a reconnect 0.19 recreates the subscriptions
//! without ever publishing on them again, so data changes go silent. We therefore never let it
//! reconnect (`session_retry_limit(0)`): a lost connection ends this [`Link`], and the source
//! opens a fresh one — new session, namespace index looked up again (a restarted server may
//! renumber), new subscription, and a read of the layout's state so nothing missed meanwhile is
//! lost.

use std::sync::Arc;
use std::time::Duration;

use ::opcua::client::{
    Client, ClientBuilder, DataChangeCallback, IdentityToken, Session, SessionPollResult,
};
use ::opcua::crypto::SecurityPolicy;
use ::opcua::types::{
    AttributeId, DataValue, EndpointDescription, MessageSecurityMode, MonitoredItemCreateRequest,
    NodeId, NumericRange, ReadValueId, StatusCode, TimestampsToReturn, Variant, WriteValue,
};
use futures_util::StreamExt;
use takt_core::PointId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::config::{Security, SourceConfig};
use super::nodelay::NoDelay;

/// Why a connection could not be opened or was lost; `Display` names the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

impl LinkError {
    fn opcua(context: &str, e: &::opcua::types::Error) -> Self {
        Self(format!(
            "{context}: {}",
            explain(e.status(), &e.to_string())
        ))
    }
}

/// A status code with the words an engineer needs at 3 a.m.
fn explain(status: StatusCode, detail: &str) -> String {
    let hint = if status == StatusCode::BadUserAccessDenied
        || status == StatusCode::BadIdentityTokenRejected
        || status == StatusCode::BadIdentityTokenInvalid
    {
        " (user name or password refused)"
    } else if status == StatusCode::BadCertificateUntrusted
        || status == StatusCode::BadSecurityChecksFailed
    {
        " (certificate not trusted: copy the peer's certificate into the trusted folder)"
    } else if status == StatusCode::BadCertificateTimeInvalid {
        " (certificate expired or not yet valid)"
    } else if status == StatusCode::BadCertificateHostNameInvalid {
        " (certificate does not name the host in `endpoint`: reissue it for that address, or \
         see `insecure_skip_cert_checks` in docs/configuration.md)"
    } else {
        ""
    };
    format!("{detail}{hint}")
}

/// A data change seen on a monitored node.
pub(crate) type Change = (NodeId, DataValue);

/// An open session with its event loop running.
pub(crate) struct Link {
    pub(crate) session: Arc<Session>,
    /// Resolves when the connection is lost, with the cause.
    pub(crate) lost: oneshot::Receiver<LinkError>,
    pub(crate) request_timeout: Duration,
    event_loop: JoinHandle<()>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

/// The OPC UA client of one source (its certificate and trust lists).
pub(crate) fn client(cfg: &SourceConfig) -> Result<Client, LinkError> {
    let interval = cfg.publishing_interval();
    if cfg.insecure_skip_cert_checks && cfg.security != Security::None {
        tracing::warn!(
            source = %PointId::new(&cfg.line, &cfg.point),
            "insecure_skip_cert_checks: the server certificate's host name, application URI and \
             dates are not checked"
        );
    }
    ClientBuilder::new()
        .application_name("Takt controller")
        .application_uri("urn:takt:controller")
        .product_uri("urn:takt")
        .pki_dir(cfg.pki_dir.clone())
        .create_sample_keypair(true)
        .trust_server_certs(cfg.trust_server_certs)
        .verify_server_certs(!cfg.insecure_skip_cert_checks)
        .session_retry_limit(0)
        .request_timeout(Duration::from_millis(cfg.request_timeout_ms))
        // A dead peer is noticed within two keep-alives even when nothing else is sent.
        .keep_alive_interval(Duration::from_secs(1))
        .max_failed_keep_alive_count(2)
        .min_publish_interval(interval)
        .session_name(format!("takt {}/{}", cfg.line, cfg.point))
        .client()
        .map_err(|errors| LinkError(format!("OPC UA client: {}", errors.join("; "))))
}

fn policy(security: Security) -> (SecurityPolicy, MessageSecurityMode) {
    match security {
        Security::None => (SecurityPolicy::None, MessageSecurityMode::None),
        Security::Basic256sha256 => (
            SecurityPolicy::Basic256Sha256,
            MessageSecurityMode::SignAndEncrypt,
        ),
    }
}

/// The server's endpoint with our security, reached at the URL from the configuration.
async fn endpoint(client: &Client, cfg: &SourceConfig) -> Result<EndpointDescription, LinkError> {
    let (policy, mode) = policy(cfg.security);
    let offered = client
        .get_server_endpoints_from_url(cfg.endpoint.as_str())
        .await
        .map_err(|e| LinkError::opcua(&format!("no answer from {}", cfg.endpoint), &e))?;
    let mut chosen = offered
        .iter()
        .find(|e| e.security_policy_uri.as_ref() == policy.to_uri() && e.security_mode == mode)
        .cloned()
        .ok_or_else(|| {
            let list: Vec<String> = offered
                .iter()
                .map(|e| {
                    format!(
                        "{}/{:?}",
                        SecurityPolicy::from_uri(e.security_policy_uri.as_ref()).to_str(),
                        e.security_mode
                    )
                })
                .collect();
            LinkError(format!(
                "{} offers no {}/{mode:?} endpoint (it offers {})",
                cfg.endpoint,
                policy.to_str(),
                list.join(", ")
            ))
        })?;
    // Keep the address we were given: the server may advertise a name or port that only works
    // on its side of a gateway.
    chosen.endpoint_url = cfg.endpoint.as_str().into();
    Ok(chosen)
}

fn identity(cfg: &SourceConfig) -> Result<IdentityToken, LinkError> {
    match &cfg.user {
        None => Ok(IdentityToken::Anonymous),
        Some(user) => {
            let password = cfg.password().map_err(LinkError)?.unwrap_or_default();
            Ok(IdentityToken::UserName(user.clone(), password.into()))
        }
    }
}

/// Opens a session and waits until it is up or has failed.
pub(crate) async fn open(client: &mut Client, cfg: &SourceConfig) -> Result<Link, LinkError> {
    let endpoint = endpoint(client, cfg).await?;
    let (session, event_loop) = client
        .session_builder()
        .connect_to_endpoint_directly(endpoint)
        .map_err(|e| LinkError::opcua("session", &e))?
        .user_identity_token(identity(cfg)?)
        .with_connector(NoDelay)
        .build(client.certificate_store().clone())
        .map_err(|e| LinkError::opcua("session", &e))?;
    let (up_tx, up_rx) = oneshot::channel();
    let (lost_tx, lost) = oneshot::channel();
    let event_loop = tokio::spawn(watch_event_loop(event_loop, up_tx, lost_tx));
    let link = Link {
        session,
        lost,
        request_timeout: Duration::from_millis(cfg.request_timeout_ms),
        event_loop,
    };
    match up_rx.await {
        Ok(Ok(())) => Ok(link),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(LinkError("session event loop ended".into())),
    }
}

/// Polls the session's event loop: reports the first connect (or why it failed), then the loss
/// of the connection, and stops polling there so the library never reconnects on its own.
async fn watch_event_loop(
    event_loop: ::opcua::client::SessionEventLoop<super::nodelay::NoDelayConnector>,
    up: oneshot::Sender<Result<(), LinkError>>,
    lost: oneshot::Sender<LinkError>,
) {
    let mut up = Some(up);
    let stream = event_loop.enter();
    futures_util::pin_mut!(stream);
    let cause = loop {
        match stream.next().await {
            Some(Ok(SessionPollResult::Reconnected(_))) => {
                if let Some(up) = up.take() {
                    let _ = up.send(Ok(()));
                }
            }
            Some(Ok(SessionPollResult::ConnectionLost(status))) => {
                break LinkError(explain(status, &format!("connection lost: {status}")));
            }
            Some(Ok(SessionPollResult::ReconnectFailed(status))) => {
                break LinkError(explain(status, &format!("connect failed: {status}")));
            }
            Some(Ok(_)) => {}
            Some(Err(status)) => break LinkError(explain(status, &format!("{status}"))),
            None => break LinkError("session closed".into()),
        }
    };
    match up.take() {
        Some(up) => {
            let _ = up.send(Err(cause));
        }
        None => {
            let _ = lost.send(cause);
        }
    }
}

impl Link {
    /// Index of `uri` on this server.
    pub(crate) async fn namespace(&self, uri: &str) -> Result<u16, LinkError> {
        self.timed(self.session.get_namespace_index(uri))
            .await?
            .map_err(|e| LinkError::opcua(&format!("namespace {uri}"), &e))
    }

    /// Reads the values of `nodes`, in order.
    pub(crate) async fn read(&self, nodes: &[NodeId]) -> Result<Vec<DataValue>, LinkError> {
        let ids: Vec<ReadValueId> = nodes.iter().map(ReadValueId::from).collect();
        self.read_values(&ids).await
    }

    /// One Read of `ids` (index ranges included), values in order.
    pub(crate) async fn read_values(
        &self,
        ids: &[ReadValueId],
    ) -> Result<Vec<DataValue>, LinkError> {
        let values = self
            .timed(self.session.read(ids, TimestampsToReturn::Neither, 0.0))
            .await?
            .map_err(|e| LinkError::opcua("read", &e))?;
        if values.len() != ids.len() {
            return Err(LinkError(format!(
                "read of {} nodes answered {} values",
                ids.len(),
                values.len()
            )));
        }
        Ok(values)
    }

    /// Writes one value. The outer error is the link's; the inner one the server's refusal
    /// (wrong type, not writable), named with the node and status — kept apart because
    /// reconnecting mends the first and never the second.
    pub(crate) async fn write(
        &self,
        node: &NodeId,
        value: Variant,
    ) -> Result<Result<(), String>, LinkError> {
        let write = WriteValue {
            node_id: node.clone(),
            attribute_id: AttributeId::Value as u32,
            index_range: NumericRange::None,
            value: DataValue::value_only(value),
        };
        let results = self
            .timed(self.session.write(&[write]))
            .await?
            .map_err(|e| LinkError::opcua("write", &e))?;
        match results.first() {
            Some(status) if status.is_good() => Ok(Ok(())),
            Some(status) => Ok(Err(explain(
                *status,
                &format!("write to {node} refused: {status}"),
            ))),
            None => Err(LinkError(format!("write to {node}: no result"))),
        }
    }

    /// Subscribes to `nodes`; their changes (the first one is the current value) arrive on the
    /// returned channel.
    pub(crate) async fn subscribe(
        &self,
        nodes: &[NodeId],
        interval: Duration,
    ) -> Result<mpsc::UnboundedReceiver<Change>, LinkError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let callback = DataChangeCallback::new(move |value, item| {
            let _ = tx.send((item.item_to_monitor().node_id.clone(), value));
        });
        let id = self
            .timed(
                self.session
                    .create_subscription(interval, 60, 10, 0, 0, true, callback),
            )
            .await?
            .map_err(|e| LinkError::opcua("create subscription", &e))?;
        let items: Vec<MonitoredItemCreateRequest> = nodes
            .iter()
            .map(|node| {
                let mut item = MonitoredItemCreateRequest::from(node.clone());
                item.requested_parameters.sampling_interval = interval.as_secs_f64() * 1000.0;
                // Every change, in order: a counter stepping twice within one publish must not
                // fold into one notification.
                item.requested_parameters.queue_size = 100;
                item.requested_parameters.discard_oldest = false;
                item
            })
            .collect();
        let created = self
            .timed(
                self.session
                    .create_monitored_items(id, TimestampsToReturn::Neither, items),
            )
            .await?
            .map_err(|e| LinkError::opcua("create monitored items", &e))?;
        for (node, item) in nodes.iter().zip(&created) {
            let status = item.result.status_code;
            if !status.is_good() {
                return Err(LinkError(explain(
                    status,
                    &format!("cannot monitor {node}: {status}"),
                )));
            }
        }
        Ok(rx)
    }

    async fn timed<T>(&self, fut: impl Future<Output = T>) -> Result<T, LinkError> {
        tokio::time::timeout(self.request_timeout, fut)
            .await
            .map_err(|_| LinkError(format!("no answer within {:?}", self.request_timeout)))
    }

    /// Ends the session politely if the server is still there, and stops its event loop.
    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_millis(500), self.session.disconnect()).await;
        self.event_loop.abort();
    }
}
