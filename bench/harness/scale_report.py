"""scale.md: the scale checks' figures, one table per check."""

from __future__ import annotations


def _mib(kib) -> str:
    return "–" if kib is None else f"{kib / 1024:,.1f}"


def _num(value, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _unavailable(rows: dict) -> list[str]:
    return [f"- `{key}`: {row['unavailable'].strip().splitlines()[0][:400]}"
            for key, row in rows.items() if "unavailable" in row]


def conns(section: dict) -> list[str]:
    n = section["connections"]
    out = [f"## {n:,} idle keep-alive connections", "",
           "Each connection sends one request, reads the response and stays open; RSS is read 1 s "
           "after the last one opened; then a second request on every connection proves it was "
           "still held.", "",
           "| target | opened | failed | still open | RSS before MiB | RSS held MiB | KiB per connection "
           "| seconds to open |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, row in section["rows"].items():
        if "unavailable" in row:
            continue
        out.append(f"| {key} | {row['opened']:,} | {row['failed']:,} | {row['still_open']:,} "
                   f"| {_mib(row['rss_before_kib'])} | {_mib(row['rss_after_kib'])} "
                   f"| {_num(row['kib_per_conn'], 2)} | {_num(row['open_seconds'], 1)} |")
    return out + [""] + _unavailable(section["rows"]) + [""]


def routes(section: dict) -> list[str]:
    n = section["routes"]
    out = [f"## {n:,} routes", "",
           f"Prefix routes `/r/0/` … `/r/{n - 1}/`; every request is for `/r/{n - 1}/`, so it matches "
           f"the last one. Load: {section['load']['title']}; median (min–max) over rounds.", "",
           "| target | req/s | × 1 route | p99 ms | proxy CPU µs/req | CPU × 1 route | errors |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for key, label in section["specs"].items():
        row = section["summary"].get(key)
        if row is None:
            continue
        rps, p99, cpu = row["rps"], row["p99_us"], row["cpu_us_per_req"]
        out.append(f"| {label} | {rps['median']:,.0f} ({rps['min']:,.0f}–{rps['max']:,.0f}) "
                   f"| {_ratio(row.get('rps_vs_one_route'))} | {p99['median'] / 1000:.3f} "
                   f"| {cpu['median']:.1f} | {_ratio(row.get('cpu_vs_one_route'))} | {row['errors']} |")
    out.append("")
    out += [f"- `{key}`: {reason.strip().splitlines()[0][:400]}" for key, reason in section["unavailable"].items()]
    return out + [""]


def _ratio(value) -> str:
    return "–" if value is None else f"{value:.2f}×"


def filters(section: dict) -> list[str]:
    n = section["filters"]
    out = [f"## {n} filters loaded", "",
           f"The same header filter configured {n} times (distinct ids), after a short load so every "
           "filter has run. RSS per filter = (RSS with {n} − RSS with none) / {n}.".replace("{n}", str(n)), "",
           "| target | RSS MiB | peak RSS MiB | KiB per filter | seconds to accept | warm-up req/s | errors |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for key, row in section["rows"].items():
        if "unavailable" in row:
            continue
        out.append(f"| {key} | {_mib(row['rss_kib'])} | {_mib(row['peak_rss_kib'])} "
                   f"| {_num(row.get('kib_per_filter'), 1)} | {_num(row['start_seconds'], 2)} "
                   f"| {_num(row['warm_rps'])} | {row['warm_errors']} |")
    return out + [""] + _unavailable(section["rows"]) + [""]


def markdown(result: dict) -> str:
    m = result["machine"]
    out = [f"# Weir scale checks — {result['started']}", ""]
    if result.get("smoke"):
        out += ["> **Smoke run**: short settings; figures only show the harness works.", ""]
    out += [f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory']}, kernel {m['kernel']}; "
            f"load average {m['loadavg_at_start']} at start, {result.get('loadavg_at_end', '?')} at end. "
            "One worker per proxy. Reported, not asserted.", "",
            "Versions: " + "; ".join(f"{k} {v}" for k, v in result["versions"].items()), ""]
    if "scale-conns" in result:
        out += conns(result["scale-conns"])
    if "scale-routes" in result:
        out += routes(result["scale-routes"])
    if "scale-filters" in result:
        out += filters(result["scale-filters"])
    return "\n".join(out)
