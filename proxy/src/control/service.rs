//! The `weir.control.v1.Control` service: each call checked, converted and
//! handed to the [`ControlPlane`]; its errors become gRPC statuses.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use tokio::sync::{broadcast, watch};
use tonic::{Request, Response, Status};

use super::convert::filter_name;
use super::events::{Event, EventKind};
use super::output::human_bytes;
use super::pb;
use super::plane::{ApplyConfig, ControlPlane, LoadFilter, ModuleSource};

/// The gRPC face of a [`ControlPlane`].
pub(crate) struct ControlService {
    plane: Arc<dyn ControlPlane>,
    max_upload_bytes: usize,
    /// Becomes true when the server shuts down: ends `WatchEvents` streams,
    /// which would otherwise hold graceful shutdown open forever.
    stopping: watch::Receiver<bool>,
}

impl ControlService {
    pub(crate) fn new(
        plane: Arc<dyn ControlPlane>,
        max_upload_bytes: usize,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            plane,
            max_upload_bytes,
            stopping,
        }
    }

    fn check_upload(&self, what: &str, len: usize) -> Result<(), Status> {
        if len > self.max_upload_bytes {
            return Err(upload_too_large(what, Some(len), self.max_upload_bytes));
        }
        Ok(())
    }

    fn check_module(&self, module: Option<&pb::ModuleSource>) -> Result<(), Status> {
        match module.and_then(|m| m.source.as_ref()) {
            Some(pb::module_source::Source::Wasm(bytes)) => {
                self.check_upload("module", bytes.len())
            }
            _ => Ok(()),
        }
    }
}

/// RESOURCE_EXHAUSTED for an upload over the limit; `len` when known.
pub(crate) fn upload_too_large(what: &str, len: Option<usize>, limit: usize) -> Status {
    let size = match len {
        Some(len) => format!("{what} is {}", human_bytes(len as u64)),
        None => format!("{what} is larger than the limit"),
    };
    Status::resource_exhausted(format!(
        "{size}; this control API accepts uploads up to {} (raise the proxy's control \
         max upload size, or load the module from a path on the proxy's machine)",
        human_bytes(limit as u64)
    ))
}

#[tonic::async_trait]
impl pb::control_server::Control for ControlService {
    async fn list_filters(
        &self,
        _request: Request<pb::ListFiltersRequest>,
    ) -> Result<Response<pb::ListFiltersResponse>, Status> {
        let filters = self.plane.list_filters().await?;
        Ok(Response::new(pb::ListFiltersResponse {
            filters: filters.into_iter().map(Into::into).collect(),
        }))
    }

    async fn load_filter(
        &self,
        request: Request<pb::LoadFilterRequest>,
    ) -> Result<Response<pb::LoadFilterResponse>, Status> {
        let request = request.into_inner();
        self.check_module(request.module.as_ref())?;
        let load = LoadFilter::try_from(request)?;
        let filter = self.plane.load_filter(load).await?;
        Ok(Response::new(pb::LoadFilterResponse {
            filter: Some(filter.into()),
        }))
    }

    async fn reload_filter(
        &self,
        request: Request<pb::ReloadFilterRequest>,
    ) -> Result<Response<pb::ReloadFilterResponse>, Status> {
        let request = request.into_inner();
        self.check_module(request.module.as_ref())?;
        let name = filter_name(request.name)?;
        let source = request.module.map(ModuleSource::try_from).transpose()?;
        let filter = self.plane.reload_filter(name, source).await?;
        Ok(Response::new(pb::ReloadFilterResponse {
            filter: Some(filter.into()),
        }))
    }

    async fn unload_filter(
        &self,
        request: Request<pb::UnloadFilterRequest>,
    ) -> Result<Response<pb::UnloadFilterResponse>, Status> {
        let name = filter_name(request.into_inner().name)?;
        self.plane.unload_filter(name).await?;
        Ok(Response::new(pb::UnloadFilterResponse {}))
    }

    async fn rollback_filter(
        &self,
        request: Request<pb::RollbackFilterRequest>,
    ) -> Result<Response<pb::RollbackFilterResponse>, Status> {
        let name = filter_name(request.into_inner().name)?;
        let filter = self.plane.rollback_filter(name).await?;
        Ok(Response::new(pb::RollbackFilterResponse {
            filter: Some(filter.into()),
        }))
    }

    async fn apply_config(
        &self,
        request: Request<pb::ApplyConfigRequest>,
    ) -> Result<Response<pb::ApplyConfigResponse>, Status> {
        let request = request.into_inner();
        self.check_upload("configuration", request.text.len())?;
        let summary = self.plane.apply_config(ApplyConfig::from(request)).await?;
        Ok(Response::new(summary.into()))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let status = self.plane.status().await?;
        Ok(Response::new(status.into()))
    }

    type WatchEventsStream = BoxStream<'static, Result<pb::Event, Status>>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let request = request.into_inner();
        // Subscribe before reading the history so nothing falls in between;
        // events in both are skipped on the live side by sequence number.
        let live = request.follow.then(|| self.plane.events());
        let recent = self.plane.recent_events(request.recent as usize);
        let replayed_up_to = recent.last().map_or(0, |e| e.seq);
        let history = stream::iter(recent).map(|e| Ok(pb::Event::from(e)));
        let stream = match live {
            Some(rx) => history
                .chain(follow(rx, replayed_up_to, self.stopping.clone()))
                .boxed(),
            None => history.boxed(),
        };
        Ok(Response::new(stream))
    }
}

/// Events from `rx` newer than `after_seq`, until the bus closes or the
/// server stops. A watcher that fell behind gets an `EventsMissed` event.
fn follow(
    rx: broadcast::Receiver<Event>,
    after_seq: u64,
    stopping: watch::Receiver<bool>,
) -> impl futures_util::Stream<Item = Result<pb::Event, Status>> + Send + 'static {
    stream::unfold((rx, stopping), move |(mut rx, mut stopping)| async move {
        loop {
            let received = tokio::select! {
                received = rx.recv() => received,
                _ = stopping.wait_for(|stop| *stop) => return None,
            };
            let event = match received {
                Ok(event) if event.seq <= after_seq => continue,
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(missed)) => missed_event(missed),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok(pb::Event::from(event)), (rx, stopping)));
        }
    })
}

fn missed_event(missed: u64) -> Event {
    Event {
        seq: 0,
        kind: EventKind::EventsMissed,
        filter: None,
        message: format!("this watcher fell behind and missed {missed} events"),
        time: SystemTime::now(),
        failure: None,
    }
}
