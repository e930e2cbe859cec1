"""The measurement loop: start the upstream and every target, then run every
(load, target) pair interleaved — round 1: A B C …, round 2: B C … A, … —
so that slow drift on a shared machine (other jobs, thermal, caches) spreads
over all targets instead of landing on one.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import loads, procs, targets
from .procs import HarnessError
from .targets import Context, Running, TargetSpec, Tools


@dataclass
class Settings:
    duration: int            # seconds per measurement
    rounds: int
    warmup: int              # seconds of wrk per target before round 1 (0: none)
    conns: int
    h2_streams: int
    pin: bool
    upstream_threads: int
    body_bytes: int
    start_timeout: float
    envoy_runtime: str


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_sets(workers: int, pin: bool, ncpu: int | None = None) -> tuple[str | None, str | None]:
    """(proxy cpus, load generator + upstream cpus) for taskset, or None for unpinned.

    The proxy gets the last `workers` cores to itself; the load generator and
    the upstream share the rest. With no core left over, nothing is pinned.
    """
    ncpu = ncpu or os.cpu_count() or 1
    if not pin or workers >= ncpu:
        return None, None
    proxy = list(range(ncpu - workers, ncpu))
    rest = list(range(0, ncpu - workers))
    return ",".join(map(str, proxy)), ",".join(map(str, rest))


def start_targets(specs: list[TargetSpec], ctx: Context, workers: int) -> tuple[list[Running], dict[str, str]]:
    """Start and check every target; the ones that cannot run are returned with a reason."""
    running: list[Running] = []
    unavailable: dict[str, str] = {}
    for spec in specs:
        reason = spec.pending(ctx.tools)
        if reason:
            unavailable[spec.key] = "pending: " + reason
            log(f"  {spec.key:<9} pending: {reason}")
            continue
        try:
            r = targets.start(spec, ctx, workers)
            try:
                targets.verify(r, ctx.loadgen_cpus)
            except HarnessError:
                targets.stop(r)
                raise
        except HarnessError as err:
            unavailable[spec.key] = f"failed: {err}"
            log(f"  {spec.key:<9} FAILED: {err}")
            continue
        r.info["shape"] = procs.shape(r.proc.pid)
        log(f"  {spec.key:<9} ready on :{r.port}" + (f" (h2c :{r.h2_port})" if r.h2_port != r.port else "")
            + f" — {r.info['shape']['processes']} process(es), {r.info['shape']['threads']} thread(s)")
        running.append(r)
    return running, unavailable


def measure(r: Running, load: loads.Load, seconds: int, ctx: Context, upstream: procs.Proc) -> dict:
    """One measurement: the load's own figures plus CPU/request and peak RSS from /proc.

    The peak RSS is this load's own: VmHWM is restarted just before it, so
    start-up and earlier loads do not count (unless the kernel refuses the
    reset, which `rss_reset` records).
    """
    rss_reset = procs.reset_peak_rss(r.proc.pid)
    (user0, sys0), up0 = procs.cpu_split(r.proc.pid), procs.cpu_seconds(upstream.pid)
    t0 = time.monotonic()
    result = loads.run(load, r.url(h2=load.tool == "h2load"), seconds, ctx.loadgen_cpus, ctx.run_dir)
    wall = time.monotonic() - t0
    (user1, sys1), up1 = procs.cpu_split(r.proc.pid), procs.cpu_seconds(upstream.pid)
    cpu0, cpu1 = user0 + sys0, user1 + sys1
    n = max(result["requests"], 1)
    result["user_us_per_req"] = (user1 - user0) / n * 1e6
    result["system_us_per_req"] = (sys1 - sys0) / n * 1e6
    result["cpu_s"] = cpu1 - cpu0
    result["cpu_us_per_req"] = (cpu1 - cpu0) / n * 1e6
    result["cpu_util"] = (cpu1 - cpu0) / wall if wall > 0 else 0.0
    result["upstream_cpu_us_per_req"] = (up1 - up0) / n * 1e6
    result["peak_rss_kib"] = procs.peak_rss_kib(r.proc.pid)
    result["rss_reset"] = rss_reset
    return result


def run_phase(specs: list[TargetSpec], load_list: list[loads.Load], workers: int, settings: Settings,
              tools: Tools, run_dir: Path) -> dict:
    """Everything for one worker count: returns raw samples and who could not run."""
    proxy_cpus, loadgen_cpus = cpu_sets(workers, settings.pin)
    phase_dir = run_dir / f"workers-{workers}"
    phase_dir.mkdir(parents=True, exist_ok=True)
    log(f"== {workers} worker(s): proxy cpus {proxy_cpus or 'any'}, "
        f"load generator + upstream cpus {loadgen_cpus or 'any'}")
    upstream, up_port = targets.start_upstream(tools, phase_dir / "upstream.log", loadgen_cpus,
                                               settings.upstream_threads, settings.body_bytes,
                                               settings.start_timeout)
    ctx = Context(tools, phase_dir, up_port, proxy_cpus, loadgen_cpus, settings.start_timeout,
                  settings.envoy_runtime, settings.body_bytes)
    running: list[Running] = []
    samples: dict[str, dict[str, list[dict]]] = {}
    try:
        running, unavailable = start_targets(specs, ctx, workers)
        if settings.warmup > 0:
            warm = loads.Load("warmup", "warm-up", "wrk", settings.conns)
            for r in running:
                try:
                    loads.run(warm, r.url(), settings.warmup, loadgen_cpus, phase_dir)
                except HarnessError as err:
                    unavailable[r.spec.key] = f"failed during warm-up: {err}"
                    log(f"  {r.spec.key}: FAILED during warm-up: {err}")
        for rnd in range(settings.rounds):
            order = running[rnd % len(running):] + running[:rnd % len(running)] if running else []
            for load in load_list:
                for r in list(order):
                    if r.spec.key in unavailable:
                        continue
                    try:
                        if not r.proc.alive():
                            raise HarnessError(f"{r.spec.key} died (status {r.proc.popen.returncode}); "
                                               f"its log {r.proc.log} ends: {r.proc.tail()}")
                        res = measure(r, load, settings.duration, ctx, upstream)
                    except HarnessError as err:
                        unavailable[r.spec.key] = f"failed during round {rnd + 1}: {err}"
                        log(f"  {r.spec.key}: FAILED: {err}")
                        continue
                    res["round"] = rnd + 1
                    samples.setdefault(r.spec.key, {}).setdefault(load.key, []).append(res)
                    log(f"  round {rnd + 1}/{settings.rounds} {load.key:<6} {r.spec.key:<9} "
                        f"{res['rps']:>9.0f} req/s  p99 {res['p99_us'] / 1000:7.2f} ms  "
                        f"cpu {res['cpu_us_per_req']:6.1f} µs/req  errors {res['errors']}")
        shapes = {r.spec.key: r.info.get("shape") for r in running}
        configs = {r.spec.key: str(r.config) for r in running if r.config}
    finally:
        for r in running:
            targets.stop(r)
        procs.stop(upstream)
    return {"workers": workers, "proxy_cpus": proxy_cpus, "loadgen_cpus": loadgen_cpus,
            "samples": samples, "unavailable": unavailable, "shapes": shapes, "configs": configs}


# ---- statistics ----------------------------------------------------------

def spread(values: list[float]) -> dict:
    """Median, min and max of a list (empty → None)."""
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(phase: dict, specs: list[TargetSpec], load_list: list[loads.Load]) -> dict:
    """Per load and target: medians with min–max, error totals and ratios."""
    out: dict[str, dict] = {}
    for load in load_list:
        rows: dict[str, dict] = {}
        for spec in specs:
            runs = phase["samples"].get(spec.key, {}).get(load.key, [])
            if not runs:
                continue
            rows[spec.key] = {
                "rounds": len(runs),
                "rps": spread([r["rps"] for r in runs]),
                "p50_us": spread([r["p50_us"] for r in runs]),
                "p99_us": spread([r["p99_us"] for r in runs]),
                "cpu_us_per_req": spread([r["cpu_us_per_req"] for r in runs]),
                "cpu_util": spread([r["cpu_util"] for r in runs]),
                "upstream_cpu_us_per_req": spread([r["upstream_cpu_us_per_req"] for r in runs]),
                "peak_rss_kib": max(r["peak_rss_kib"] for r in runs),
                "rss_reset": all(r["rss_reset"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "requests": sum(r["requests"] for r in runs),
            }
        direct = rows.get("direct", {}).get("rps", {}).get("median")
        for spec in specs:
            row = rows.get(spec.key)
            if row is None:
                continue
            rps = row["rps"]["median"]
            row["rps_vs_direct"] = rps / direct if direct else None
            peer = rows.get(spec.envoy_peer or "")
            if peer and spec.kind != "envoy":
                row["envoy_peer"] = spec.envoy_peer
                row["rps_vs_envoy"] = rps / peer["rps"]["median"] if peer["rps"]["median"] else None
                pc = peer["cpu_us_per_req"]["median"]
                row["cpu_vs_envoy"] = row["cpu_us_per_req"]["median"] / pc if pc else None
        out[load.key] = rows
    return out
