//! The admin endpoint's `GET /metrics`: the filter metrics registry
//! ([`MetricsSnapshot`]) in the Prometheus text exposition format, version
//! 0.0.4.
//!
//! Every series carries a `filter` label (the filter that owns it) before
//! its own labels. Series of one metric name from every filter form one
//! family under one `# TYPE` line. A name is registered per filter, so two
//! filters could use one name for different kinds; a family has one type,
//! so the first kind wins (counter, then gauge, then histogram) and the other
//! series are left out, named in a comment line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::wasm::{
    FILTER_EXCHANGES, FILTER_FAILURES, FILTER_TRAPS, HistogramSnapshot, MetricKey, MetricsSnapshot,
};

/// The `Content-Type` of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One family's kind and the samples of its series.
enum Family<'a> {
    Counter(Vec<(&'a MetricKey, u64)>),
    Gauge(Vec<(&'a MetricKey, i64)>),
    Histogram(Vec<(&'a MetricKey, &'a HistogramSnapshot)>),
}

impl Family<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Family::Counter(_) => "counter",
            Family::Gauge(_) => "gauge",
            Family::Histogram(_) => "histogram",
        }
    }
}

/// `# HELP` text of the host's own metrics.
fn help(name: &str) -> Option<&'static str> {
    match name {
        FILTER_EXCHANGES => Some("Exchanges that entered a filter chain holding the filter."),
        FILTER_FAILURES => Some("Failed filter calls of every kind, traps included."),
        FILTER_TRAPS => Some("Filter calls that trapped."),
        _ => None,
    }
}

/// Renders `snapshot` in the Prometheus text format: families sorted by
/// name, series by filter and labels.
pub(crate) fn render(snapshot: &MetricsSnapshot) -> String {
    let mut families: BTreeMap<&str, Family<'_>> = BTreeMap::new();
    let mut omitted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in &snapshot.counters {
        let family = families
            .entry(&key.name)
            .or_insert_with(|| Family::Counter(Vec::new()));
        match family {
            Family::Counter(series) => series.push((key, *value)),
            _ => omitted.entry(&key.name).or_default().push(&key.filter),
        }
    }
    for (key, value) in &snapshot.gauges {
        let family = families
            .entry(&key.name)
            .or_insert_with(|| Family::Gauge(Vec::new()));
        match family {
            Family::Gauge(series) => series.push((key, *value)),
            _ => omitted.entry(&key.name).or_default().push(&key.filter),
        }
    }
    for (key, value) in &snapshot.histograms {
        let family = families
            .entry(&key.name)
            .or_insert_with(|| Family::Histogram(Vec::new()));
        match family {
            Family::Histogram(series) => series.push((key, value)),
            _ => omitted.entry(&key.name).or_default().push(&key.filter),
        }
    }

    let mut out = String::new();
    for (name, family) in &mut families {
        if let Some(text) = help(name) {
            let _ = writeln!(out, "# HELP {name} {text}");
        }
        let _ = writeln!(out, "# TYPE {name} {}", family.type_name());
        if let Some(filters) = omitted.get_mut(name) {
            filters.sort_unstable();
            filters.dedup();
            let _ = writeln!(
                out,
                "# weir: left out series of filters {} that use {name} as another kind than {}",
                filters.join(", ").replace('\n', " "),
                family.type_name()
            );
        }
        match family {
            Family::Counter(series) => {
                for (key, value) in series.iter() {
                    sample(&mut out, name, "", key, false, None, &value.to_string());
                }
            }
            Family::Gauge(series) => {
                for (key, value) in series.iter() {
                    sample(&mut out, name, "", key, false, None, &value.to_string());
                }
            }
            Family::Histogram(series) => {
                for (key, hist) in series.iter() {
                    for (bound, count) in &hist.buckets {
                        let le = format_float(*bound);
                        sample(
                            &mut out,
                            name,
                            "_bucket",
                            key,
                            true,
                            Some(&le),
                            &count.to_string(),
                        );
                    }
                    sample(
                        &mut out,
                        name,
                        "_sum",
                        key,
                        true,
                        None,
                        &format_float(hist.sum),
                    );
                    sample(
                        &mut out,
                        name,
                        "_count",
                        key,
                        true,
                        None,
                        &hist.count.to_string(),
                    );
                }
            }
        }
    }
    out
}

/// One line: `name{filter="..",labels..,le=".."} value`.
///
/// The registry does not stop a guest from repeating a label name or from
/// naming a histogram label `le`; either would make the whole scrape
/// unparsable. So a repeated name is dropped after its first value, and a
/// histogram's own `le` label becomes `exported_le` (Prometheus' convention
/// for clashing labels) on all of its lines.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    key: &MetricKey,
    histogram: bool,
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    out.push_str(suffix);
    out.push_str("{filter=\"");
    escape_into(out, &key.filter);
    out.push('"');
    let mut written: Vec<&str> = vec!["filter"];
    for (label, label_value) in &key.labels {
        let label = if histogram && label == "le" {
            "exported_le"
        } else {
            label.as_str()
        };
        if written.contains(&label) {
            continue;
        }
        written.push(label);
        out.push(',');
        out.push_str(label);
        out.push_str("=\"");
        escape_into(out, label_value);
        out.push('"');
    }
    if let Some(le) = le {
        out.push_str(",le=\"");
        out.push_str(le);
        out.push('"');
    }
    out.push_str("} ");
    out.push_str(value);
    out.push('\n');
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, else decimal.
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::MetricsRegistry;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_every_kind_with_filter_labels() {
        let reg = MetricsRegistry::new();
        reg.counter_add("b", "hits_total", &labels(&[("code", "200")]), 2);
        reg.counter_add("a", "hits_total", &[], 5);
        reg.gauge_set("a", "queue", &labels(&[("q", "x")]), -3);
        for v in [0.00390625, 0.25, 20.0] {
            reg.histogram_record("a", "latency", &[], v);
        }
        let text = render(&reg.snapshot());
        let expected = "\
# TYPE hits_total counter
hits_total{filter=\"a\"} 5
hits_total{filter=\"b\",code=\"200\"} 2
# TYPE latency histogram
latency_bucket{filter=\"a\",le=\"0.005\"} 1
latency_bucket{filter=\"a\",le=\"0.01\"} 1
latency_bucket{filter=\"a\",le=\"0.025\"} 1
latency_bucket{filter=\"a\",le=\"0.05\"} 1
latency_bucket{filter=\"a\",le=\"0.1\"} 1
latency_bucket{filter=\"a\",le=\"0.25\"} 2
latency_bucket{filter=\"a\",le=\"0.5\"} 2
latency_bucket{filter=\"a\",le=\"1\"} 2
latency_bucket{filter=\"a\",le=\"2.5\"} 2
latency_bucket{filter=\"a\",le=\"5\"} 2
latency_bucket{filter=\"a\",le=\"10\"} 2
latency_bucket{filter=\"a\",le=\"+Inf\"} 3
latency_sum{filter=\"a\"} 20.25390625
latency_count{filter=\"a\"} 3
# TYPE queue gauge
queue{filter=\"a\",q=\"x\"} -3
";
        assert_eq!(text, expected);
    }

    #[test]
    fn label_values_and_filter_names_are_escaped() {
        let reg = MetricsRegistry::new();
        reg.counter_add(
            "odd \"name\"",
            "c",
            &labels(&[("path", "C:\\dir\n\"x\"")]),
            1,
        );
        let text = render(&reg.snapshot());
        assert_eq!(
            text,
            "# TYPE c counter\nc{filter=\"odd \\\"name\\\"\",path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n"
        );
    }

    #[test]
    fn host_metrics_have_help_and_their_labels() {
        let reg = MetricsRegistry::new();
        reg.record_failure("auth", "request_headers", "fail_open");
        reg.record_trap("auth", "request_headers");
        let text = render(&reg.snapshot());
        assert!(
            text.contains(
                "# HELP weir_filter_traps_total Filter calls that trapped.\n\
                 # TYPE weir_filter_traps_total counter\n\
                 weir_filter_traps_total{filter=\"auth\",phase=\"request_headers\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "weir_filter_failures_total{filter=\"auth\",mode=\"fail_open\",phase=\"request_headers\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn one_name_used_as_two_kinds_keeps_one_type() {
        let reg = MetricsRegistry::new();
        reg.counter_add("a", "m", &[], 1);
        reg.gauge_set("b", "m", &[], 7);
        let text = render(&reg.snapshot());
        assert_eq!(text.matches("# TYPE m ").count(), 1, "{text}");
        assert!(text.contains("# TYPE m counter\n"), "{text}");
        assert!(text.contains("m{filter=\"a\"} 1\n"), "{text}");
        assert!(!text.contains("filter=\"b\""), "{text}");
        assert!(
            text.contains("# weir: left out series of filters b "),
            "{text}"
        );
    }

    #[test]
    fn clashing_label_names_cannot_break_the_scrape() {
        let reg = MetricsRegistry::new();
        // The registry accepts these; the exposition must stay parsable.
        reg.counter_add("f", "c", &labels(&[("a", "1"), ("a", "2")]), 1);
        reg.histogram_record("f", "h", &labels(&[("le", "mine")]), 20.0);
        let text = render(&reg.snapshot());
        assert!(text.contains("\nc{filter=\"f\",a=\"1\"} 1\n"), "{text}");
        assert!(
            text.contains("h_bucket{filter=\"f\",exported_le=\"mine\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("h_count{filter=\"f\",exported_le=\"mine\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn special_floats_use_prometheus_spelling() {
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(2.5), "2.5");
        assert_eq!(format_float(1.0), "1");
    }

    #[test]
    fn an_empty_registry_renders_nothing() {
        assert_eq!(render(&MetricsSnapshot::default()), "");
    }
}
