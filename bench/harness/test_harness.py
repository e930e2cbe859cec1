"""Self-tests of the harness's own logic (no proxies needed):
`bench/run.sh selftest`, or `python3 -m unittest harness.test_harness` from bench/."""

from __future__ import annotations

import os
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

from . import floor, instructions, loads, procs, report, runner, svg, targets


def _tools() -> targets.Tools:
    return targets.Tools(upstream=Path("/nonexistent/upstream"), weir=Path("/nonexistent/weir"),
                         envoy=Path("/nonexistent/envoy"), pingora=Path("/nonexistent/bench-pingora"),
                         floor=Path("/nonexistent/bench-floor"),
                         weir_filter=Path("/w/bench_header.wasm"),
                         proxy_wasm_filter=Path("/w/proxy_wasm_header.wasm"))


def _ctx() -> targets.Context:
    return targets.Context(_tools(), Path("/tmp"), 4321, "1", "0")


class Percentile(unittest.TestCase):
    def test_nearest_rank(self):
        values = list(range(1, 101))
        self.assertEqual(loads.percentile(values, 50), 50)
        self.assertEqual(loads.percentile(values, 99), 99)
        self.assertEqual(loads.percentile(values, 100), 100)
        self.assertEqual(loads.percentile([7], 99), 7)
        self.assertEqual(loads.percentile([], 50), 0)


class Placement(unittest.TestCase):
    def test_one_worker_gets_the_last_core(self):
        self.assertEqual(runner.cpu_sets(1, True, ncpu=2), ("1", "0"))
        self.assertEqual(runner.cpu_sets(2, True, ncpu=8), ("6,7", "0,1,2,3,4,5"))

    def test_no_core_left_or_no_pinning_means_unpinned(self):
        self.assertEqual(runner.cpu_sets(2, True, ncpu=2), (None, None))
        self.assertEqual(runner.cpu_sets(1, False, ncpu=2), (None, None))


class Configs(unittest.TestCase):
    def test_weir_filters_and_routes(self):
        spec = targets.TargetSpec("weir-3", "Weir", "weir", filters=3, routes=5)
        text = targets._weir_config(spec, _ctx(), 8080)
        self.assertEqual(text.count("- name: bench-header-"), 3)
        self.assertIn('config: { id: "3" }', text)
        self.assertEqual(text.count("execution: yielding"), 3)
        self.assertEqual(text.count("forward: { cluster: upstream }"), 5)
        self.assertIn('prefix: "/r/4/"', text)
        self.assertEqual(spec.path, "/r/4/")
        self.assertIn("127.0.0.1:8080", text)
        self.assertIn('endpoints: ["127.0.0.1:4321"]', text)
        self.assertNotIn("$", text)

    def test_weir_inline_filters(self):
        spec = targets.TargetSpec("weir-3i", "Weir", "weir", filters=3, execution="inline")
        text = targets._weir_config(spec, _ctx(), 8080)
        self.assertEqual(text.count("execution: inline"), 3)
        self.assertNotIn("yielding", text)

    def test_weir_without_filters_has_an_empty_chain(self):
        text = targets._weir_config(targets.TargetSpec("weir-0", "Weir", "weir"), _ctx(), 8080)
        self.assertIn("filters: []", text)
        self.assertIn('prefix: "/"', text)

    def test_envoy_filters_share_one_vm_with_distinct_roots(self):
        spec = targets.TargetSpec("envoy-3", "Envoy", "envoy", filters=3)
        text = targets._envoy_config(spec, _ctx(), 9090)
        self.assertEqual(text.count("envoy.filters.http.wasm"), 3)
        self.assertEqual(text.count("vm_id: bench_header"), 3)
        for i in (1, 2, 3):
            self.assertIn(f"root_id: bench_header_{i}", text)
        self.assertIn("port_value: 9090", text)
        self.assertNotIn("$", text)

    def test_missing_placeholder_is_a_clear_error(self):
        with self.assertRaises(procs.HarnessError) as caught:
            targets._render("weir-route.yaml.tmpl", INDEX=1)
        self.assertIn("PREFIX", str(caught.exception))

    def test_pending_reasons(self):
        spec = targets.TargetSpec("weir-1", "Weir", "weir", filters=1)
        self.assertIn("weir binary not built", spec.pending(_tools()))
        self.assertIsNone(targets.TargetSpec("nginx", "nginx", "nginx").pending(_tools()))

    def test_floor_targets_bracket_weir_and_skip_h2(self):
        specs = {spec.key: spec for spec in targets.floor_targets()}
        self.assertEqual(list(specs), ["direct", "floor", "floor-hyper", "weir-0", "nginx", "haproxy"])
        self.assertEqual(specs["floor-hyper"].server, "hyper")
        self.assertIn("bench-floor not built", specs["floor"].pending(_tools()))
        self.assertFalse(specs["floor"].h2)
        self.assertTrue(specs["weir-0"].h2)

    def test_floor_runs_one_worker_only(self):
        spec = targets.floor_targets()[1]
        with self.assertRaisesRegex(procs.HarnessError, "one thread only"):
            targets.start(spec, _ctx(), 2)


def _sample(rps: float, cpu: float) -> dict:
    return {"rps": rps, "p50_us": 100, "p99_us": 900, "cpu_us_per_req": cpu, "cpu_util": 1.0,
            "upstream_cpu_us_per_req": 3.0, "peak_rss_kib": 2048, "rss_reset": True, "errors": 0,
            "requests": int(rps)}


class FloorReport(unittest.TestCase):
    def test_user_and_system_split_and_cpu_against_nginx(self):
        def sample(cpu: float, user: float) -> dict:
            return dict(_sample(1000, cpu), user_us_per_req=user, system_us_per_req=cpu - user)
        specs = targets.floor_targets()
        load_list = loads.standard_loads(32, 10)[:1]
        result = {"started": "now", "settings": {"rounds": 1, "duration": 1}, "loadavg_at_end": "0",
                  "machine": {"cpu_model": "cpu", "cores": 2, "kernel": "k", "loadavg_at_start": "0"},
                  "versions": {"weir": "weir", "nginx": "nginx", "haproxy": "haproxy"},
                  "phases": [{"proxy_cpus": "1", "loadgen_cpus": "0",
                              "unavailable": {"haproxy": "pending: not installed"},
                              "samples": {"floor": {"h1": [sample(8.0, 1.0)]},
                                          "nginx": {"h1": [sample(10.0, 2.0)]}}}]}
        text = floor.markdown(result, specs, load_list)
        self.assertIn("| tokio floor (own HTTP/1 parse) | 1,000 (1,000–1,000) | 8.00 (8.00–8.00) "
                      "| 1.00 | 7.00 | 0.80× | 0 |", text)
        self.assertIn("| HAProxy | pending: not installed |", text)
        self.assertNotIn("Weir, 0 filters", text)


class Summary(unittest.TestCase):
    specs = [targets.TargetSpec("direct", "direct", "direct"),
             targets.TargetSpec("weir-0", "Weir", "weir", envoy_peer="envoy-0"),
             targets.TargetSpec("envoy-0", "Envoy", "envoy", envoy_peer="envoy-0")]
    load_list = loads.standard_loads(32, 10)[:1]

    def phase(self) -> dict:
        return {"workers": 1, "proxy_cpus": "1", "loadgen_cpus": "0", "unavailable": {"x": "pending: y"},
                "shapes": {k: {"processes": 1, "threads": 2, "thread_names": {"t": 2}}
                           for k in ("direct", "weir-0", "envoy-0")},
                "samples": {"direct": {"h1": [_sample(100, 2), _sample(300, 4), _sample(200, 3)]},
                            "weir-0": {"h1": [_sample(50, 10), _sample(40, 12), _sample(60, 8)]},
                            "envoy-0": {"h1": [_sample(25, 40), _sample(20, 40), _sample(30, 40)]}}}

    def test_medians_spreads_and_ratios(self):
        summary = runner.summarise(self.phase(), self.specs, self.load_list)["h1"]
        weir = summary["weir-0"]
        self.assertEqual(weir["rps"], {"median": 50, "min": 40, "max": 60})
        self.assertAlmostEqual(weir["rps_vs_direct"], 0.25)
        self.assertAlmostEqual(weir["rps_vs_envoy"], 2.0)
        self.assertAlmostEqual(weir["cpu_vs_envoy"], 0.25)
        self.assertNotIn("rps_vs_envoy", summary["envoy-0"])

    def test_report_and_plot_render(self):
        phase = self.phase()
        phase["summary"] = runner.summarise(phase, self.specs, self.load_list)
        result = {"started": "now", "smoke": True, "phases": [phase],
                  "settings": runner.Settings(1, 3, 0, 32, 10, True, 1, 64, 5, "v8").__dict__,
                  "machine": {"cpu_model": "cpu", "cores": 2, "memory": "1 GiB", "kernel": "k", "os": "os",
                              "loadavg_at_start": "0"}, "versions": {"nginx": "1"}}
        md = report.markdown(result, self.specs, self.load_list)
        self.assertIn("| Weir | 50 (40–60) | 0.25× | 2.00× (vs envoy-0) |", md)
        self.assertIn("- `x`: pending: y", md)
        root = ET.fromstring(svg.chart(result, self.specs, self.load_list))
        self.assertTrue(root.tag.endswith("svg"))

    def test_resources_show_the_peak_of_each_load_and_the_highest(self):
        load_list = loads.standard_loads(32, 10)
        phase = self.phase()
        for key, kib in (("direct", 1024), ("weir-0", 3072), ("envoy-0", 8192)):
            phase["samples"][key]["h2"] = [dict(_sample(10, 1), peak_rss_kib=kib)]
        summary = runner.summarise(phase, self.specs, load_list)
        lines = report.resources_table(phase, summary, self.specs, load_list)
        self.assertEqual(lines[0], "| target | peak RSS MiB, `h1` | peak RSS MiB, `h2` | highest "
                                   "| processes | threads | thread names |")
        self.assertIn("| Weir | 2.0 | 3.0 | 3.0 | 1 | 2 | t×2 |", lines)
        self.assertFalse(any("could not be reset" in line for line in lines))
        phase["samples"]["weir-0"]["h2"][0]["rss_reset"] = False
        lines = report.resources_table(phase, runner.summarise(phase, self.specs, load_list),
                                       self.specs, load_list)
        self.assertIn("VmHWM could not be reset before some measurements (h2): "
                      "their peak counts from the process's start.", lines)


class Processes(unittest.TestCase):
    def test_peak_rss_restarts_at_the_current_rss(self):
        pid = os.getpid()
        ballast = bytearray(64 * 1024 * 1024)
        ballast[::4096] = b"x" * len(ballast[::4096])
        del ballast
        before = procs.peak_rss_kib(pid)
        self.assertTrue(procs.reset_peak_rss(pid))
        after = procs.peak_rss_kib(pid)
        self.assertLess(after, before - 32 * 1024, "the 64 MiB ballast no longer counts")
        self.assertGreaterEqual(after, procs.rss_kib(pid) - 1024)

    def test_a_process_that_exits_early_is_reported_with_its_log(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = procs.start("quitter", ["sh", "-c", "echo bad config; exit 3"], Path(tmp) / "q.log")
            with self.assertRaises(procs.HarnessError) as caught:
                procs.wait_for_port(proc, procs.free_ports(1)[0], timeout=10)
            self.assertIn("exited with status 3", str(caught.exception))
            self.assertIn("bad config", str(caught.exception))
            procs.stop(proc)

    def test_stop_ends_the_whole_group(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = procs.start("parent", ["sh", "-c", "sleep 60 & sleep 60; wait"], Path(tmp) / "p.log")
            deadline = time.monotonic() + 5
            while len(procs.tree(proc.pid)) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            group = procs.tree(proc.pid)
            self.assertEqual(len(group), 3, "sh and its two sleeps")
            procs.stop(proc)
            deadline = time.monotonic() + 5
            while any(_running(pid) for pid in group) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual([pid for pid in group if _running(pid)], [])


class Instructions(unittest.TestCase):
    def test_totals_are_summed_over_the_dumps_of_every_process(self):
        with tempfile.TemporaryDirectory() as tmp:
            master, worker = Path(tmp) / "1.out.1", Path(tmp) / "2.out.1"
            master.write_text("version: 1\nevents: Ir\nfn=(1) main\n3 10\nsummary: 1200\n")
            worker.write_text("version: 1\nevents: Ir\nfn=(1) work\n3 10\ntotals: 987654\n")
            self.assertEqual(instructions.callgrind_totals([master, worker]), 988854)
            broken = Path(tmp) / "3.out.1"
            broken.write_text("not a dump\n")
            with self.assertRaises(procs.HarnessError):
                instructions.callgrind_totals([broken])

    def test_the_engine_sizing_reaches_weirs_config_only_when_asked(self):
        spec = next(s for s in instructions.instruction_targets() if s.key == "weir-1")
        plain = targets._weir_config(spec, _ctx(), 8080)
        self.assertNotIn("max_instances", plain)
        ctx = _ctx()
        ctx.weir_engine = instructions.WEIR_ENGINE
        sized = targets._weir_config(spec, ctx, 8080)
        self.assertIn("wasm:\n  cache_dir: /tmp/weir-module-cache\n  max_instances: 64\n"
                      "  max_memory_mib: 64\n", sized)

    def test_targets_are_weir_its_floor_and_the_native_peers(self):
        keys = [s.key for s in instructions.instruction_targets()]
        self.assertEqual(keys, ["floor", "floor-hyper", "weir-0", "weir-1", "weir-3",
                                "nginx", "haproxy", "pingora", "envoy-0", "envoy-1", "envoy-3"])


def _running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

if __name__ == "__main__":
    unittest.main()
