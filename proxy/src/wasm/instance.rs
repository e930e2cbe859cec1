//! Configured filter instances, their pools, and phase calls.
//!
//! An [`Instance`] is a store plus an instantiated, configured component.
//! One [`InstancePool`] exists per (filter, effective configuration). A phase
//! call leases an idle instance, or creates and configures a new one when
//! none is idle, up to `wasm.max_instances_per_filter` alive; beyond that it
//! waits up to [`ACQUIRE_WAIT`] and then fails (handled by the failure mode);
//! the bookkeeping is the generic [`Pool`].
//!
//! An instance that trapped, ran out of CPU time or memory, or whose call
//! was cancelled half-way is dropped, never reused. Instances are recycled
//! after [`RECYCLE_AFTER_USES`] calls to bound leaks in guests. With
//! `isolation: per_request` a [`FilterHandle`] keeps one instance for all
//! phases of one exchange and drops it at the end.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{ComponentNamedList, Lift, Lower, Resource, TypedFunc};
use wasmtime::{Engine, Store, UpdateDeadline};

use crate::config::{Execution, FilterLimits, Isolation};
use crate::wasm::bindings::weir::filter::types::{Action, FilterInfo, Summary};
use crate::wasm::epoch::EPOCH_TICK;
use crate::wasm::error::{CallFailure, describe};
use crate::wasm::host::callout::CalloutClient;
use crate::wasm::host::http::{BODY_REP, REQUEST_REP, RESPONSE_REP};
use crate::wasm::host::{ExchangeData, HostState, MemoryCap, MemoryLimitExceeded, Phase};
use crate::wasm::module::{CompiledModule, HandlerFuncs};
use crate::wasm::pool::{AcquireError, Lease, Pool, Poolable};
use crate::wasm::runtime::RuntimeShared;

/// How long a call waits for an instance when all are busy.
pub const ACQUIRE_WAIT: Duration = Duration::from_secs(1);
/// Calls after which an instance is replaced by a fresh one.
pub const RECYCLE_AFTER_USES: u32 = 10_000;
/// CPU time allowed for instantiation plus `configure`.
pub const CONFIGURE_CPU: Duration = Duration::from_secs(1);

/// The guest used up its CPU time (raised from the epoch callback).
#[derive(Debug, thiserror::Error)]
#[error("CPU time limit exceeded")]
struct CpuLimitExceeded;

/// Longest stretch a guest runs before it yields its thread back to the
/// async runtime (then it resumes where it was): a long-running or looping
/// filter shares the thread with every other request instead of holding it
/// for its whole CPU deadline.
const YIELD_EVERY_TICKS: u64 = 1;

/// The next epoch deadline: the next yield, or the CPU deadline if sooner.
/// Inline calls cannot yield: their deadline is the CPU deadline.
fn slice(left: Duration, execution: Execution) -> u64 {
    match execution {
        Execution::Yielding => ticks(left).min(YIELD_EVERY_TICKS),
        Execution::Inline => ticks(left),
    }
}

fn ticks(duration: Duration) -> u64 {
    (duration.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64).max(1)
}

/// What a filter is, independent of its instances.
#[derive(Debug, Clone)]
pub(crate) struct FilterTemplate {
    pub(crate) name: Arc<str>,
    pub(crate) config_json: String,
    pub(crate) limits: FilterLimits,
    pub(crate) isolation: Isolation,
    pub(crate) execution: Execution,
    pub(crate) max_instances: u32,
}

/// Why a new instance could not be made ready.
#[derive(Debug)]
pub(crate) enum InstanceError {
    /// Instantiation failed (limits, traps in start functions).
    Instantiate(String),
    /// The handler's functions do not have the contract's types.
    Contract(String),
    /// `configure` returned `Err(message)`.
    Rejected(String),
    /// `configure` trapped or ran out of time or memory.
    Failed(String),
}

/// One phase call.
pub(crate) enum PhaseCall {
    RequestHeaders,
    RequestBody { end_of_stream: bool },
    ResponseHeaders,
    ResponseBody { end_of_stream: bool },
    Done(Summary),
}

/// A configured instance with its own store.
pub(crate) struct Instance {
    store: Store<HostState>,
    funcs: HandlerFuncs,
    uses: u32,
    /// Set while a call runs and kept after a trap: never reuse.
    poisoned: bool,
    /// Pooled isolation: may serve further exchanges.
    shared_across_exchanges: bool,
    /// Calls run on a fiber and yield, or run inline.
    execution: Execution,
    /// The runtime's shared state, here so that a call can mark itself
    /// running while the store is borrowed.
    shared: Arc<RuntimeShared>,
}

impl Poolable for Instance {
    fn reusable(&self) -> bool {
        self.shared_across_exchanges && !self.poisoned && self.uses < RECYCLE_AFTER_USES
    }
}

impl Instance {
    /// Instantiate `module` for `template` and call `configure`.
    pub(crate) async fn create(
        engine: &Engine,
        module: &CompiledModule,
        template: &FilterTemplate,
        shared: &Arc<RuntimeShared>,
        callouts: &Arc<dyn CalloutClient>,
    ) -> Result<(Instance, FilterInfo), InstanceError> {
        let limits = MemoryCap::new(template.limits.memory_mib as usize * 1024 * 1024);
        let state = HostState::new(
            template.name.clone(),
            shared.clone(),
            callouts.clone(),
            limits,
        );
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limits);
        let execution = module.execution;
        store.epoch_deadline_callback(move |mut ctx| {
            let cpu = &mut ctx.data_mut().cpu;
            if execution == Execution::Yielding && cpu.just_started() {
                // The call started just before this tick: its yield is due
                // at the next one.
                return Ok(UpdateDeadline::Continue(1));
            }
            match (cpu.remaining(), execution) {
                (None, _) => Err(wasmtime::Error::new(CpuLimitExceeded)),
                (Some(left), Execution::Yielding) => Ok(UpdateDeadline::YieldCustom(
                    slice(left, execution),
                    Box::pin(cpu.yield_now()),
                )),
                // Ticks can come early (the ticker counts wall time): go on.
                (Some(left), Execution::Inline) => {
                    Ok(UpdateDeadline::Continue(slice(left, execution)))
                }
            }
        });
        store.data_mut().cpu.start(CONFIGURE_CPU);
        store.set_epoch_deadline(slice(CONFIGURE_CPU, execution));
        let instance = match execution {
            Execution::Yielding => module.pre.instantiate_async(&mut store).await,
            Execution::Inline => module.pre.instantiate(&mut store),
        }
        .map_err(|e| InstanceError::Instantiate(describe(&e)))?;
        let funcs = module
            .exports
            .resolve(&mut store, &instance)
            .map_err(InstanceError::Contract)?;
        let mut instance = Instance {
            store,
            funcs,
            uses: 0,
            poisoned: false,
            shared_across_exchanges: template.isolation == Isolation::Pooled,
            execution,
            shared: Arc::clone(shared),
        };
        let configure = instance.funcs.configure;
        let params = (template.name.to_string(), template.config_json.clone());
        match instance.invoke(configure, params, CONFIGURE_CPU).await {
            Ok((Ok(info),)) => {
                instance.uses = 0;
                Ok((instance, info))
            }
            Ok((Err(message),)) => Err(InstanceError::Rejected(message)),
            Err(failure) => Err(InstanceError::Failed(failure.to_string())),
        }
    }

    async fn invoke<P, R>(
        &mut self,
        func: TypedFunc<P, R>,
        params: P,
        cpu: Duration,
    ) -> Result<R, CallFailure>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        self.uses += 1;
        self.poisoned = true;
        let _running = self.shared.activity.enter();
        self.store.data_mut().cpu.start(cpu);
        self.store.set_epoch_deadline(slice(cpu, self.execution));
        let result = match self.execution {
            Execution::Yielding => func.call_async(&mut self.store, params).await,
            Execution::Inline => func.call(&mut self.store, params),
        };
        match result {
            Ok(result) => {
                self.poisoned = false;
                Ok(result)
            }
            Err(error) => {
                if error.chain().any(|cause| cause.is::<CpuLimitExceeded>()) {
                    Err(CallFailure::CpuDeadline(cpu))
                } else if error.chain().any(|cause| cause.is::<MemoryLimitExceeded>()) {
                    Err(CallFailure::Memory(describe(&error)))
                } else {
                    Err(CallFailure::Trap(describe(&error)))
                }
            }
        }
    }

    /// Run one phase on `data` (moved into the store for the call and back
    /// out after it, also when the call fails).
    pub(crate) async fn run_phase(
        &mut self,
        call: PhaseCall,
        data: &mut Box<ExchangeData>,
        cpu: Duration,
    ) -> Result<Option<Action>, CallFailure> {
        let request = || Resource::new_borrow(REQUEST_REP);
        let response = || Resource::new_borrow(RESPONSE_REP);
        let body = || Resource::new_borrow(BODY_REP);
        data.phase = match call {
            PhaseCall::RequestHeaders => Phase::RequestHeaders,
            PhaseCall::RequestBody { .. } => Phase::RequestBody,
            PhaseCall::ResponseHeaders => Phase::ResponseHeaders,
            PhaseCall::ResponseBody { .. } => Phase::ResponseBody,
            PhaseCall::Done(_) => Phase::Done,
        };
        // Swapped, not moved: the exchange data is a few hundred bytes.
        std::mem::swap(&mut self.store.data_mut().exchange, data);
        let f = &self.funcs;
        let (rh, rb, sh, sb, done) = (
            f.on_request_headers,
            f.on_request_body,
            f.on_response_headers,
            f.on_response_body,
            f.on_done,
        );
        let result = match call {
            PhaseCall::RequestHeaders => {
                self.invoke(rh, (request(),), cpu).await.map(|(r,)| Some(r))
            }
            PhaseCall::RequestBody { end_of_stream } => self
                .invoke(rb, (request(), body(), end_of_stream), cpu)
                .await
                .map(|(r,)| Some(r)),
            PhaseCall::ResponseHeaders => self
                .invoke(sh, (request(), response()), cpu)
                .await
                .map(|(r,)| Some(r)),
            PhaseCall::ResponseBody { end_of_stream } => self
                .invoke(sb, (request(), response(), body(), end_of_stream), cpu)
                .await
                .map(|(r,)| Some(r)),
            PhaseCall::Done(summary) => self
                .invoke(done, (request(), summary), cpu)
                .await
                .map(|()| None),
        };
        std::mem::swap(&mut self.store.data_mut().exchange, data);
        data.phase = Phase::Idle;
        match result? {
            None => Ok(None),
            Some(Ok(action)) => Ok(Some(action)),
            Some(Err(message)) => Err(CallFailure::Guest(message)),
        }
    }
}

/// The instances of one (filter, configuration).
pub(crate) struct InstancePool {
    engine: Engine,
    module: Arc<CompiledModule>,
    pub(crate) template: FilterTemplate,
    pub(crate) shared: Arc<RuntimeShared>,
    callouts: Arc<dyn CalloutClient>,
    instances: Arc<Pool<Instance>>,
    /// What `configure` said at load.
    pub(crate) info: FilterInfo,
}

impl InstancePool {
    /// Create the pool and its first instance (which validates the
    /// configuration); the instance is kept idle for the first request.
    pub(crate) async fn create(
        engine: Engine,
        module: Arc<CompiledModule>,
        template: FilterTemplate,
        shared: Arc<RuntimeShared>,
        callouts: Arc<dyn CalloutClient>,
    ) -> Result<Arc<InstancePool>, InstanceError> {
        let (first, info) =
            Instance::create(&engine, &module, &template, &shared, &callouts).await?;
        let instances = Pool::new(template.max_instances, ACQUIRE_WAIT, vec![first]);
        Ok(Arc::new(InstancePool {
            engine,
            module,
            template,
            shared,
            callouts,
            instances,
            info,
        }))
    }

    /// Lease an instance: an idle one, or a new one if fewer than the
    /// maximum are alive, or wait up to [`ACQUIRE_WAIT`] for one.
    pub(crate) async fn acquire(&self) -> Result<Lease<Instance>, CallFailure> {
        let create = || async {
            Instance::create(
                &self.engine,
                &self.module,
                &self.template,
                &self.shared,
                &self.callouts,
            )
            .await
            .map(|(instance, _info)| instance)
        };
        self.instances.acquire(create).await.map_err(|e| match e {
            AcquireError::Busy => CallFailure::Busy(self.template.max_instances),
            AcquireError::Create(
                InstanceError::Instantiate(why)
                | InstanceError::Contract(why)
                | InstanceError::Failed(why),
            ) => CallFailure::Instantiate(why),
            AcquireError::Create(InstanceError::Rejected(why)) => {
                CallFailure::Instantiate(format!("configure rejected the configuration: {why}"))
            }
        })
    }
}

/// A filter as one exchange uses it: leases per call (pooled), or one
/// instance for the whole exchange (`per_request`).
#[derive(Clone)]
pub(crate) struct FilterHandle {
    pub(crate) pool: Arc<InstancePool>,
    exchange_instance: Option<Arc<tokio::sync::Mutex<Option<Lease<Instance>>>>>,
}

impl FilterHandle {
    pub(crate) fn new(pool: Arc<InstancePool>) -> Self {
        let exchange_instance = (pool.template.isolation == Isolation::PerRequest)
            .then(|| Arc::new(tokio::sync::Mutex::new(None)));
        FilterHandle {
            pool,
            exchange_instance,
        }
    }

    /// Run one phase of this filter on `data`.
    pub(crate) async fn run(
        &self,
        call: PhaseCall,
        data: &mut Box<ExchangeData>,
    ) -> Result<Option<Action>, CallFailure> {
        let cpu = self.pool.template.limits.cpu_per_call;
        let Some(slot) = &self.exchange_instance else {
            if let Some(mut lease) = self.pool.instances.try_acquire() {
                return lease.get().run_phase(call, data, cpu).await;
            }
            // Creating an instance or waiting for one: rare, and its future
            // is large, so it is boxed off the per-call path.
            let mut lease = Box::pin(self.pool.acquire()).await?;
            return lease.get().run_phase(call, data, cpu).await;
        };
        let mut held = slot.lock().await;
        if held.is_none() {
            // Boxed as on the pooled path: unboxed, its state would double
            // the size of every call's future, which is moved on each call.
            *held = Some(Box::pin(self.pool.acquire()).await?);
        }
        let Some(lease) = held.as_mut() else {
            unreachable!("filled above")
        };
        let result = lease.get().run_phase(call, data, cpu).await;
        if lease.get().poisoned {
            *held = None;
        }
        result
    }
}
