//! A typed client of the control API, over TCP or a unix socket: the `weir`
//! commands use it, and so can tests and tools.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

use super::address::ControlAddress;
use super::auth::{AttachToken, BearerToken};
use super::events::Event;
use super::pb;
use super::pb::control_client::ControlClient as RawClient;
use super::plane::{ApplyConfig, LoadFilter, ModuleSource};
use super::types::{ApplySummary, FilterInfo, Status};

/// How long connecting may take before the API counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response accepted (a status with many filters and endpoints).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why a control call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made.
    #[error("cannot reach the control API at {address}: {reason}")]
    Unreachable {
        /// Where we tried.
        address: ControlAddress,
        /// Why it failed, with its causes.
        reason: String,
    },
    /// The call was answered with an error status.
    #[error("{}", describe(.0))]
    Status(tonic::Status),
}

fn describe(status: &tonic::Status) -> String {
    use tonic::Code;
    let what = match status.code() {
        Code::InvalidArgument => "invalid request",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::FailedPrecondition => "refused",
        Code::ResourceExhausted => "too large",
        Code::Unauthenticated => "unauthenticated",
        Code::PermissionDenied => "permission denied",
        Code::Unavailable => "control API unavailable",
        Code::DeadlineExceeded => "timed out",
        Code::Unimplemented => "not supported by this proxy",
        _ => "control API error",
    };
    format!("{what}: {}", status.message())
}

/// `err` and its causes, `: `-separated.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A connected control API client.
#[derive(Debug, Clone)]
pub struct ControlClient {
    inner: RawClient<InterceptedService<Channel, AttachToken>>,
    channel: Channel,
}

impl ControlClient {
    /// Connects to `address`, sending `token` (if any) with every call.
    pub async fn connect(
        address: &ControlAddress,
        token: Option<BearerToken>,
    ) -> Result<Self, ClientError> {
        let unreachable = |err: tonic::transport::Error| ClientError::Unreachable {
            address: address.clone(),
            reason: error_chain(&err),
        };
        let channel = match address {
            ControlAddress::Tcp(addr) => Endpoint::from_shared(format!("http://{addr}"))
                .map_err(unreachable)?
                .connect_timeout(CONNECT_TIMEOUT)
                .connect()
                .await
                .map_err(unreachable)?,
            ControlAddress::Unix(path) => {
                // The URI is required but unused: the connector dials the socket.
                Endpoint::from_static("http://localhost")
                    .connect_timeout(CONNECT_TIMEOUT)
                    .connect_with_connector(UnixConnector(path.clone()))
                    .await
                    .map_err(unreachable)?
            }
        };
        let inner = RawClient::with_interceptor(channel.clone(), AttachToken::new(token))
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
            .max_encoding_message_size(usize::MAX);
        Ok(Self { inner, channel })
    }

    /// The underlying channel, e.g. for the health or reflection clients.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The filters of the default chain, in chain order.
    pub async fn list_filters(&mut self) -> Result<Vec<FilterInfo>, ClientError> {
        let response = self.inner.list_filters(pb::ListFiltersRequest {}).await;
        let response = response.map_err(ClientError::Status)?.into_inner();
        Ok(response.filters.into_iter().map(Into::into).collect())
    }

    /// Loads a filter.
    pub async fn load_filter(&mut self, req: LoadFilter) -> Result<FilterInfo, ClientError> {
        let response = self
            .inner
            .load_filter(pb::LoadFilterRequest::from(req))
            .await;
        filter_of(response.map_err(ClientError::Status)?.into_inner().filter)
    }

    /// Reloads a filter, from `source` or (`None`) its current source.
    pub async fn reload_filter(
        &mut self,
        name: String,
        source: Option<ModuleSource>,
    ) -> Result<FilterInfo, ClientError> {
        let request = pb::ReloadFilterRequest {
            name,
            module: source.map(Into::into),
        };
        let response = self.inner.reload_filter(request).await;
        filter_of(response.map_err(ClientError::Status)?.into_inner().filter)
    }

    /// Unloads a filter.
    pub async fn unload_filter(&mut self, name: String) -> Result<(), ClientError> {
        let response = self
            .inner
            .unload_filter(pb::UnloadFilterRequest { name })
            .await;
        response.map_err(ClientError::Status)?;
        Ok(())
    }

    /// Rolls a filter back to its previous version.
    pub async fn rollback_filter(&mut self, name: String) -> Result<FilterInfo, ClientError> {
        let response = self
            .inner
            .rollback_filter(pb::RollbackFilterRequest { name })
            .await;
        filter_of(response.map_err(ClientError::Status)?.into_inner().filter)
    }

    /// Applies a configuration; answers with what changed.
    pub async fn apply_config(&mut self, req: ApplyConfig) -> Result<ApplySummary, ClientError> {
        let response = self
            .inner
            .apply_config(pb::ApplyConfigRequest::from(req))
            .await;
        Ok(response.map_err(ClientError::Status)?.into_inner().into())
    }

    /// The proxy's status.
    pub async fn status(&mut self) -> Result<Status, ClientError> {
        let response = self.inner.get_status(pb::GetStatusRequest {}).await;
        Ok(response.map_err(ClientError::Status)?.into_inner().into())
    }

    /// Up to `recent` past events, then (with `follow`) new ones as they
    /// happen. Once this returns, the server is subscribed: every event
    /// published afterwards is in the stream.
    pub async fn watch_events(
        &mut self,
        follow: bool,
        recent: u32,
    ) -> Result<impl Stream<Item = Result<Event, ClientError>> + use<>, ClientError> {
        let request = pb::WatchEventsRequest { follow, recent };
        let response = self.inner.watch_events(request).await;
        let stream = response.map_err(ClientError::Status)?.into_inner();
        Ok(stream.map(|item| item.map(Event::from).map_err(ClientError::Status)))
    }
}

fn filter_of(filter: Option<pb::FilterInfo>) -> Result<FilterInfo, ClientError> {
    filter.map(Into::into).ok_or_else(|| {
        ClientError::Status(tonic::Status::internal(
            "the proxy answered without the filter",
        ))
    })
}

/// Dials a unix socket for tonic's channel.
#[derive(Clone)]
struct UnixConnector(PathBuf);

impl tower_service::Service<Uri> for UnixConnector {
    type Response = TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move {
            tokio::net::UnixStream::connect(path)
                .await
                .map(TokioIo::new)
        })
    }
}
