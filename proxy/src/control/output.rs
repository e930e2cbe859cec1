//! What the `weir` control commands print: aligned tables for people,
//! JSON for scripts (`--output json`; events as one JSON object per line).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::events::Event;
use super::types::{ApplySummary, FilterInfo, FilterVersion, Status};

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

/// `n` bytes as people read them: `512 B`, `3.2 KiB`, `64.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Columns padded to their widest cell, two spaces apart; the last column
/// is not padded (so lines carry no trailing spaces).
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        // Control characters would break the alignment.
        let cells = cells
            .into_iter()
            .map(|c| {
                c.chars()
                    .map(|ch| if ch.is_control() { ' ' } else { ch })
                    .collect()
            })
            .collect();
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let headers = self
            .headers
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let last = row.len() - 1;
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    let pad = widths[i] - cell.chars().count() + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// `value` as pretty JSON, with a final newline.
pub(crate) fn json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("control types serialize to JSON");
    text.push('\n');
    text
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The first 12 hex digits of a version's SHA-256, as `git` shortens hashes.
fn short(version: &FilterVersion) -> String {
    version.sha256.chars().take(12).collect()
}

/// The `weir filter list` table.
pub(crate) fn filters_table(filters: &[FilterInfo]) -> String {
    filters_table_headed("NAME", filters)
}

fn filters_table_headed(first: &'static str, filters: &[FilterInfo]) -> String {
    if filters.is_empty() {
        return "no filters loaded\n".to_string();
    }
    let mut table = Table::new(vec![
        first, "VERSION", "LOADED", "CALLS", "TRAPS", "FAILURES", "ROLLBACK", "MODULE",
    ]);
    for f in filters {
        table.row(vec![
            f.name.clone(),
            short(&f.version),
            time(f.version.loaded_at),
            f.counters.calls.to_string(),
            f.counters.traps.to_string(),
            f.counters.failures.to_string(),
            f.previous.as_ref().map_or_else(|| "-".to_string(), short),
            f.module.clone(),
        ]);
    }
    table.render()
}

/// One line after load, reload or rollback: `loaded filter auth: version ...`.
pub(crate) fn filter_changed(verb: &str, f: &FilterInfo) -> String {
    let mut line = format!(
        "{verb} filter {}: version {} (sha256 {}) from {}",
        f.name,
        short(&f.version),
        f.version.sha256,
        f.module
    );
    if let Some(previous) = &f.previous {
        line.push_str(&format!("; rollback target {}", short(previous)));
    }
    line.push('\n');
    line
}

/// The `weir status` report.
pub(crate) fn status_report(s: &Status) -> String {
    let uptime = humantime::format_duration(Duration::from_secs(s.uptime.as_secs()));
    let mut out = format!("weir {}, up {uptime}\n", s.version);
    out.push_str(&format!(
        "modules: {} compiled, {} loaded from the compiled-module cache\n",
        s.module_cache.compiled, s.module_cache.cached
    ));

    out.push('\n');
    if s.listeners.is_empty() {
        out.push_str("no listeners\n");
    } else {
        let mut table = Table::new(vec!["LISTENER", "ADDRESS"]);
        for l in &s.listeners {
            table.row(vec![l.name.clone(), l.address.clone()]);
        }
        out.push_str(&table.render());
    }

    out.push('\n');
    if s.clusters.is_empty() {
        out.push_str("no clusters\n");
    } else {
        let mut table = Table::new(vec!["CLUSTER", "ENDPOINT", "HEALTH"]);
        for c in &s.clusters {
            if c.endpoints.is_empty() {
                table.row(vec![c.name.clone(), "-".into(), "-".into()]);
            }
            for e in &c.endpoints {
                table.row(vec![
                    c.name.clone(),
                    e.address.clone(),
                    e.health.as_str().into(),
                ]);
            }
        }
        out.push_str(&table.render());
    }

    out.push('\n');
    out.push_str(&filters_table_headed("FILTER", &s.filters));
    out
}

/// What `weir config apply` prints: the number of changes, then one line each.
pub(crate) fn apply_summary(summary: &ApplySummary) -> String {
    let count = summary.changes.len();
    if count == 0 {
        return "configuration applied: no changes\n".to_string();
    }
    let plural = if count == 1 { "" } else { "s" };
    let mut out = format!("configuration applied: {count} change{plural}\n");
    for c in &summary.changes {
        out.push_str(&format!("  {} {}", c.kind.sign(), c.section));
        if !c.name.is_empty() {
            out.push_str(&format!(" {}", c.name));
        }
        out.push('\n');
    }
    out
}

/// One `weir events` line: time, kind, filter (or `-`), message.
pub(crate) fn event_line(e: &Event) -> String {
    format!(
        "{}  {:<18}  {}  {}\n",
        time(e.time),
        e.kind.as_str(),
        e.filter.as_deref().unwrap_or("-"),
        e.message
    )
}

/// One `weir events --output json` line.
pub(crate) fn event_json_line(e: &Event) -> String {
    let mut line = serde_json::to_string(e).expect("events serialize to JSON");
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let mut table = Table::new(vec!["NAME", "N"]);
        table.row(vec!["a-long-name".into(), "1".into()]);
        table.row(vec!["b".into(), "22\n".into()]);
        assert_eq!(
            table.render(),
            "NAME         N\na-long-name  1\nb            22 \n"
        );
    }

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
