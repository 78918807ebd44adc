"""`make bench`: start the stack, load it with wrk, measure, check exactly-once, report.

    python -m bench.run [--quick] [--profile distributed|embedded] [--profile-with py-spy]
                        [--soak SECONDS] [--duration S] [--scenarios single,batch] ...

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from attrs import define, field

from bench import measure, profiling, report, stack, wrk
from bench.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("single", "batch")
ROLES = ("api", "worker")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--profile", choices=["distributed", "embedded"], default="distributed")
    p.add_argument("--quick", action="store_true", help="15 s per scenario (~1 min in all)")
    p.add_argument("--duration", type=int, help="seconds of load per scenario (default 60)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list: single,batch")
    p.add_argument(
        "--soak", type=int, metavar="SECONDS", help="instead: single-event load for SECONDS"
    )
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--batch-connections", type=int, help="connections for batch (default same)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--api-workers", type=int, default=2, help="dedup serve --workers")
    p.add_argument(
        "--worker-processes", type=int, default=2, help="dedup worker processes (distributed)"
    )
    p.add_argument(
        "--worker-concurrency", type=int, help="dedup worker --concurrency (default: its own)"
    )
    p.add_argument("--copies", default="2-3", help="copies of each single event, MIN-MAX")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--batch-copies", type=int, default=2, help="batches each event rides in")
    p.add_argument("--drain-timeout", type=int, help="max seconds to wait for the queue (60)")
    p.add_argument(
        "--profile-with", choices=["py-spy"], help="sample API and worker during each load"
    )
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--port", type=int, help="API port (default: a free one)")
    p.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--keep", action="store_true", help="keep the work directory (process logs)")
    return p


def _copies(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    pair = (int(low), int(high or low))
    if not 1 <= pair[0] <= pair[1]:
        raise SystemExit(f"--copies: expected MIN-MAX with 1 <= MIN <= MAX, got {text!r}")
    return pair


def loads(args: argparse.Namespace) -> list[wrk.Load]:
    duration = args.duration or (15 if args.quick else 60)
    copies_min, copies_max = _copies(args.copies)
    single = {
        "mode": "single",
        "connections": args.connections,
        "threads": args.threads,
        "copies_min": copies_min,
        "copies_max": copies_max,
    }
    if args.soak:
        return [wrk.Load(scenario="soak", duration=args.soak, **single)]
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"--scenarios: unknown {', '.join(sorted(unknown))}")
    batch = wrk.Load(
        mode="batch",
        scenario="batch",
        duration=duration,
        connections=args.batch_connections or args.connections,
        threads=args.threads,
        copies_min=args.batch_copies,
        copies_max=args.batch_copies,
        batch_size=args.batch_size,
    )
    by_name = {"single": wrk.Load(scenario="single", duration=duration, **single), "batch": batch}
    return [by_name[name] for name in chosen]


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in cpuinfo.read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        )
    return {
        "nproc": os.cpu_count(),
        "memory_mib": psutil.virtual_memory().total // (1024 * 1024),
        "cpu": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def git() -> dict[str, Any]:
    def out(*cmd: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *cmd], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {
        "commit": out("rev-parse", "HEAD") or "unknown",
        "dirty": bool(out("status", "--porcelain", "--untracked-files=no")),
    }


def exactly_once(
    load: wrk.WrkResult, counts: measure.ScenarioCounts, drained: bool
) -> dict[str, Any]:
    """Every ok'd event is a row in events or event_duplicates; no fingerprint stored twice.

    wrk does not tell which requests were still in flight when it stopped: those may be stored
    without having been counted as ok. So the rows may exceed the ok'd events by at most the
    events of requests sent but not answered ok; fewer rows than ok'd events is a loss.
    """
    epr = load.load.events_per_request
    ok_events = load.ok_events
    unanswered = (load.issued - load.ok) * epr
    accounted = counts.accounted
    missing = max(0, ok_events - accounted)
    extra = accounted - ok_events
    twice = counts.events - counts.distinct_fingerprints
    checks = {
        "no_fingerprint_stored_twice": twice == 0,
        "no_ok_event_missing": missing == 0,
        "nothing_stored_that_was_not_sent": extra <= unanswered,
        "distinct_stored_within_distinct_sent": counts.events <= load.events_issued,
    }
    return {
        "ok_events": ok_events,
        "events": counts.events,
        "distinct_fingerprints": counts.distinct_fingerprints,
        "duplicates": counts.duplicates,
        "accounted": accounted,
        # Missing rows are lost only once the queue drained; before that they may be queued.
        "missing": missing,
        "lost": missing if drained else None,
        "fingerprints_twice": twice,
        "stored_beyond_ok": max(0, extra),
        "sent_not_ok_events": unanswered,
        "events_issued": load.events_issued,
        "drained": drained,
        "checks": checks,
        "passed": drained and all(checks.values()),
    }


def _load_settings(load: wrk.Load) -> dict[str, Any]:
    return {
        "mode": load.mode,
        "duration": load.duration,
        "connections": load.connections,
        "threads": load.threads,
        "copies": [load.copies_min, load.copies_max],
        "batch_size": load.batch_size if load.mode == "batch" else None,
    }


def _memory(samples: list[dict[str, Any]], soak: bool) -> dict[str, Any]:
    memory: dict[str, Any] = {role: measure.memory_summary(samples, role) for role in ROLES}
    if soak and samples:
        # The first minute fills caches and pools; flat means flat after that.
        settled = [s for s in samples if s["t"] - samples[0]["t"] >= 60]
        memory["after_first_minute"] = {
            role: measure.memory_summary(settled, role) for role in ROLES
        }
    return memory


@define
class Bench:
    """One benchmark run: the stack, the monitor, and what each scenario measured."""

    args: argparse.Namespace
    stack: stack.Stack
    monitor: measure.Monitor
    run_id: str
    stamp: str
    drain_timeout: float
    scenarios: dict[str, dict[str, Any]] = field(factory=dict)
    results: dict[str, wrk.WrkResult] = field(factory=dict)
    profiles: list[dict[str, Any]] = field(factory=list)
    final: measure.Counts | None = None
    final_drain: measure.Drain | None = None
    described: dict[str, object] = field(factory=dict)

    def execute(self, scenario_loads: list[wrk.Load]) -> None:
        self.stack.prepare()
        self.described = self.stack.describe()
        self.monitor.start()
        for load in scenario_loads:
            self.scenario(load)
        # Rows of a scenario that had not drained may still arrive: wait once more, then check.
        self.final_drain = self.stack.settle(time.monotonic(), self.drain_timeout)
        self.final = self.stack.counts()

    def scenario(self, load: wrk.Load) -> None:
        self.stack.up()
        recordings = []
        if self.args.profile_with == "py-spy":
            for role, pid in self.stack.processes().items():
                out = self.args.results_dir / f"{self.stamp}-{load.scenario}-{role}"
                recordings.append(profiling.Recording.start(role, pid, out, load.duration))
        print(f"[bench] {load.scenario}: wrk {load.duration}s, {load.connections} connections")
        load_started = time.monotonic()
        result = wrk.run(self.stack.base_url, load, self.run_id)
        load_ended = time.monotonic()
        self.profiles += [{"scenario": load.scenario, **rec.finish()} for rec in recordings]
        print(
            f"[bench] {load.scenario}: {result.ok_per_s:,.0f} ok req/s, "
            f"p99 {result.latency_ms['p99']} ms; waiting for the queue to drain"
        )
        drain = self.stack.settle(load_ended, self.drain_timeout)
        counts = self.stack.counts().of(load.scenario)
        elapsed = drain.at - load_started
        samples = self.monitor.window(load_started, load_ended)
        self.results[load.scenario] = result
        self.scenarios[load.scenario] = {
            "load": {"settings": _load_settings(load), **result.summary()},
            "drain": {
                "drained": drain.drained,
                "seconds": round(drain.seconds, 3),
                "method": drain.method,
                "ready": drain.ready,
                "unacked": drain.unacked,
            },
            "stored": {
                "rows": counts.accounted,
                "events": counts.events,
                "duplicates": counts.duplicates,
                "seconds": round(elapsed, 3),
                # Each ok'd event ends as one row (event or duplicate): rows/s is events/s.
                "events_per_s": round(counts.accounted / elapsed, 1) if elapsed > 0 else None,
                "distinct_events_per_s": round(counts.events / elapsed, 1) if elapsed else None,
                "complete": drain.drained,
            },
            "cpu_cores_during_load": measure.cpu_summary(samples),
            "memory": _memory(samples, soak=load.scenario == "soak"),
        }

    def verdict(self) -> dict[str, Any]:
        checks: dict[str, bool] = {}
        if self.final is None or self.final_drain is None:
            return {"passed": False, "verdict": "not checked: the run failed", "by_scenario": {}}
        for name, result in self.results.items():
            check = exactly_once(result, self.final.of(name), self.final_drain.drained)
            self.scenarios[name]["exactly_once"] = check
            checks[name] = check["passed"]
        orphans = self.final.orphans
        passed = bool(checks) and all(checks.values()) and orphans == 0
        if passed:
            verdict = "passed"
        elif not self.final_drain.drained:
            verdict = (
                f"incomplete: queue not drained ({self.final_drain.ready} ready,"
                f" {self.final_drain.unacked} unacked)"
            )
        else:
            verdict = "FAILED"
        return {
            "passed": passed,
            "verdict": verdict,
            "by_scenario": checks,
            "orphan_duplicates": orphans,
            "final_drain": self.final_drain.method,
        }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    scenario_loads = loads(args)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp.lower()}_{secrets.token_hex(2)}"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"dedup-bench-{run_id}-"))
    if args.profile == "distributed":
        stack.ensure_services()
    wrk.ensure_wrk()
    if args.profile_with:
        profiling.ensure_py_spy()
    options = stack.StackOptions(
        run_id=run_id,
        port=args.port or free_port(),
        api_workers=args.api_workers if args.profile == "distributed" else 1,
        worker_concurrency=args.worker_concurrency,
        worker_processes=args.worker_processes,
        workdir=workdir,
        extra_env={"DEDUP_LOG_LEVEL": args.log_level} if args.log_level else {},
    )
    the_stack = stack.create(args.profile, options)
    bench = Bench(
        args=args,
        stack=the_stack,
        monitor=measure.Monitor(the_stack.processes, the_stack.probe()),
        run_id=run_id,
        stamp=stamp,
        drain_timeout=args.drain_timeout or (15 if args.quick else 60),
    )
    error: str | None = None
    print(f"[bench] run {run_id}: {args.profile} profile, work directory {workdir}")
    try:
        bench.execute(scenario_loads)
    except (Exception, KeyboardInterrupt) as exc:
        error = "".join(traceback.format_exception(exc))
        print(f"[bench] failed: {exc}\n{the_stack.logs()}", file=sys.stderr)
    finally:
        bench.monitor.stop()
        try:
            the_stack.cleanup()
        except Exception as exc:
            print(f"[bench] cleanup failed: {exc!r}", file=sys.stderr)
        if not args.keep and error is None:
            shutil.rmtree(workdir, ignore_errors=True)

    json_path = args.results_dir / f"{stamp}.json"
    chart = args.results_dir / f"{stamp}.png"
    checked = bench.verdict()
    document: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "command": ["python", "-m", "bench.run", *(argv if argv is not None else sys.argv[1:])],
        "git": git(),
        "machine": machine(),
        "settings": {
            **bench.described,
            "profile": args.profile,
            "quick": args.quick,
            "drain_timeout": bench.drain_timeout,
            "profile_with": args.profile_with,
            "log_level": args.log_level or "service default",
        },
        "targets": {
            t.key: {"goal": t.goal, "higher_is_better": t.higher_is_better} for t in report.TARGETS
        },
        "headline": report.headline(bench.scenarios),
        "scenarios": bench.scenarios,
        "exactly_once": checked,
        "profiles": bench.profiles,
        "timeline": bench.monitor.samples,
        "error": error,
        "paths": {"json": str(json_path), "chart": str(chart) if bench.scenarios else None},
    }
    if bench.scenarios:
        report.write_chart(document, chart, latest=error is None)
    # latest.* is the last run that completed, a failed run only leaves its own files.
    report.write_json(document, args.results_dir, stamp, latest=error is None)
    report.print_table(document)
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main())
