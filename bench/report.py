"""The benchmark's outputs: results JSON (timestamped + latest.json), a PNG chart, a table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from attrs import frozen


@frozen
class Target:
    key: str
    label: str
    unit: str
    goal: float
    higher_is_better: bool
    original: float | None = None  # what the service dedup replaces managed on this machine

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.goal if self.higher_is_better else value <= self.goal


# DESIGN.md §8 and issue 3's targets for this 2-core machine.
TARGETS = (
    Target("single_requests_per_s", "single: accepted requests/s", "req/s", 10_000, True, 840),
    Target("single_p99_ms", "single: p99 latency", "ms", 25, False),
    Target("stored_events_per_s", "stored end to end (single)", "events/s", 8_000, True, 190),
    Target("batch_events_per_s", "batch: events/s accepted", "events/s", 50_000, True),
    Target("batch_stored_events_per_s", "batch: events/s stored", "events/s", 50_000, True),
    Target("drain_s", "queue drained after load", "s", 2, False),
)


def headline(scenarios: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The figures the targets are about, taken from the scenarios that ran."""
    single = scenarios.get("single") or scenarios.get("soak") or {}
    batch = scenarios.get("batch", {})
    drains = [s["drain"]["seconds"] for s in scenarios.values() if "drain" in s]

    def get(scenario: dict[str, Any], *path: str) -> float | None:
        value: Any = scenario
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return float(value)

    return {
        "single_requests_per_s": get(single, "load", "ok_per_s"),
        "single_p50_ms": get(single, "load", "latency_ms", "p50"),
        "single_p99_ms": get(single, "load", "latency_ms", "p99"),
        "stored_events_per_s": get(single, "stored", "events_per_s"),
        "batch_events_per_s": get(batch, "load", "events_per_s"),
        "batch_stored_events_per_s": get(batch, "stored", "events_per_s"),
        "drain_s": max(drains) if drains else None,
    }


def incomplete(scenarios: dict[str, dict[str, Any]]) -> set[str]:
    """Headline keys whose figure is a bound, not a measurement: the queue did not drain."""
    undrained = {name for name, s in scenarios.items() if not s["drain"]["drained"]}
    keys = set()
    if undrained:
        keys.add("drain_s")
    if undrained & {"single", "soak"}:
        keys.add("stored_events_per_s")
    if "batch" in undrained:
        keys.add("batch_stored_events_per_s")
    return keys


def write_json(
    result: dict[str, Any], directory: Path, stamp: str, *, latest: bool, prefix: str = ""
) -> Path:
    """`{prefix}{stamp}.json`, whole or not at all; copied to `{prefix}latest.json` if `latest`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prefix}{stamp}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    if latest:
        shutil.copyfile(path, directory / f"{prefix}latest.json")
    return path


def write_chart(result: dict[str, Any], path: Path, *, latest: bool) -> Path:
    """One panel per target: the measured bar, the target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = result["headline"]
    partial = incomplete(result["scenarios"])
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(3.2 * len(TARGETS), 4.2))
    for ax, target in zip(axes, TARGETS, strict=True):
        value = figures.get(target.key)
        met = target.met(value)
        color = {True: "#2e9d4f", False: "#d0453b", None: "#bbbbbb"}[met]
        hatch = "//" if target.key in partial else None
        ax.bar([0], [value or 0], color=color, width=0.6, hatch=hatch, edgecolor="white")
        ax.axhline(target.goal, color="black", linestyle="--", linewidth=1.2)
        ax.annotate(
            f"target {'≥' if target.higher_is_better else '≤'} {target.goal:g}",
            (0.02, target.goal),
            xycoords=("axes fraction", "data"),
            textcoords="offset points",
            xytext=(0, 3),
            fontsize=8,
        )
        if target.original is not None:
            ax.axhline(target.original, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                f"replaced service {target.original:g}",
                (0.98, target.original),
                xycoords=("axes fraction", "data"),
                textcoords="offset points",
                xytext=(0, 3),
                fontsize=7,
                color="grey",
                ha="right",
            )
        text = "n/a" if value is None else f"{value:,.1f}"
        if target.key in partial:
            text += "\n(not drained)"
        ax.text(0, (value or 0), text, ha="center", va="bottom", fontsize=10, weight="bold")
        ax.set_title(target.label, fontsize=9)
        ax.set_ylabel(target.unit)
        ax.set_xticks([])
        ax.set_ylim(0, max(target.goal, value or 0) * 1.25)
    settings = result["settings"]
    fig.suptitle(
        f"dedup bench {result['run_id']} — {settings['profile']} profile, "
        f"{result['machine']['nproc']} cores, commit {result['git']['commit'][:10]}"
        + ("+dirty" if result["git"]["dirty"] else "")
        + (" (profiled with py-spy)" if settings.get("profile_with") else ""),
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    if latest:
        shutil.copyfile(path, path.parent / "latest.png")
    return path


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    figures = result["headline"]
    partial = incomplete(result["scenarios"])
    table = Table(title=f"dedup bench {result['run_id']} ({result['settings']['profile']})")
    table.add_column("figure")
    table.add_column("measured", justify="right")
    table.add_column("target", justify="right")
    table.add_column("", justify="center")
    for target in TARGETS:
        value = figures.get(target.key)
        met = target.met(value)
        table.add_row(
            target.label,
            "n/a"
            if value is None
            else f"{value:,.1f} {target.unit}"
            + (" (not drained)" if target.key in partial else ""),
            f"{'≥' if target.higher_is_better else '≤'} {target.goal:,g} {target.unit}",
            {True: "[green]met[/]", False: "[red]missed[/]", None: "–"}[met],
        )
    p50 = figures.get("single_p50_ms")
    table.add_row("single: p50 latency", "n/a" if p50 is None else f"{p50:,.1f} ms", "", "")
    check = result["exactly_once"]
    table.add_row(
        "exactly once",
        "[green]passed[/]" if check["passed"] else f"[red]{check['verdict']}[/]",
        "no loss, no fingerprint twice",
        "",
    )
    console.print(table)
    for name, scenario in result["scenarios"].items():
        eo = scenario.get("exactly_once", {})
        drain = scenario["drain"]
        console.print(
            f"  {name}: ok'd events {eo.get('ok_events')}, stored {eo.get('events')} + "
            f"duplicates {eo.get('duplicates')} = {eo.get('accounted')}; "
            f"missing {eo.get('missing')}"
            f"{'' if eo.get('drained') else ' (queue not drained: may still be queued)'}, "
            f"fingerprints twice {eo.get('fingerprints_twice')}, "
            f"drain {drain['seconds']:.2f}s ({'ok' if drain['drained'] else 'NOT drained'})"
        )
    for profile in result.get("profiles", []):
        console.print(f"  profile {profile['scenario']}/{profile['role']}: {profile.get('svg')}")
        for row in profile.get("own_by_package", [])[:6]:
            console.print(f"    {row['percent']:5.1f}%  {row['name']}")
    console.print(f"  results: {result['paths']['json']}  chart: {result['paths']['chart']}")
