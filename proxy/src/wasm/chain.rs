//! Planning the filter chain of every route from the config.
//!
//! A route's chain is the default chain (`filters`) with the route's
//! `filters` entries applied: an entry naming a chain filter may disable it
//! or replace its `config` / `failure_mode` (making a separately configured
//! filter); an entry with a new name and a `module` appends a filter. Chains
//! are planned once per config generation, indexed by [`RouteId`]
//! (position across virtual hosts).
//!
//! [`RouteId`]: crate::routing::RouteId

use std::collections::HashMap;

use crate::config::{Config, Execution, FailureMode, FilterLimits, Isolation};
use crate::wasm::error::FilterLoadError;

/// A filter with its effective settings on some route(s).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedFilter {
    pub(crate) name: String,
    pub(crate) module: String,
    pub(crate) config: serde_json::Value,
    pub(crate) failure_mode: FailureMode,
    pub(crate) limits: FilterLimits,
    pub(crate) isolation: Isolation,
    pub(crate) execution: Execution,
}

/// Every distinct filter, and each route's chain as indices into it.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ChainPlan {
    pub(crate) filters: Vec<PlannedFilter>,
    pub(crate) routes: Vec<Vec<usize>>,
}

impl ChainPlan {
    /// Index of `filter`, adding it if no equal one is planned yet.
    fn intern(&mut self, index: &mut HashMap<String, Vec<usize>>, filter: PlannedFilter) -> usize {
        let candidates = index.entry(filter.name.clone()).or_default();
        if let Some(&found) = candidates.iter().find(|&&i| self.filters[i] == filter) {
            return found;
        }
        self.filters.push(filter);
        candidates.push(self.filters.len() - 1);
        self.filters.len() - 1
    }
}

/// Plan all routes' chains.
pub(crate) fn plan(config: &Config) -> Result<ChainPlan, FilterLoadError> {
    let defaults = &config.wasm.default_limits;
    let mut chain: Vec<PlannedFilter> = Vec::with_capacity(config.filters.len());
    for filter in &config.filters {
        if chain.iter().any(|f| f.name == filter.name) {
            return Err(FilterLoadError::DuplicateFilter {
                filter: filter.name.clone(),
            });
        }
        chain.push(PlannedFilter {
            name: filter.name.clone(),
            module: filter.module.clone(),
            config: filter.config.clone(),
            failure_mode: filter.failure_mode,
            limits: filter.limits.clone().unwrap_or_else(|| defaults.clone()),
            isolation: filter.isolation,
            execution: filter.execution,
        });
    }

    let mut plan = ChainPlan::default();
    let mut index = HashMap::new();
    for (vhost_index, vhost) in config.virtual_hosts.iter().enumerate() {
        for (route_index, route) in vhost.routes.iter().enumerate() {
            let route_label = match &route.name {
                Some(name) => format!("`{name}`"),
                None => format!("virtual_hosts[{vhost_index}].routes[{route_index}]"),
            };
            let mut filters: Vec<Option<PlannedFilter>> = chain.iter().cloned().map(Some).collect();
            let mut added = Vec::new();
            for (entry_index, entry) in route.filters.iter().enumerate() {
                let invalid = |reason: &str| FilterLoadError::InvalidRouteFilter {
                    route: route_label.clone(),
                    filter: entry.name.clone(),
                    reason: reason.to_owned(),
                };
                if route.filters[..entry_index]
                    .iter()
                    .any(|e| e.name == entry.name)
                {
                    return Err(invalid("listed twice on this route"));
                }
                match chain.iter().position(|f| f.name == entry.name) {
                    Some(position) => {
                        if entry.module.is_some() {
                            return Err(invalid(
                                "is in the default chain; `module` is only for new filters",
                            ));
                        }
                        if entry.disabled {
                            if entry.config.is_some() || entry.failure_mode.is_some() {
                                return Err(invalid(
                                    "`disabled` cannot be combined with `config` or `failure_mode`",
                                ));
                            }
                            filters[position] = None;
                            continue;
                        }
                        if let Some(slot) = filters[position].as_mut() {
                            if let Some(config) = &entry.config {
                                slot.config = config.clone();
                            }
                            if let Some(mode) = entry.failure_mode {
                                slot.failure_mode = mode;
                            }
                        }
                    }
                    None => {
                        let Some(module) = &entry.module else {
                            return Err(FilterLoadError::UnknownRouteFilter {
                                route: route_label.clone(),
                                filter: entry.name.clone(),
                            });
                        };
                        if entry.disabled {
                            return Err(invalid(
                                "a filter added by the route cannot be `disabled`",
                            ));
                        }
                        added.push(PlannedFilter {
                            name: entry.name.clone(),
                            module: module.clone(),
                            config: entry
                                .config
                                .clone()
                                .unwrap_or_else(|| serde_json::json!({})),
                            failure_mode: entry.failure_mode.unwrap_or_default(),
                            limits: defaults.clone(),
                            isolation: Isolation::default(),
                            execution: Execution::default(),
                        });
                    }
                }
            }
            let route_chain = filters
                .into_iter()
                .flatten()
                .chain(added)
                .map(|filter| plan.intern(&mut index, filter))
                .collect();
            plan.routes.push(route_chain);
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        serde_yaml_ng::from_str(yaml).expect("test config parses")
    }

    const BASE: &str = r#"
listeners: [{address: "127.0.0.1:0"}]
filters:
  - {name: auth, module: auth.wasm, config: {realm: main}}
  - {name: log, module: log.wasm, failure_mode: fail_open, isolation: per_request,
     limits: {cpu_per_call: 5ms, memory_mib: 8, max_buffered_body: 100}}
"#;

    fn with_routes(routes: &str) -> Config {
        config(&format!("{BASE}virtual_hosts:\n{routes}"))
    }

    fn names(plan: &ChainPlan, route: usize) -> Vec<&str> {
        plan.routes[route]
            .iter()
            .map(|&i| plan.filters[i].name.as_str())
            .collect()
    }

    #[test]
    fn routes_without_changes_share_the_default_chain() {
        let plan = plan(&with_routes(
            "  - {name: a, domains: ['*'], routes: [{}, {}]}\n  - {name: b, domains: [x], routes: [{}]}\n",
        ))
        .unwrap();
        assert_eq!(plan.routes.len(), 3, "routes counted across virtual hosts");
        assert_eq!(plan.filters.len(), 2, "identical filters are planned once");
        for route in 0..3 {
            assert_eq!(names(&plan, route), ["auth", "log"]);
            assert_eq!(plan.routes[route], plan.routes[0]);
        }
        let log = &plan.filters[plan.routes[0][1]];
        assert_eq!(log.isolation, Isolation::PerRequest);
        assert_eq!(log.limits.memory_mib, 8);
        assert_eq!(
            plan.filters[plan.routes[0][0]].limits,
            FilterLimits::default(),
            "default limits apply"
        );
    }

    #[test]
    fn overrides_disable_and_additions_apply_per_route() {
        let plan = plan(&with_routes(
            r#"  - name: a
    domains: ['*']
    routes:
      - filters: [{name: auth, config: {realm: admin}, failure_mode: fail_open}]
      - filters: [{name: log, disabled: true}]
      - filters: [{name: extra, module: extra.wasm}, {name: auth, disabled: true}]
      - {}
"#,
        ))
        .unwrap();
        assert_eq!(names(&plan, 0), ["auth", "log"]);
        let overridden = &plan.filters[plan.routes[0][0]];
        assert_eq!(overridden.config, serde_json::json!({"realm": "admin"}));
        assert_eq!(overridden.failure_mode, FailureMode::FailOpen);
        assert_ne!(
            plan.routes[0][0], plan.routes[3][0],
            "an override is a separate filter"
        );
        assert_eq!(
            plan.routes[0][1], plan.routes[3][1],
            "untouched filters are shared"
        );

        assert_eq!(names(&plan, 1), ["auth"]);
        assert_eq!(
            names(&plan, 2),
            ["log", "extra"],
            "added filters run after the chain"
        );
        let extra = &plan.filters[plan.routes[2][1]];
        assert_eq!(extra.module, "extra.wasm");
        assert_eq!(extra.config, serde_json::json!({}));
        assert_eq!(extra.failure_mode, FailureMode::FailClosed);
        assert_eq!(names(&plan, 3), ["auth", "log"]);
        assert_eq!(plan.filters.len(), 4);
    }

    #[test]
    fn a_route_can_end_up_with_no_filters() {
        let plan = plan(&with_routes(
            "  - {name: a, domains: ['*'], routes: [{filters: [{name: auth, disabled: true}, {name: log, disabled: true}]}]}\n",
        ))
        .unwrap();
        assert!(plan.routes[0].is_empty());
    }

    #[test]
    fn unknown_filter_without_module_names_the_route() {
        let err = plan(&with_routes(
            "  - {name: a, domains: ['*'], routes: [{name: api, filters: [{name: nope}]}]}\n",
        ))
        .unwrap_err();
        assert!(
            matches!(&err, FilterLoadError::UnknownRouteFilter { route, filter } if route == "`api`" && filter == "nope")
        );
        assert!(err.to_string().contains("give `module`"), "{err}");
    }

    #[test]
    fn contradictory_entries_are_rejected() {
        let cases = [
            "[{name: auth, module: other.wasm}]",
            "[{name: auth, disabled: true, config: {}}]",
            "[{name: new, module: n.wasm, disabled: true}]",
            "[{name: auth, disabled: true}, {name: auth, disabled: true}]",
        ];
        for filters in cases {
            let err = plan(&with_routes(&format!(
                "  - {{name: a, domains: ['*'], routes: [{{filters: {filters}}}]}}\n"
            )))
            .unwrap_err();
            assert!(
                matches!(err, FilterLoadError::InvalidRouteFilter { .. }),
                "{filters}: {err}"
            );
            assert!(
                err.to_string().contains("virtual_hosts[0].routes[0]"),
                "{err}"
            );
        }
    }

    #[test]
    fn duplicate_chain_names_are_rejected() {
        let cfg = config(
            "listeners: [{address: '127.0.0.1:0'}]\nfilters: [{name: a, module: a.wasm}, {name: a, module: b.wasm}]\nvirtual_hosts: []\n",
        );
        assert!(
            matches!(plan(&cfg), Err(FilterLoadError::DuplicateFilter { filter }) if filter == "a")
        );
    }
}
