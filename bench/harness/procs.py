"""Starting, watching and stopping the processes of a benchmark.

Every process is started in its own session (process group) and recorded,
so that `stop_all` — run on normal exit, on SIGINT/SIGTERM and by run.sh's
trap through the pid file — ends exactly the processes this harness started
and nothing else. Resource figures come straight from /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")

_started: list["Proc"] = []
_pid_file: Path | None = None


class HarnessError(Exception):
    """A failure the harness reports in one clear line (no traceback)."""


def set_pid_file(path: Path) -> None:
    """Record the process-group ids of started processes here (for run.sh's trap)."""
    global _pid_file
    _pid_file = path
    path.write_text("")


@dataclass
class Proc:
    """A started process and where its output goes."""

    name: str
    popen: subprocess.Popen
    log: Path
    cpus: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 4) -> str:
        """The last lines of the process's output, on one line."""
        try:
            text = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"


def start(name: str, argv: list[str], log: Path, cpus: str | None = None,
          env: dict | None = None, cwd: Path | None = None) -> Proc:
    """Start argv in its own session, stdout+stderr to `log`, optionally pinned to `cpus`."""
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "wb")
    try:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=full_env, cwd=cwd, start_new_session=True)
    except FileNotFoundError as err:
        raise HarnessError(f"{name}: cannot run {argv[0]!r}: {err.strerror}") from None
    finally:
        out.close()
    proc = Proc(name=name, popen=popen, log=log, cpus=cpus)
    _started.append(proc)
    _write_pid_file()
    return proc


def _write_pid_file() -> None:
    """Keep the pid file equal to the process groups still running."""
    if _pid_file is not None:
        _pid_file.write_text("".join(f"{p.pid}\n" for p in _started))


def stop(proc: Proc, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers past `grace` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    # The group may hold children (nginx workers) even when the leader is gone.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    if proc in _started:
        _started.remove(proc)
        _write_pid_file()


def stop_all() -> None:
    """Stop every process this harness started that is still recorded, newest first."""
    for proc in list(reversed(_started)):
        stop(proc, grace=3.0)


def install_signal_handlers() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit and make sure SIGINT raises
    KeyboardInterrupt (a shell starts background jobs with SIGINT ignored),
    so that `finally` blocks stop the processes."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_ports(count: int) -> list[int]:
    """`count` distinct ports on 127.0.0.1 that were free a moment ago."""
    socks, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_for_port(proc: Proc, port: int, timeout: float) -> None:
    """Poll until 127.0.0.1:port accepts, failing early if `proc` exits."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if not proc.alive():
            raise HarnessError(f"{proc.name} exited with status {proc.popen.returncode} before "
                               f"accepting on port {port}; its log {proc.log} ends: {proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise HarnessError(f"{proc.name} did not accept on 127.0.0.1:{port} within {timeout:.0f}s; "
                               f"its log {proc.log} ends: {proc.tail()}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


# ---- /proc figures -------------------------------------------------------

def _read_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, utime, stime) of one process in clock ticks, or None if it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(")") + 2:].split()
    ppid = int(fields[1])
    utime, stime = int(fields[11]), int(fields[12])
    return ppid, utime, stime


def tree(root: int) -> list[int]:
    """`root` and all its descendants (e.g. nginx's master and workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _read_stat(int(entry))
        if st is not None:
            children.setdefault(st[0], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(root: int) -> float:
    """utime+stime of `root` and its descendants, in seconds."""
    user, system = cpu_split(root)
    return user + system


def cpu_split(root: int) -> tuple[float, float]:
    """(utime, stime) of `root` and its descendants, in seconds."""
    user = system = 0
    for pid in tree(root):
        st = _read_stat(pid)
        if st is not None:
            user += st[1]
            system += st[2]
    return user / CLK_TCK, system / CLK_TCK


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_kib(root: int) -> int:
    """VmHWM (peak resident set) summed over the process tree, in KiB."""
    return sum(_status_kib(pid, "VmHWM") for pid in tree(root))


def reset_peak_rss(root: int) -> bool:
    """Restart VmHWM at the current RSS for the whole process tree.

    Writing 5 to /proc/PID/clear_refs does that (Linux 4.0+; allowed for
    one's own processes). Returns False if any process refused, in which
    case VmHWM keeps counting from the process's start.
    """
    ok = True
    for pid in tree(root):
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def rss_kib(root: int) -> int:
    """VmRSS (current resident set) summed over the process tree, in KiB."""
    return sum(_status_kib(pid, "VmRSS") for pid in tree(root))


def shape(root: int) -> dict:
    """How many processes and threads a target runs (to check the worker setting took)."""
    pids = tree(root)
    threads = 0
    names: dict[str, int] = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        threads += len(tasks)
        for tid in tasks:
            try:
                comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            except OSError:
                continue
            names[comm] = names.get(comm, 0) + 1
    return {"processes": len(pids), "threads": threads, "thread_names": names}
