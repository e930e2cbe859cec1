"""What the numbers were measured on: machine, kernel, load, tool versions."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

from .targets import Tools


def _cmd(argv: list[str], pattern: str | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unavailable ({err.__class__.__name__})"
    text = (done.stdout + "\n" + done.stderr).strip()
    if pattern:
        match = re.search(pattern, text)
        if match:
            return match.group(1)
    return text.splitlines()[0].strip() if text else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> dict:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": _meminfo_gib(),
        "kernel": platform.release(),
        "os": _os_name(),
        "loadavg_at_start": loadavg(),
    }


def versions(tools: Tools, repo: Path) -> dict:
    weir = (_cmd([str(tools.weir), "--version"]) if tools.weir.exists() else "not built")
    commit = _cmd(["git", "-C", str(repo), "describe", "--always", "--dirty"])
    return {
        "weir": f"{weir} (git {commit})",
        "nginx": _cmd([tools.nginx, "-v"], r"nginx version: (\S+)"),
        "haproxy": _cmd([tools.haproxy, "-v"], r"(HAProxy version \S+)"),
        "pingora": (_cmd([str(tools.pingora), "--version"]) if tools.pingora.exists() else "not built"),
        "envoy": (_cmd([str(tools.envoy), "--version"], r"version: \S+?/([\d.]+/\S+?/\S+?/\S+)")
                  if tools.envoy.exists() else "not installed"),
        "wrk": _cmd(["wrk", "-v"], r"(wrk \S+)"),
        "h2load": _cmd(["h2load", "--version"], r"(h2load nghttp2/\S+)"),
        "rustc": _cmd(["rustc", "-V"]),
        "python": platform.python_version(),
    }
