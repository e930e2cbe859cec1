"""Scale checks, reported and never asserted:

- `scale-conns`: N (default 10,000) idle keep-alive connections held open;
  RSS growth per connection.
- `scale-routes`: req/s with a 1,000-route config whose LAST route matches,
  against the same proxy with one route (interleaved rounds).
- `scale-filters`: RSS with 50 header filters loaded, against none; RSS per
  loaded filter and the time the proxy took to start accepting.

Weir is the subject; Envoy (and for connections nginx, HAProxy and Pingora) run the
same check as a reference point.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
from pathlib import Path

from . import loads, procs, runner, scale_report, sysinfo, targets
from .procs import HarnessError
from .targets import Context, TargetSpec, Tools


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard) if hard != resource.RLIM_INFINITY
                                                    else need, max(need, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        raise HarnessError(f"need {need} open files but the limit is {soft}; run `ulimit -n {need}` first")


# ---- idle connections ----------------------------------------------------

async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bool:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_ok = head.split(b" ", 2)[1].startswith(b"2")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status_ok


async def _hold_connections(port: int, count: int, path: str, batch: int,
                            measure) -> dict:
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failures = 0
    t0 = time.monotonic()

    async def one():
        nonlocal failures
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
            ok = await asyncio.wait_for(_request(reader, writer, path), 30)
            conns.append((reader, writer))
            if not ok:
                failures += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            failures += 1

    try:
        for start in range(0, count, batch):
            await asyncio.gather(*(one() for _ in range(min(batch, count - start))))
        opened_s = time.monotonic() - t0
        await asyncio.sleep(1.0)  # let the proxy settle (buffers returned, timers armed)
        figures = measure()
        # Prove the connections were really held: a second request on each.
        still = 0

        async def again(reader, writer):
            nonlocal still
            try:
                if await asyncio.wait_for(_request(reader, writer, path), 30):
                    still += 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                pass

        for start in range(0, len(conns), batch):
            await asyncio.gather(*(again(r, w) for r, w in conns[start:start + batch]))
    finally:
        for _, writer in conns:
            writer.close()
    return {"opened": len(conns), "failed": failures, "open_seconds": opened_s,
            "still_open": still, **figures}


def scale_conns(out: Path, settings: runner.Settings, tools: Tools) -> dict:
    count = int(os.environ.get("BENCH_IDLE_CONNS", "10000"))
    _raise_fd_limit(count + 1000)
    wanted = os.environ.get("BENCH_SCALE_TARGETS", "weir-0,nginx,haproxy,pingora,envoy-0").split(",")
    specs = [s for s in targets.standard_targets() if s.key in wanted]
    rows = {}
    for spec in specs:
        rows[spec.key] = _one_target(spec, out, settings, tools,
                                     lambda r, _ctx: _conn_check(r, count))
    return {"connections": count, "rows": rows}


def _conn_check(running: targets.Running, count: int) -> dict:
    pid = running.proc.pid
    before = procs.rss_kib(pid)

    def measure():
        return {"rss_after_kib": procs.rss_kib(pid)}

    res = asyncio.run(_hold_connections(running.port, count, running.spec.path, 250, measure))
    res["rss_before_kib"] = before
    res["kib_per_conn"] = (res["rss_after_kib"] - before) / max(res["opened"], 1)
    return res


def _one_target(spec: TargetSpec, out: Path, settings: runner.Settings, tools: Tools, check) -> dict:
    """Start upstream + one target (1 worker), run `check(running)`, stop both."""
    reason = spec.pending(tools)
    if reason:
        runner.log(f"  {spec.key}: pending: {reason}")
        return {"unavailable": "pending: " + reason}
    run_dir = out / "run" / spec.key
    run_dir.mkdir(parents=True, exist_ok=True)
    proxy_cpus, loadgen_cpus = runner.cpu_sets(1, settings.pin)
    upstream, port = targets.start_upstream(tools, run_dir / "upstream.log", loadgen_cpus,
                                            settings.upstream_threads, settings.body_bytes,
                                            settings.start_timeout)
    ctx = Context(tools, run_dir, port, proxy_cpus, loadgen_cpus, settings.start_timeout,
                  settings.envoy_runtime, settings.body_bytes)
    running = None
    try:
        t0 = time.monotonic()
        running = targets.start(spec, ctx, 1)
        start_s = time.monotonic() - t0
        targets.verify(running, loadgen_cpus)
        result = check(running, ctx)
        result["start_seconds"] = start_s
        runner.log(f"  {spec.key}: {json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})}")
        return result
    except HarnessError as err:
        runner.log(f"  {spec.key}: FAILED: {err}")
        return {"unavailable": f"failed: {err}"}
    finally:
        if running is not None:
            targets.stop(running)
        procs.stop(upstream)


# ---- loaded filters ------------------------------------------------------

def scale_filters(out: Path, settings: runner.Settings, tools: Tools) -> dict:
    n = int(os.environ.get("BENCH_SCALE_FILTERS", "50"))
    specs = [TargetSpec("weir-0", "Weir, 0 filters", "weir", 0),
             TargetSpec(f"weir-{n}", f"Weir, {n} filters", "weir", n),
             TargetSpec("envoy-0", "Envoy, 0 filters", "envoy", 0),
             TargetSpec(f"envoy-{n}", f"Envoy, {n} proxy-wasm filters", "envoy", n)]
    warm = loads.Load("warm", "warm-up", "wrk", settings.conns)

    def check(running: targets.Running, ctx: Context) -> dict:
        # Load so that every filter is instantiated for every connection pattern.
        res = loads.run(warm, running.url(), max(settings.warmup, 1), ctx.loadgen_cpus, ctx.run_dir)
        pid = running.proc.pid
        return {"rss_kib": procs.rss_kib(pid), "peak_rss_kib": procs.peak_rss_kib(pid),
                "warm_rps": res["rps"], "warm_errors": res["errors"]}

    rows = {spec.key: _one_target(spec, out, settings, tools, check) for spec in specs}
    for kind in ("weir", "envoy"):
        base, many = rows.get(f"{kind}-0", {}), rows.get(f"{kind}-{n}", {})
        if "rss_kib" in base and "rss_kib" in many:
            many["kib_per_filter"] = (many["rss_kib"] - base["rss_kib"]) / n
    return {"filters": n, "rows": rows}


# ---- many routes ---------------------------------------------------------

def scale_routes(out: Path, settings: runner.Settings, tools: Tools) -> dict:
    n = int(os.environ.get("BENCH_SCALE_ROUTES", "1000"))
    specs = [TargetSpec("weir-0", "Weir, 1 route", "weir", 0),
             TargetSpec(f"weir-r{n}", f"Weir, {n} routes (last matches)", "weir", 0, routes=n),
             TargetSpec("envoy-0", "Envoy, 1 route", "envoy", 0),
             TargetSpec(f"envoy-r{n}", f"Envoy, {n} routes (last matches)", "envoy", 0, routes=n)]
    load_list = [loads.standard_loads(settings.conns, settings.h2_streams)[0]]
    phase = runner.run_phase(specs, load_list, 1, settings, tools, out / "run")
    summary = runner.summarise(phase, specs, load_list)[load_list[0].key]
    for kind in ("weir", "envoy"):
        one, many = summary.get(f"{kind}-0"), summary.get(f"{kind}-r{n}")
        if one and many and one["rps"]["median"]:
            many["rps_vs_one_route"] = many["rps"]["median"] / one["rps"]["median"]
            many["cpu_vs_one_route"] = (many["cpu_us_per_req"]["median"] / one["cpu_us_per_req"]["median"]
                                        if one["cpu_us_per_req"]["median"] else None)
    return {"routes": n, "load": load_list[0].__dict__, "summary": summary,
            "unavailable": phase["unavailable"], "specs": {s.key: s.label for s in specs}}


# ---- entry point and report ----------------------------------------------

def main(command: str, out: Path, started: str, smoke: bool, settings: runner.Settings,
         tools: Tools, repo: Path) -> Path:
    result = {"started": started, "smoke": smoke, "settings": settings.__dict__,
              "machine": sysinfo.machine(), "versions": sysinfo.versions(tools, repo)}
    checks = ["scale-conns", "scale-routes", "scale-filters"] if command == "scale" else [command]
    for check in checks:
        runner.log(f"== {check}")
        fn = {"scale-conns": scale_conns, "scale-routes": scale_routes, "scale-filters": scale_filters}[check]
        result[check] = fn(out, settings, tools)
    result["loadavg_at_end"] = sysinfo.loadavg()
    (out / "scale.json").write_text(json.dumps(result, indent=1, default=str))
    md = out / "scale.md"
    md.write_text(scale_report.markdown(result))
    if not smoke and command == "scale":
        (out.parent / "latest-scale.md").write_text(md.read_text())
    return md
