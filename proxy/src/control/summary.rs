//! What changes between two configurations: the summary `ApplyConfig`
//! answers with and `weir config apply` prints.

use crate::config::Config;

use super::types::{ApplySummary, ChangeKind, ConfigChange};

impl ApplySummary {
    /// The changes that turn `old` into `new`, section by section in file
    /// order. Named items (listeners, filters, virtual hosts, clusters) are
    /// matched by name (a listener without one by its address); a change in
    /// the order of filters or virtual hosts, which decides what runs or
    /// matches first, is reported as a `filter_order` / `virtual_host_order`
    /// change.
    pub fn between(old: &Config, new: &Config) -> Self {
        let mut changes = Vec::new();
        named(
            &mut changes,
            "listener",
            &old.listeners,
            &new.listeners,
            |l| l.name.clone().unwrap_or_else(|| l.address.clone()),
        );
        single(&mut changes, "admin", &old.admin, &new.admin);
        single(&mut changes, "limits", &old.limits, &new.limits);
        single(&mut changes, "wasm", &old.wasm, &new.wasm);
        named(&mut changes, "filter", &old.filters, &new.filters, |f| {
            f.name.clone()
        });
        order(
            &mut changes,
            "filter_order",
            &old.filters,
            &new.filters,
            |f| f.name.clone(),
        );
        named(
            &mut changes,
            "virtual_host",
            &old.virtual_hosts,
            &new.virtual_hosts,
            |v| v.name.clone(),
        );
        order(
            &mut changes,
            "virtual_host_order",
            &old.virtual_hosts,
            &new.virtual_hosts,
            |v| v.name.clone(),
        );
        named(&mut changes, "cluster", &old.clusters, &new.clusters, |c| {
            c.name.clone()
        });
        Self { changes }
    }

    /// True when the new configuration equals the old one.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn change(kind: ChangeKind, section: &str, name: String) -> ConfigChange {
    ConfigChange {
        kind,
        section: section.to_string(),
        name,
    }
}

fn single<T: PartialEq>(changes: &mut Vec<ConfigChange>, section: &str, old: &T, new: &T) {
    if old != new {
        changes.push(change(ChangeKind::Modified, section, String::new()));
    }
}

fn named<T: PartialEq>(
    changes: &mut Vec<ConfigChange>,
    section: &str,
    old: &[T],
    new: &[T],
    key: impl Fn(&T) -> String,
) {
    for item in new {
        let name = key(item);
        match old.iter().find(|o| key(o) == name) {
            None => changes.push(change(ChangeKind::Added, section, name)),
            Some(previous) if previous != item => {
                changes.push(change(ChangeKind::Modified, section, name))
            }
            Some(_) => {}
        }
    }
    for item in old {
        let name = key(item);
        if !new.iter().any(|n| key(n) == name) {
            changes.push(change(ChangeKind::Removed, section, name));
        }
    }
}

/// Reports a reordering of the items present in both lists.
fn order<T>(
    changes: &mut Vec<ConfigChange>,
    section: &str,
    old: &[T],
    new: &[T],
    key: impl Fn(&T) -> String,
) {
    let old_names: Vec<String> = old.iter().map(&key).collect();
    let new_names: Vec<String> = new.iter().map(&key).collect();
    let kept_old: Vec<&String> = old_names.iter().filter(|n| new_names.contains(n)).collect();
    let kept_new: Vec<&String> = new_names.iter().filter(|n| old_names.contains(n)).collect();
    if kept_old != kept_new {
        let now = kept_new
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        changes.push(change(ChangeKind::Modified, section, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Config {
        serde_yaml_ng::from_str(yaml).expect("test config parses")
    }

    const BASE: &str = r#"
listeners: [{ address: "127.0.0.1:8080" }]
filters:
  - { name: auth, module: auth.wasm }
  - { name: log, module: log.wasm }
virtual_hosts:
  - { name: default, domains: ["*"], routes: [{ forward: { cluster: api } }] }
clusters:
  - { name: api, endpoints: ["127.0.0.1:9000"] }
"#;

    fn summary(old: &str, new: &str) -> Vec<(ChangeKind, String, String)> {
        ApplySummary::between(&parse(old), &parse(new))
            .changes
            .into_iter()
            .map(|c| (c.kind, c.section, c.name))
            .collect()
    }

    #[test]
    fn identical_configs_change_nothing() {
        assert!(ApplySummary::between(&parse(BASE), &parse(BASE)).is_empty());
    }

    #[test]
    fn added_removed_and_modified_items_are_named() {
        let new =
            BASE.replace(
                "{ name: log, module: log.wasm }",
                "{ name: log, module: log2.wasm }",
            )
            .replace(
                r#"- { name: api, endpoints: ["127.0.0.1:9000"] }"#,
                r#"- { name: web, endpoints: ["127.0.0.1:9001"] }"#,
            ) + "limits: { idle_timeout: 5s }\n";
        assert_eq!(
            summary(BASE, &new),
            vec![
                (ChangeKind::Modified, "limits".into(), "".into()),
                (ChangeKind::Modified, "filter".into(), "log".into()),
                (ChangeKind::Added, "cluster".into(), "web".into()),
                (ChangeKind::Removed, "cluster".into(), "api".into()),
            ]
        );
    }

    #[test]
    fn reordering_the_filter_chain_is_a_change() {
        let new = BASE.replace(
            "  - { name: auth, module: auth.wasm }\n  - { name: log, module: log.wasm }",
            "  - { name: log, module: log.wasm }\n  - { name: auth, module: auth.wasm }",
        );
        assert_eq!(
            summary(BASE, &new),
            vec![(
                ChangeKind::Modified,
                "filter_order".into(),
                "log, auth".into()
            )]
        );
    }

    #[test]
    fn listeners_without_a_name_are_matched_by_address() {
        let new = BASE.replace("127.0.0.1:8080", "127.0.0.1:8081");
        assert_eq!(
            summary(BASE, &new),
            vec![
                (
                    ChangeKind::Added,
                    "listener".into(),
                    "127.0.0.1:8081".into()
                ),
                (
                    ChangeKind::Removed,
                    "listener".into(),
                    "127.0.0.1:8080".into()
                ),
            ]
        );
    }
}
