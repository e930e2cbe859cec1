//! The [`ControlPlane`] the control API serves: the manager itself.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::broadcast;

use crate::control::{
    ApplyConfig, ApplySummary, ControlError, ControlPlane, Event, FilterInfo, LoadFilter,
    ModuleSource, Status,
};

use super::Manager;

impl ControlPlane for Manager {
    fn list_filters(&self) -> BoxFuture<'_, Result<Vec<FilterInfo>, ControlError>> {
        async move { Ok(self.filter_infos().await) }.boxed()
    }

    fn load_filter(&self, req: LoadFilter) -> BoxFuture<'_, Result<FilterInfo, ControlError>> {
        self.load(req).boxed()
    }

    fn reload_filter(
        &self,
        name: String,
        source: Option<ModuleSource>,
    ) -> BoxFuture<'_, Result<FilterInfo, ControlError>> {
        async move { self.reload(&name, source).await }.boxed()
    }

    fn unload_filter(&self, name: String) -> BoxFuture<'_, Result<(), ControlError>> {
        async move { self.unload(&name).await }.boxed()
    }

    fn rollback_filter(&self, name: String) -> BoxFuture<'_, Result<FilterInfo, ControlError>> {
        async move { self.rollback(&name).await }.boxed()
    }

    fn apply_config(&self, req: ApplyConfig) -> BoxFuture<'_, Result<ApplySummary, ControlError>> {
        self.apply(req).boxed()
    }

    fn status(&self) -> BoxFuture<'_, Result<Status, ControlError>> {
        self.status_now().boxed()
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn recent_events(&self, limit: usize) -> Vec<Event> {
        self.events.recent(limit)
    }
}
