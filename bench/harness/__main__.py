"""`python -m harness COMMAND` — normally run through bench/run.sh, which
installs and builds everything first. Settings come from BENCH_* variables
(see bench/README.md)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from . import floor, instructions, loads, procs, report, runner, scale, svg, sysinfo, targets
from .procs import HarnessError
from .targets import Tools

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent
COMMANDS = ("bench", "scale-conns", "scale-routes", "scale-filters", "scale", "floor", "instructions")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise HarnessError(f"{name}={raw!r}: expected a whole number") from None


def tools_from_env() -> Tools:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    venv_envoy = BENCH_DIR / ".venv/lib/python3.11/site-packages/envoy/_bin/envoy"
    return Tools(
        upstream=Path(os.environ.get("BENCH_UPSTREAM_BIN", target / "release/bench-upstream")),
        weir=Path(os.environ.get("BENCH_WEIR_BIN", target / "release/weir")),
        envoy=Path(os.environ.get("BENCH_ENVOY_BIN", venv_envoy)),
        pingora=Path(os.environ.get("BENCH_PINGORA_BIN", target / "release/bench-pingora")),
        floor=Path(os.environ.get("BENCH_FLOOR_BIN", target / "release/bench-floor")),
        weir_filter=Path(os.environ.get("BENCH_WEIR_FILTER", target / "wasm32-wasip2/filter/bench_header.wasm")),
        proxy_wasm_filter=Path(os.environ.get("BENCH_PROXY_WASM_FILTER",
                                              target / "wasm32-wasip1/filter/proxy_wasm_header.wasm")),
        weir_filter_pending=os.environ.get("BENCH_WEIR_FILTER_PENDING") or None,
    )


def settings_from_env() -> runner.Settings:
    return runner.Settings(
        duration=_env_int("BENCH_DURATION", 10),
        rounds=_env_int("BENCH_ROUNDS", 3),
        warmup=_env_int("BENCH_WARMUP", 2),
        conns=_env_int("BENCH_CONNS", 32),
        h2_streams=_env_int("BENCH_H2_STREAMS", 10),
        pin=os.environ.get("BENCH_PIN", "1") != "0",
        upstream_threads=_env_int("BENCH_UPSTREAM_THREADS", 1),
        body_bytes=_env_int("BENCH_BODY_BYTES", 64),
        start_timeout=float(_env_int("BENCH_START_TIMEOUT", 120)),
        envoy_runtime=os.environ.get("BENCH_ENVOY_WASM_RUNTIME", "envoy.wasm.runtime.v8"),
    )


def _selected(items, env_name: str, key=lambda x: x.key):
    wanted = [w.strip() for w in os.environ.get(env_name, "").split(",") if w.strip()]
    if not wanted:
        return items
    known = {key(i) for i in items}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise HarnessError(f"{env_name}: unknown {unknown}; choose from {sorted(known)}")
    return [i for i in items if key(i) in wanted]


def out_dir(kind: str) -> tuple[Path, str, bool]:
    smoke = os.environ.get("BENCH_SMOKE") == "1"
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    stamp = time.strftime("%Y-%m-%d_%H%M%S")
    base = BENCH_DIR / "results"
    name = f"{'smoke-' if smoke else ''}{stamp}{'' if kind == 'bench' else '-' + kind}"
    path = Path(os.environ.get("BENCH_OUT", base / name))
    path.mkdir(parents=True, exist_ok=True)
    return path, started, smoke


def _pid_file(out: Path) -> None:
    """Where started process groups are recorded: run.sh's file, so its trap can end them."""
    (out / "run").mkdir(parents=True, exist_ok=True)
    procs.set_pid_file(Path(os.environ.get("BENCH_PID_FILE") or out / "run" / "pids"))


def bench() -> Path:
    settings = settings_from_env()
    tools = tools_from_env()
    specs = _selected(targets.standard_targets(), "BENCH_TARGETS")
    load_list = _selected(loads.standard_loads(settings.conns, settings.h2_streams), "BENCH_LOADS")
    worker_counts = [int(w) for w in os.environ.get("BENCH_WORKERS", "1 2").split()]
    out, started, smoke = out_dir("bench")
    if settings.rounds < 3 and not smoke:
        runner.log(f"warning: BENCH_ROUNDS={settings.rounds}: medians of fewer than 3 rounds are fragile")
    _pid_file(out)
    runner.log(f"results → {out}")
    result = {"started": started, "smoke": smoke, "settings": settings.__dict__,
              "machine": sysinfo.machine(), "versions": sysinfo.versions(tools, REPO),
              "loads": [ld.__dict__ for ld in load_list], "phases": []}
    for workers in worker_counts:
        phase = runner.run_phase(specs, load_list, workers, settings, tools, out / "run")
        phase["summary"] = runner.summarise(phase, specs, load_list)
        result["phases"].append(phase)
    result["loadavg_at_end"] = sysinfo.loadavg()
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "results.md").write_text(report.markdown(result, specs, load_list))
    (out / "results.svg").write_text(svg.chart(result, specs, load_list))
    if not smoke:
        shutil.copyfile(out / "results.md", BENCH_DIR / "results/latest.md")
        shutil.copyfile(out / "results.svg", BENCH_DIR / "results/latest.svg")
    return out / "results.md"


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "bench"
    if command not in COMMANDS:
        print(f"unknown command {command!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    procs.install_signal_handlers()
    try:
        if command == "bench":
            path = bench()
        else:
            out, started, smoke = out_dir(command)
            _pid_file(out)
            if command == "floor":
                path = floor.main(out, started, smoke, settings_from_env(), tools_from_env(), REPO)
            elif command == "instructions":
                path = instructions.main(out, started, smoke, settings_from_env(), tools_from_env(), REPO)
            else:
                path = scale.main(command, out, started, smoke, settings_from_env(), tools_from_env(), REPO)
    except HarnessError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopping everything started", file=sys.stderr)
        return 130
    except SystemExit as stop:
        print(f"stopped by signal (status {stop.code}): stopping everything started", file=sys.stderr)
        raise
    finally:
        procs.stop_all()
    print(path.read_text())
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
