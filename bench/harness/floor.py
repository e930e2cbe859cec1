"""`run.sh floor`: where Weir's empty chain sits between the floor of its own
stack and nginx / HAProxy.

Two `bench-floor` targets bound what any proxy on tokio can reach on this
machine: `floor` parses and forwards HTTP/1.1 itself, `floor-hyper` serves
the client side with hyper's HTTP/1 server (a `HeaderMap` per request and
response). Measured like the main table (one worker pinned, interleaved
rounds, CPU from /proc), with the CPU split into user and system time, on
HTTP/1.1 only: the floor speaks nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import loads, report, runner, sysinfo, targets
from .targets import Tools


def _row(label: str, samples: list[dict], nginx_cpu: float | None) -> str:
    def median(key: str) -> float | None:
        return runner.spread([s[key] for s in samples])["median"]
    rps = runner.spread([s["rps"] for s in samples])
    cpu = runner.spread([s["cpu_us_per_req"] for s in samples])
    vs_nginx = cpu["median"] / nginx_cpu if nginx_cpu else None
    return (f"| {label} | {report._spread(rps)} | {report._spread(cpu, digits=2)} "
            f"| {report._fmt(median('user_us_per_req'), 2)} | {report._fmt(median('system_us_per_req'), 2)} "
            f"| {report._ratio(vs_nginx)} | {sum(s['errors'] for s in samples)} |")


def markdown(result: dict, specs: list[targets.TargetSpec], load_list: list[loads.Load]) -> str:
    m, phase = result["machine"], result["phases"][0]
    lines = [f"# Weir against the floor of its stack — {result['started']}", "",
             f"- CPU: {m['cpu_model']}, {m['cores']} cores; kernel {m['kernel']}; "
             f"load average {m['loadavg_at_start']} at start, {result['loadavg_at_end']} at end",
             f"- {result['versions']['weir']}; {result['versions']['nginx']}; {result['versions']['haproxy']}",
             f"- {result['settings']['rounds']} interleaved rounds of {result['settings']['duration']} s, "
             f"medians (min–max); proxy pinned to CPU `{phase['proxy_cpus']}`, load generator and "
             f"upstream on `{phase['loadgen_cpus']}`; one worker each.",
             "- `floor`: bench-floor parsing and forwarding HTTP/1.1 itself (httparse, one keep-alive "
             "upstream connection per client connection). `floor-hyper`: the same with hyper's HTTP/1 "
             "server on the client side. Neither adds or removes a header, routes, times out or counts "
             "anything: they are what the stack costs, not proxies.", ""]
    for load in load_list:
        lines += [f"## {load.title}", "",
                  "| target | req/s | proxy CPU µs/req | user | system | CPU × nginx | errors |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        nginx = phase["samples"].get("nginx", {}).get(load.key)
        nginx_cpu = runner.spread([s["cpu_us_per_req"] for s in nginx])["median"] if nginx else None
        for spec in specs:
            samples = phase["samples"].get(spec.key, {}).get(load.key)
            if samples:
                lines.append(_row(spec.label, samples, nginx_cpu))
            elif spec.key in phase["unavailable"]:
                lines.append(f"| {spec.label} | {phase['unavailable'][spec.key]} | | | | | |")
        lines.append("")
    return "\n".join(lines)


def main(out: Path, started: str, smoke: bool, settings: runner.Settings, tools: Tools,
         repo: Path) -> Path:
    specs = targets.floor_targets()
    load_list = [ld for ld in loads.standard_loads(settings.conns, settings.h2_streams)
                 if ld.tool == "wrk"]
    result = {"started": started, "smoke": smoke, "settings": settings.__dict__,
              "machine": sysinfo.machine(), "versions": sysinfo.versions(tools, repo),
              "loads": [ld.__dict__ for ld in load_list]}
    result["phases"] = [runner.run_phase(specs, load_list, 1, settings, tools, out / "run")]
    result["loadavg_at_end"] = sysinfo.loadavg()
    (out / "floor.json").write_text(json.dumps(result, indent=1, default=str))
    md = out / "floor.md"
    md.write_text(markdown(result, specs, load_list))
    if not smoke:
        (out.parent / "latest-floor.md").write_text(md.read_text())
    return md
