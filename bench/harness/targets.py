"""The things being measured: the upstream itself ("direct"), Weir, nginx,
HAProxy, Pingora and Envoy — how each is configured, started and checked.

A target is described by a `TargetSpec` (what it is) and started into a
`Running` (its root process and ports). Configs are rendered from the
templates in bench/configs/ with string.Template; every port is chosen free
on 127.0.0.1 at run time.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import resource
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from . import loads, procs
from .procs import HarnessError

BENCH_DIR = Path(__file__).resolve().parent.parent
CONFIGS = BENCH_DIR / "configs"


@dataclass
class Tools:
    """Where the binaries and filter modules are."""

    upstream: Path
    weir: Path
    envoy: Path
    pingora: Path             # bench-pingora (bench/pingora), Pingora as a plain reverse proxy
    floor: Path               # bench-floor (bench/floor), the least a tokio proxy does per request
    weir_filter: Path         # bench-header component (wasm32-wasip2)
    proxy_wasm_filter: Path   # proxy-wasm-header module (wasm32-wasip1)
    nginx: str = "nginx"
    haproxy: str = "haproxy"
    weir_filter_pending: str | None = None  # why the Weir filter is not built, if it is not


@dataclass
class Context:
    """What every target start needs to know."""

    tools: Tools
    run_dir: Path
    upstream_port: int
    proxy_cpus: str | None
    loadgen_cpus: str | None
    start_timeout: float = 60.0
    envoy_runtime: str = "envoy.wasm.runtime.v8"
    body_bytes: int = 64
    wrapper: list[str] = field(default_factory=list)  # runs each proxy (e.g. valgrind)
    weir_engine: str = ""     # lines under Weir's `wasm:` (engine sizing)
    nginx_master: bool = True  # False: nginx serves from one process (`master_process off`)


@dataclass
class TargetSpec:
    """One benchmark target."""

    key: str
    label: str
    kind: str                 # direct | weir | nginx | haproxy | pingora | envoy | floor
    filters: int = 0          # header filters in the chain
    routes: int = 1           # routes in the config; requests match the last one
    envoy_peer: str | None = None  # the Envoy target to compare against
    execution: str = "yielding"  # Weir filters: `yielding` (a fiber per call) or `inline`
    server: str = "raw"       # floor targets: `raw` (own parse) or `hyper` (hyper's HTTP/1 server)

    @property
    def h2(self) -> bool:
        """Whether the target serves h2c (the floor speaks HTTP/1.1 only)."""
        return self.kind != "floor"

    @property
    def path(self) -> str:
        """The request path: it matches the last configured route."""
        return "/" if self.routes <= 1 else f"/r/{self.routes - 1}/"

    def pending(self, tools: Tools) -> str | None:
        """Why this target cannot run on this machine yet, or None."""
        if self.kind == "weir":
            if not tools.weir.exists():
                return f"weir binary not built ({tools.weir})"
            if self.filters and not tools.weir_filter.exists():
                return tools.weir_filter_pending or f"bench-header filter not built ({tools.weir_filter})"
        if self.kind == "pingora" and not tools.pingora.exists():
            return f"bench-pingora not built ({tools.pingora})"
        if self.kind == "floor" and not tools.floor.exists():
            return f"bench-floor not built ({tools.floor})"
        if self.kind == "envoy":
            if not tools.envoy.exists():
                return f"envoy binary not found ({tools.envoy})"
            if self.filters and not tools.proxy_wasm_filter.exists():
                return f"proxy-wasm-header filter not built ({tools.proxy_wasm_filter})"
        return None


@dataclass
class Running:
    """A started target."""

    spec: TargetSpec
    proc: procs.Proc          # the root process measured
    port: int
    h2_port: int
    config: Path | None = None
    info: dict = field(default_factory=dict)

    def url(self, h2: bool = False) -> str:
        return f"http://127.0.0.1:{self.h2_port if h2 else self.port}{self.spec.path}"


def standard_targets() -> list[TargetSpec]:
    """The main table's targets, in report order."""
    return [
        TargetSpec("direct", "direct (upstream)", "direct"),
        TargetSpec("weir-0", "Weir, 0 filters", "weir", 0, envoy_peer="envoy-0"),
        TargetSpec("weir-1", "Weir, 1 filter", "weir", 1, envoy_peer="envoy-1"),
        TargetSpec("weir-3", "Weir, 3 filters", "weir", 3, envoy_peer="envoy-3"),
        TargetSpec("weir-1i", "Weir, 1 filter, inline", "weir", 1, envoy_peer="envoy-1",
                   execution="inline"),
        TargetSpec("weir-3i", "Weir, 3 filters, inline", "weir", 3, envoy_peer="envoy-3",
                   execution="inline"),
        TargetSpec("nginx", "nginx", "nginx", envoy_peer="envoy-0"),
        TargetSpec("haproxy", "HAProxy", "haproxy", envoy_peer="envoy-0"),
        TargetSpec("pingora", "Pingora", "pingora", envoy_peer="envoy-0"),
        TargetSpec("envoy-0", "Envoy, 0 filters", "envoy", 0, envoy_peer="envoy-0"),
        TargetSpec("envoy-1", "Envoy, 1 proxy-wasm filter", "envoy", 1, envoy_peer="envoy-1"),
        TargetSpec("envoy-3", "Envoy, 3 proxy-wasm filters", "envoy", 3, envoy_peer="envoy-3"),
    ]


def floor_targets() -> list[TargetSpec]:
    """`run.sh floor`: Weir's empty chain between the floor of its own stack
    (tokio, with and without hyper's server side) and nginx / HAProxy."""
    by_key = {spec.key: spec for spec in standard_targets()}
    return [
        by_key["direct"],
        TargetSpec("floor", "tokio floor (own HTTP/1 parse)", "floor"),
        TargetSpec("floor-hyper", "tokio floor, hyper's HTTP/1 server", "floor", server="hyper"),
        by_key["weir-0"],
        by_key["nginx"],
        by_key["haproxy"],
    ]


def _nofile() -> int:
    """The open-file limit the proxies run with (run.sh raises the soft limit to the hard one)."""
    return min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 20)


def _render(name: str, **values) -> str:
    text = (CONFIGS / name).read_text()
    try:
        return Template(text).substitute({k: str(v) for k, v in values.items()})
    except (KeyError, ValueError) as err:
        raise HarnessError(f"template {CONFIGS / name}: bad or missing placeholder {err}") from None


def _weir_config(spec: TargetSpec, ctx: Context, port: int) -> str:
    filters = "".join("\n" + _render("weir-filter.yaml.tmpl", ID=i, MODULE=ctx.tools.weir_filter,
                                     EXECUTION=spec.execution).rstrip("\n")
                      for i in range(1, spec.filters + 1)) or " []"
    return _render("weir.yaml.tmpl", FILTER_COUNT=spec.filters, PORT=port,
                   CACHE_DIR=ctx.run_dir / "weir-module-cache", ENGINE=ctx.weir_engine,
                   UPSTREAM_PORT=ctx.upstream_port, FILTERS=filters,
                   ROUTES=_routes("weir-route.yaml.tmpl", spec.routes))


def _envoy_config(spec: TargetSpec, ctx: Context, port: int) -> str:
    wasm = "".join(_render("envoy-wasm-filter.yaml.tmpl", ID=i, MODULE=ctx.tools.proxy_wasm_filter,
                           WASM_RUNTIME=ctx.envoy_runtime)
                   for i in range(1, spec.filters + 1)).rstrip("\n")
    return _render("envoy.yaml.tmpl", FILTER_COUNT=spec.filters, PORT=port,
                   UPSTREAM_PORT=ctx.upstream_port, WASM_FILTERS=wasm,
                   ROUTES=_routes("envoy-route.yaml.tmpl", spec.routes))


def _routes(template: str, count: int) -> str:
    if count <= 1:
        return _render(template, INDEX=0, PREFIX="/").rstrip("\n")
    return "".join(_render(template, INDEX=i, PREFIX=f"/r/{i}/") for i in range(count)).rstrip("\n")


def start_upstream(tools: Tools, log: Path, cpus: str | None, threads: int, body_bytes: int,
                   timeout: float) -> tuple[procs.Proc, int]:
    """Start a bench-upstream on a free port and wait until it accepts."""
    (port,) = procs.free_ports(1)
    proc = procs.start("upstream", [str(tools.upstream), "--listen", f"127.0.0.1:{port}",
                                    "--threads", str(threads), "--body-bytes", str(body_bytes)],
                       log, cpus=cpus)
    procs.wait_for_port(proc, port, timeout)
    return proc, port


def start(spec: TargetSpec, ctx: Context, workers: int) -> Running:
    """Start `spec` with `workers` worker threads/processes and wait until it accepts."""
    run_dir = ctx.run_dir / f"{spec.key}-w{workers}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec.kind == "direct":
        # Its own upstream instance, placed like a proxy (same cores, `workers`
        # threads), so that `direct` is the ceiling a trivial server reaches there.
        proc, port = start_upstream(ctx.tools, run_dir / "output.log", ctx.proxy_cpus, workers,
                                    ctx.body_bytes, ctx.start_timeout)
        return Running(spec, proc, port, port)
    port, h2_port = procs.free_ports(2)
    log = run_dir / "output.log"
    env: dict[str, str] = {}
    if spec.kind == "weir":
        config = run_dir / "weir.yaml"
        config.write_text(_weir_config(spec, ctx, port))
        h2_port = port
        # As an operator would before a deploy: `weir validate` compiles the
        # filters into the module cache, so the proxy starts without compiling.
        subprocess.run([str(ctx.tools.weir), "validate", "--config", str(config)], check=True,
                       stdout=subprocess.DEVNULL, timeout=ctx.start_timeout)
        argv = [str(ctx.tools.weir), "run", "--config", str(config)]
        # Worker threads (`weir run --workers` reads this variable too).
        env = {"TOKIO_WORKER_THREADS": str(workers), "RUST_LOG": os.environ.get("BENCH_WEIR_LOG", "warn")}
    elif spec.kind == "nginx":
        config = run_dir / "nginx.conf"
        config.write_text(_render("nginx.conf.tmpl", WORKERS=workers, RUN_DIR=run_dir, PORT=port,
                                  MASTER_PROCESS="on" if ctx.nginx_master else "off",
                                  H2_PORT=h2_port, UPSTREAM_PORT=ctx.upstream_port, NOFILE=_nofile(),
                                  WORKER_CONNECTIONS=_nofile() - 100))
        argv = [ctx.tools.nginx, "-p", str(run_dir), "-c", str(config)]
    elif spec.kind == "haproxy":
        config = run_dir / "haproxy.cfg"
        config.write_text(_render("haproxy.cfg.tmpl", WORKERS=workers, RUN_DIR=run_dir, PORT=port,
                                  UPSTREAM_PORT=ctx.upstream_port, NOFILE=_nofile(), MAXCONN=10500))
        h2_port = port
        argv = [ctx.tools.haproxy, "-db", "-f", str(config)]
    elif spec.kind == "pingora":
        # HTTP/1.1 and h2c on one port; `threads` is Pingora's worker count.
        h2_port = port
        config = None  # configured by its command line
        argv = [str(ctx.tools.pingora), "--listen", f"127.0.0.1:{port}",
                "--upstream", f"127.0.0.1:{ctx.upstream_port}", "--threads", str(workers),
                "--run-dir", str(run_dir)]
    elif spec.kind == "floor":
        if workers != 1:
            raise HarnessError(f"{spec.key}: bench-floor runs one thread only, not {workers}")
        h2_port = port
        config = None  # configured by its command line
        argv = [str(ctx.tools.floor), "--listen", f"127.0.0.1:{port}",
                "--upstream", f"127.0.0.1:{ctx.upstream_port}", "--server", spec.server]
    elif spec.kind == "envoy":
        config = run_dir / "envoy.yaml"
        config.write_text(_envoy_config(spec, ctx, port))
        h2_port = port
        argv = [str(ctx.tools.envoy), "-c", str(config), "--concurrency", str(workers),
                "--disable-hot-restart", "-l", "warn"]
    else:
        raise HarnessError(f"unknown target kind {spec.kind!r}")
    proc = procs.start(spec.key, ctx.wrapper + argv, log, cpus=ctx.proxy_cpus, env=env, cwd=run_dir)
    running = Running(spec, proc, port, h2_port, config=config)
    try:
        procs.wait_for_port(proc, port, ctx.start_timeout)
        if h2_port != port:
            procs.wait_for_port(proc, h2_port, ctx.start_timeout)
    except HarnessError:
        procs.stop(proc)
        raise
    return running


def stop(running: Running) -> None:
    procs.stop(running.proc)


def verify(running: Running, loadgen_cpus: str | None) -> None:
    """One HTTP/1.1 request proving the header work happens, and a few h2c requests."""
    spec = running.spec
    want = {f"x-bench-req-{i}" for i in range(1, spec.filters + 1)}
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    try:
        conn.request("GET", spec.path, headers={"x-bench-verify": "1"})
        resp = conn.getresponse()
        resp.read()
    except OSError as err:
        raise HarnessError(f"{spec.key}: check request failed: {err}") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise HarnessError(f"{spec.key}: check request got status {resp.status}, want 200")
    seen = {name for name in (resp.getheader("x-bench-seen") or "").split(",") if name}
    if seen != want:
        raise HarnessError(f"{spec.key}: upstream saw request headers {sorted(seen)}, want {sorted(want)}")
    missing = [f"x-bench-resp-{i}" for i in range(1, spec.filters + 1)
               if resp.getheader(f"x-bench-resp-{i}") is None]
    if missing:
        raise HarnessError(f"{spec.key}: response lacks headers {missing}")
    problem = loads.check_h2(running.url(h2=True), loadgen_cpus) if spec.h2 else None
    if problem:
        raise HarnessError(f"{spec.key}: {problem}")
