"""`run.sh instructions`: user-space instructions per request, counted by
valgrind's callgrind, for Weir and its peers.

CPU time per request on a shared VM moves 10–20 % between rounds, so a change
worth 1–3 % cannot be seen in it. The number of instructions a proxy executes
per request is nearly deterministic: it tells whether a change removed work,
at a resolution of about 0.1 %. It is not time: it leaves out the kernel
(most of a proxy's CPU), cache misses and branch mispredictions, and under
valgrind every thread runs one at a time. Use it to compare builds and to see
where user-space work goes, next to the main table, never instead of it.

Each target runs under `valgrind --tool=callgrind` with one worker. After
`warm_requests` requests the counters are zeroed (`callgrind_control -z`),
h2load sends `requests` HTTP/1.1 requests on 32 connections, and the counters
are dumped (`callgrind_control -d`); a multi-process target (nginx's master
and worker) would be the sum of its processes; nginx runs without its master
here, because a worker that drops root for `nobody` cannot be driven. Weir runs with a small engine
(`wasm.max_instances`, `wasm.max_memory_mib`): valgrind cannot map the
default engine's 2 TiB reservation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from . import procs, report, runner, sysinfo, targets
from .procs import HarnessError
from .targets import TargetSpec, Tools

# What the engine gets under valgrind: enough for a few filters at one worker.
WEIR_ENGINE = "  max_instances: 64\n  max_memory_mib: 64\n"


def instruction_targets() -> list[TargetSpec]:
    """The floor of Weir's stack, Weir and Envoy with 0/1/3 filters, and the native peers."""
    by_key = {spec.key: spec for spec in targets.standard_targets() + targets.floor_targets()}
    return [by_key[k] for k in ("floor", "floor-hyper", "weir-0", "weir-1", "weir-3",
                                "nginx", "haproxy", "pingora", "envoy-0", "envoy-1", "envoy-3")]


def callgrind_totals(paths: list[Path]) -> int:
    """Sum of the `totals:` (or `summary:`) lines of callgrind dump files."""
    total = 0
    for path in paths:
        found = None
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                found = int(line.split()[1])
        if found is None:
            raise HarnessError(f"{path}: no totals line (not a callgrind dump?)")
        total += found
    return total


def _control(flag: str, pids: list[int]) -> list[subprocess.Popen]:
    """Ask each process for `flag` (-z zero, -d dump) without waiting: an idle
    process reads the request only when it next runs (at the next request)."""
    return [subprocess.Popen(["callgrind_control", flag, str(pid)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for pid in pids]


def _finish(controls: list[subprocess.Popen], what: str) -> None:
    for control in controls:
        try:
            control.wait(timeout=120)
        except subprocess.TimeoutExpired:
            control.kill()
            raise HarnessError(f"callgrind_control {what}: no answer in 120 s") from None


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _group_pids(pgid: int) -> list[int]:
    """The processes of one target (its process group): nginx is a master and a worker."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return sorted(pids)


def _h2load(url: str, requests: int, conns: int, cpus: str | None) -> int:
    argv = ["h2load", "--h1", f"-c{conns}", f"-n{requests}", url]
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800).stdout
    match = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not match:
        raise HarnessError(f"h2load printed no request counts: {out[-300:]!r}")
    return int(match.group(1))


def measure(spec: TargetSpec, ctx: targets.Context, requests: int, warm: int, conns: int,
            dumps: Path) -> dict:
    """Start `spec` under callgrind, run the load, return instructions per request.

    Only the processes that serve requests are counted (nginx's worker, not
    its master): those whose CPU time grows during the warm-up.
    """
    running = targets.start(spec, ctx, 1)
    try:
        targets.verify(running, ctx.loadgen_cpus)
        url = running.url()
        group = _group_pids(running.proc.pid)
        ticks = {pid: _cpu_ticks(pid) for pid in group}
        _h2load(url, warm, conns, ctx.loadgen_cpus)
        pids = [pid for pid in group if _cpu_ticks(pid) > ticks[pid]] or group
        zero = _control("-z", pids)
        # callgrind_control writes its request at once; give it that moment,
        # then the load's first request wakes an idle process to read it.
        time.sleep(1)
        done = _h2load(url, requests, conns, ctx.loadgen_cpus)
        before = set(dumps.iterdir())
        dump = _control("-d", pids)
        time.sleep(1)
        # Wakes idle processes so they read the dump request before serving it.
        _h2load(url, 1, 1, ctx.loadgen_cpus)
        _finish(zero, "-z")
        _finish(dump, "-d")
        new = [p for p in set(dumps.iterdir()) - before
               if p.name.split(".")[0] in {str(pid) for pid in pids}]
        if len(new) != len(pids):
            raise HarnessError(f"{spec.key}: {len(new)} callgrind dumps for {len(pids)} processes")
        total = callgrind_totals(new)
    finally:
        targets.stop(running)
    if done != requests:
        raise HarnessError(f"{spec.key}: {requests - done} of {requests} requests failed")
    return {"instructions": total, "requests": done, "per_request": total / done,
            "processes": len(pids)}


def markdown(result: dict, specs: list[TargetSpec]) -> str:
    m = result["machine"]
    lines = [f"# Instructions per request — {result['started']}", "",
             f"- CPU: {m['cpu_model']}, {m['cores']} cores; kernel {m['kernel']}",
             f"- {result['versions']['weir']}; {result['versions']['nginx']}; "
             f"{result['versions']['haproxy']}; {result['valgrind']}",
             f"- User-space instructions (callgrind `Ir`) per proxied HTTP/1.1 request: "
             f"{result['requests']} requests on {result['conns']} connections (h2load) after "
             f"{result['warm']} warm-up requests, one worker, {result['rounds']} round(s) each "
             "(median, min–max). The kernel's share (most of a proxy's CPU) is not counted; "
             "this is a low-noise measure of work done, not of time.", "",
             "| target | instructions / request | × nginx | × Weir, 0 filters |",
             "|---|---:|---:|---:|"]
    per = {k: runner.spread([s["per_request"] for s in v]) for k, v in result["samples"].items()}
    nginx = per.get("nginx", {}).get("median")
    weir0 = per.get("weir-0", {}).get("median")
    for spec in specs:
        if spec.key in per:
            s = per[spec.key]
            spread = f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"
            lines.append(f"| {spec.label} | {spread} | {report._ratio(s['median'] / nginx if nginx else None)} "
                         f"| {report._ratio(s['median'] / weir0 if weir0 else None)} |")
        elif spec.key in result["unavailable"]:
            lines.append(f"| {spec.label} | {result['unavailable'][spec.key]} | | |")
    return "\n".join(lines) + "\n"


def main(out: Path, started: str, smoke: bool, settings: runner.Settings, tools: Tools,
         repo: Path) -> Path:
    selected = os.environ.get("BENCH_TARGETS", "")
    specs = instruction_targets()
    if selected.strip():
        wanted = {w.strip() for w in selected.split(",")}
        specs = [s for s in specs if s.key in wanted]
    requests = int(os.environ.get("BENCH_IR_REQUESTS", "2000" if smoke else "20000"))
    warm = int(os.environ.get("BENCH_IR_WARM", "500" if smoke else "3000"))
    rounds = max(1, settings.rounds if not smoke else 1)
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    if valgrind.returncode != 0:
        raise HarnessError("valgrind is not installed (run.sh installs it)")
    proxy_cpus, loadgen_cpus = runner.cpu_sets(1, settings.pin)
    run_dir = out / "run"
    dumps = run_dir / "callgrind"
    dumps.mkdir(parents=True, exist_ok=True)
    # Any process that drops root still writes its own dump here.
    dumps.chmod(0o1777)
    upstream, up_port = targets.start_upstream(tools, run_dir / "upstream.log", loadgen_cpus,
                                               settings.upstream_threads, settings.body_bytes,
                                               settings.start_timeout)
    ctx = targets.Context(tools, run_dir, up_port, proxy_cpus, loadgen_cpus,
                          max(settings.start_timeout, 300.0), settings.envoy_runtime,
                          settings.body_bytes,
                          wrapper=["valgrind", "--tool=callgrind", "--dump-instr=no",
                                   f"--callgrind-out-file={dumps}/%p.out"],
                          weir_engine=WEIR_ENGINE, nginx_master=False)
    samples: dict[str, list[dict]] = {}
    unavailable: dict[str, str] = {}
    try:
        for round_no in range(rounds):
            for spec in specs:
                if spec.key in unavailable:
                    continue
                reason = spec.pending(tools)
                if reason:
                    unavailable[spec.key] = "pending: " + reason
                    continue
                try:
                    sample = measure(spec, ctx, requests, warm, settings.conns, dumps)
                except HarnessError as err:
                    unavailable[spec.key] = f"failed: {err}"
                    runner.log(f"  {spec.key:<11} FAILED: {err}")
                    continue
                samples.setdefault(spec.key, []).append(sample)
                runner.log(f"  round {round_no + 1}: {spec.key:<11} {sample['per_request']:,.0f} "
                           "instructions/request")
    finally:
        procs.stop(upstream)
    result = {"started": started, "smoke": smoke, "machine": sysinfo.machine(),
              "versions": sysinfo.versions(tools, repo), "valgrind": valgrind.stdout.strip(),
              "requests": requests, "warm": warm, "conns": settings.conns, "rounds": rounds,
              "samples": samples, "unavailable": unavailable}
    (out / "instructions.json").write_text(json.dumps(result, indent=1, default=str))
    md = out / "instructions.md"
    md.write_text(markdown(result, specs))
    if not smoke:
        (out.parent / "latest-instructions.md").write_text(md.read_text())
    return md
