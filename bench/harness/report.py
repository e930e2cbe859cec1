"""results.md: the tables a reader needs, and the context to judge them."""

from __future__ import annotations

from .loads import Load
from .targets import TargetSpec


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _spread(s: dict, scale: float = 1.0, digits: int = 0) -> str:
    """`median (min–max)`."""
    if s.get("median") is None:
        return "–"
    med, lo, hi = (s[k] / scale for k in ("median", "min", "max"))
    return f"{med:,.{digits}f} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def load_table(load: Load, rows: dict, specs: list[TargetSpec]) -> list[str]:
    lines = [
        "| target | req/s median (min–max) | × direct | × Envoy | p50 ms | p99 ms median (min–max) "
        "| proxy CPU µs/req | CPU × Envoy | upstream CPU µs/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for spec in specs:
        row = rows.get(spec.key)
        if row is None:
            continue
        peer = f" (vs {row['envoy_peer']})" if row.get("envoy_peer") else ""
        # The direct target is its own upstream: the shared one sits idle then.
        upstream_cpu = "–" if spec.kind == "direct" else _fmt(row["upstream_cpu_us_per_req"]["median"], 1)
        lines.append(
            f"| {spec.label} | {_spread(row['rps'])} | {_ratio(row.get('rps_vs_direct'))} "
            f"| {_ratio(row.get('rps_vs_envoy'))}{peer} | {_fmt(row['p50_us']['median'] / 1000, 3)} "
            f"| {_spread(row['p99_us'], 1000, 3)} | {_spread(row['cpu_us_per_req'], 1, 1)} "
            f"| {_ratio(row.get('cpu_vs_envoy'))} | {upstream_cpu} "
            f"| {row['errors']} |")
    return lines


def resources_table(phase: dict, summary: dict, specs: list[TargetSpec], load_list: list[Load]) -> list[str]:
    """Peak RSS during each load (and the highest), with the process shape."""
    measured = [ld for ld in load_list if summary.get(ld.key)]
    lines = ["| target | " + " | ".join(f"peak RSS MiB, `{ld.key}`" for ld in measured)
             + " | highest | processes | threads | thread names |",
             "|---|" + "---:|" * len(measured) + "---:|---:|---:|---|"]
    for spec in specs:
        peaks = {ld.key: summary[ld.key][spec.key]["peak_rss_kib"]
                 for ld in measured if spec.key in summary[ld.key]}
        shape = (phase.get("shapes") or {}).get(spec.key)
        if not peaks or not shape:
            continue
        names = ", ".join(f"{name}×{count}" if count > 1 else name
                          for name, count in sorted(shape["thread_names"].items()))
        cells = " | ".join(f"{peaks[ld.key] / 1024:,.1f}" if ld.key in peaks else "–" for ld in measured)
        lines.append(f"| {spec.label} | {cells} | {max(peaks.values()) / 1024:,.1f} "
                     f"| {shape['processes']} | {shape['threads']} | {names} |")
    cumulative = [ld.key for ld in measured
                  if not all(row["rss_reset"] for row in summary[ld.key].values())]
    if cumulative:
        lines += ["", "VmHWM could not be reset before some measurements (" + ", ".join(cumulative)
                  + "): their peak counts from the process's start."]
    return lines


def markdown(result: dict, specs: list[TargetSpec], load_list: list[Load]) -> str:
    s = result["settings"]
    m = result["machine"]
    out = [f"# Weir benchmark — {result['started']}", ""]
    if result.get("smoke"):
        out += ["> **Smoke run**: durations too short for the numbers to mean anything; "
                "it only shows that the harness works end to end.", ""]
    out += [
        "## Machine", "",
        f"- CPU: {m['cpu_model']}, {m['cores']} cores; memory {m['memory']}",
        f"- Kernel {m['kernel']} ({m['os']})",
        f"- Load average at start: {m['loadavg_at_start']}; at end: {result.get('loadavg_at_end', '?')}",
        "",
        "## Versions", "",
    ]
    out += [f"- {name}: {version}" for name, version in result["versions"].items()]
    out += [
        "",
        "## Method", "",
        f"- {s['rounds']} round(s) of {s['duration']} s per (load, target), interleaved "
        f"(every target once per load before the next round; start rotated each round); "
        f"{s['warmup']} s wrk warm-up per target first. Figures: median (min–max) over rounds.",
        "- Loads: " + "; ".join(f"`{ld.key}` = {ld.title} ({_load_cmd(ld, s)})" for ld in load_list) + ".",
        f"- Upstream: `bench-upstream` (Rust, hyper), {s['upstream_threads']} thread(s), "
        f"{s['body_bytes']}-byte body, keep-alive, on the load generator's core(s). Every proxy talks "
        "HTTP/1.1 keep-alive to it. The `direct` row is a second instance of it placed like a proxy "
        "(the proxy's cores, one thread per worker) and loaded directly: the ceiling a trivial "
        "server reaches in that seat.",
        "- Header work: each filter adds one request header (`x-bench-req-N`) and one response "
        "header (`x-bench-resp-N`); checked once per target before measuring.",
        "- Proxy CPU µs/req: utime+stime of all the proxy's processes (from /proc) during the "
        "measurement, divided by the requests completed. Peak RSS: VmHWM summed over its processes, "
        "restarted before each measurement (`/proc/PID/clear_refs`), so it is the peak during that "
        "load, not at start-up; the highest over rounds is shown.",
        "- Errors: non-2xx responses plus socket errors/timeouts, summed over rounds.",
        "- × direct: req/s relative to the upstream alone. × Envoy: relative to Envoy with the same "
        "number of filters (nginx, HAProxy and Pingora against Envoy with none).",
        "",
    ]
    for phase in result["phases"]:
        w = phase["workers"]
        out += [f"## {w} worker{'s' if w > 1 else ''} per proxy", "",
                f"Proxy pinned to CPU(s) `{phase['proxy_cpus'] or 'any'}`; load generator and upstream "
                f"on `{phase['loadgen_cpus'] or 'any'}`.", ""]
        for load in load_list:
            rows = phase["summary"].get(load.key, {})
            if not rows:
                continue
            out += [f"### {load.title}", ""] + load_table(load, rows, specs) + [""]
        out += ["### Resources", ""] + resources_table(phase, phase["summary"], specs, load_list) + [""]
        if phase["unavailable"]:
            out += ["### Not measured", ""]
            out += [f"- `{key}`: {_oneline(reason)}" for key, reason in phase["unavailable"].items()]
            out += [""]
    out += ["## Caveats", "",
            "- Shared machine: load generator, upstream and proxy compete for the same few cores, "
            "and anything else running (compiles) disturbs them; compare the load average above. "
            "Proxy CPU µs/request is the fairest figure: it does not depend on who got the cores.",
            "- A proxy whose req/s is close to `direct` is limited by the load generator and upstream, "
            "not by itself: compare CPU µs/req instead.",
            "- Defaults kept for every proxy except workers, logging and upstream keep-alive; "
            "configs are in the run directory beside this file.", ""]
    return "\n".join(out)


def _oneline(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else text
    return first if len(first) < 400 else first[:400] + "…"


def _load_cmd(load: Load, s: dict) -> str:
    if load.tool == "wrk":
        return f"`wrk -t1 -c{load.connections} -d{s['duration']}s`"
    return f"`h2load -t1 -c{load.connections} -m{load.streams} -D{s['duration']}`"
