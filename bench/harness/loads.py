"""The load generators: wrk for HTTP/1.1, h2load for HTTP/2 cleartext.

Each load runs against one URL for a fixed duration and returns the same
record: requests, requests/s, p50/p99 latency (µs), and errors (non-2xx
responses plus socket errors), whatever the tool.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .procs import HarnessError

BENCH_DIR = Path(__file__).resolve().parent.parent
WRK_SCRIPT = BENCH_DIR / "scripts" / "wrk-report.lua"


@dataclass(frozen=True)
class Load:
    """One traffic shape."""

    key: str          # short id used in JSON and tables
    title: str        # human description
    tool: str         # "wrk" or "h2load"
    connections: int
    streams: int = 1  # h2load -m (concurrent streams per connection)


def standard_loads(conns: int, h2_streams: int) -> list[Load]:
    """The three loads of the main table."""
    return [
        Load("h1", f"HTTP/1.1 keep-alive, {conns} connections", "wrk", conns),
        Load("h1-c1", "HTTP/1.1, 1 connection (latency)", "wrk", 1),
        Load("h2", f"HTTP/2 cleartext, {conns} connections x {h2_streams} streams", "h2load",
             conns, h2_streams),
    ]


def run(load: Load, url: str, seconds: int, cpus: str | None, workdir: Path,
        timeout_extra: float = 30.0) -> dict:
    """Run `load` against `url` for `seconds`; pinned to `cpus` when given."""
    if load.tool == "wrk":
        return _wrk(load, url, seconds, cpus, timeout_extra)
    if load.tool == "h2load":
        return _h2load(load, url, seconds, cpus, workdir, timeout_extra)
    raise HarnessError(f"unknown load tool {load.tool!r}")


def _pinned(argv: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] + argv if cpus else argv


def _exec(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{argv[0]} did not finish within {timeout:.0f}s: {' '.join(argv)}") from None
    except FileNotFoundError:
        raise HarnessError(f"{argv[0]} is not installed (run.sh installs it unless BENCH_SKIP_INSTALL=1)") from None


def _wrk(load: Load, url: str, seconds: int, cpus: str | None, extra: float) -> dict:
    argv = _pinned(["wrk", "-t1", f"-c{load.connections}", f"-d{seconds}s", "--timeout", "5s",
                    "-s", str(WRK_SCRIPT), url], cpus)
    done = _exec(argv, seconds + extra)
    match = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or not match:
        raise HarnessError(f"wrk failed (status {done.returncode}) against {url}:\n"
                           f"{done.stdout[-800:]}{done.stderr[-800:]}")
    raw = json.loads(match.group(1))
    errors = sum(raw["errors"].values())
    duration = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / duration if duration > 0 else 0.0,
        "p50_us": raw["p50_us"],
        "p99_us": raw["p99_us"],
        "errors": errors,
        "error_detail": raw["errors"],
        "duration_s": duration,
    }


_H2_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                          r"(\d+) failed, (\d+) errored, (\d+) timeout")
_H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_H2_FINISHED = re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s")


def _h2load(load: Load, url: str, seconds: int, cpus: str | None, workdir: Path,
            extra: float) -> dict:
    log = workdir / "h2load-requests.tsv"
    argv = _pinned(["h2load", "-t1", f"-c{load.connections}", f"-m{load.streams}", f"-D{seconds}",
                    f"--log-file={log}", url], cpus)
    done = _exec(argv, seconds + extra)
    req = _H2_REQUESTS.search(done.stdout)
    status = _H2_STATUS.search(done.stdout)
    fin = _H2_FINISHED.search(done.stdout)
    if done.returncode != 0 or not (req and status and fin):
        raise HarnessError(f"h2load failed (status {done.returncode}) against {url}:\n"
                           f"{done.stdout[-800:]}{done.stderr[-800:]}")
    total, started, finished, ok, failed, errored, timed_out = map(int, req.groups())
    s2xx, s3xx, s4xx, s5xx = map(int, status.groups())
    duration = float(fin.group(1)) / (1000.0 if fin.group(2) == "ms" else 1.0)
    latencies = []
    try:
        with open(log) as f:
            for line in f:
                cols = line.split("\t")
                if len(cols) >= 3 and cols[1].strip() != "-1":
                    latencies.append(int(cols[2]))
    finally:
        log.unlink(missing_ok=True)
    latencies.sort()
    errors = failed + errored + timed_out + s3xx + s4xx + s5xx
    return {
        "requests": finished,
        "rps": finished / duration if duration > 0 else 0.0,
        "p50_us": percentile(latencies, 50),
        "p99_us": percentile(latencies, 99),
        "errors": errors,
        "error_detail": {"failed": failed, "errored": errored, "timeout": timed_out,
                         "3xx": s3xx, "4xx": s4xx, "5xx": s5xx, "2xx": s2xx},
        "duration_s": duration,
    }


def percentile(sorted_values: list[int], pct: float) -> int:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def check_h2(url: str, cpus: str | None = None) -> str | None:
    """A few h2c requests; None when all succeed with 2xx, else what went wrong."""
    done = _exec(_pinned(["h2load", "-n8", "-c1", "-m2", url], cpus), 30)
    req = _H2_REQUESTS.search(done.stdout)
    status = _H2_STATUS.search(done.stdout)
    if done.returncode == 0 and req and status and int(status.group(1)) == 8:
        return None
    lines = [line for line in done.stdout.splitlines() if "requests:" in line or "status codes" in line]
    return "h2c check failed: " + ("; ".join(lines) or (done.stderr.strip()[-300:] or "no output"))
