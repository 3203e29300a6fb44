//! Direct TCP to the line server with Nagle's algorithm off.
//!
//! async-opcua's own connector leaves Nagle on. The client keeps Publish requests in flight
//! that the server answers only when there is data, so a small Read sent right after a
//! notification (the FIFO catch-up) waits behind an unacknowledged Publish for the peer's
//! delayed ACK — up to 40 ms on Linux, four publishing intervals. Measured in
//! `tests/benches/broadcast_to_light.rs`; see BENCHMARKS.md.

use std::sync::Arc;

use ::opcua::client::ConnectionSource;
use ::opcua::client::transport::{
    Connector, RequestRecv, SecureChannelState, StreamConnection, StreamConnector, TcpTransport,
    TransportConfiguration,
};
use ::opcua::core::comms::tcp_codec::TcpCodec;
use ::opcua::core::comms::url::hostname_port_from_url;
use ::opcua::types::{DecodingOptions, EndpointDescription, Error, StatusCode};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

/// OPC UA's registered port, for URLs that leave it out.
const DEFAULT_PORT: u16 = 4840;

/// The session's connection source: like the library's direct one, with `TCP_NODELAY`. Public
/// so that other clients of a line server (the latency benchmark's probe) connect the same way.
#[derive(Debug, Clone, Copy)]
pub struct NoDelay;

impl ConnectionSource for NoDelay {
    type Builder = NoDelayConnector;

    fn get_connector(&self, endpoint: &EndpointDescription) -> Result<Self::Builder, Error> {
        Ok(NoDelayConnector {
            endpoint_url: endpoint.endpoint_url.as_ref().to_owned(),
        })
    }
}

/// Connects one transport to `endpoint_url`.
#[derive(Debug, Clone)]
pub struct NoDelayConnector {
    endpoint_url: String,
}

impl Connector for NoDelayConnector {
    type Transport = TcpTransport;

    async fn connect(
        &self,
        channel: Arc<SecureChannelState>,
        outgoing_recv: RequestRecv,
        config: TransportConfiguration,
    ) -> Result<TcpTransport, Error> {
        StreamConnector::new(connect, self.endpoint_url.clone())
            .connect(channel, outgoing_recv, config)
            .await
    }

    fn default_endpoint(&self) -> EndpointDescription {
        EndpointDescription::from(self.endpoint_url.as_str())
    }
}

async fn connect(
    endpoint_url: String,
    decoding: DecodingOptions,
) -> Result<StreamConnection<ReadHalf<TcpStream>, WriteHalf<TcpStream>>, Error> {
    let (host, port) = hostname_port_from_url(&endpoint_url, DEFAULT_PORT)
        .map_err(|status| Error::new(status, format!("endpoint URL `{endpoint_url}`")))?;
    let socket = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| {
            Error::new(
                StatusCode::BadCommunicationError,
                format!("connecting to {host}:{port}: {e}"),
            )
        })?;
    socket.set_nodelay(true).map_err(|e| {
        Error::new(
            StatusCode::BadCommunicationError,
            format!("setting TCP_NODELAY: {e}"),
        )
    })?;
    let (reader, writer) = tokio::io::split(socket);
    Ok(StreamConnection::new(
        FramedRead::new(reader, TcpCodec::new(decoding)),
        writer,
        endpoint_url,
    ))
}
