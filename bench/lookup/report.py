"""What a run leaves behind: the JSON record, the chart, and the table printed at the end."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from bench.lookup.data import rows_for

LABELS = {
    "owners": "owners()",
    "contested": "contested()",
    "worker": "filter + owners(), half stored",
    "worker_new": "filter + owners(), all new",
}


def charted(document: dict[str, Any]) -> bool:
    """A chart needs a non-empty table: its x-axis is logarithmic."""
    return any(m["fingerprints"] > 0 for m in document["measurements"])


def write_outputs(document: dict[str, Any], directory: Path, *, latest: bool) -> None:
    """The JSON and chart at document["paths"]; lookup-latest.* too when the run completed."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = Path(document["paths"]["json"])
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    chart = document["paths"]["chart"]
    if chart:
        write_chart(document, Path(chart))
    if latest:
        shutil.copyfile(json_path, directory / "lookup-latest.json")
        if chart:
            shutil.copyfile(chart, directory / "lookup-latest.png")


def write_chart(document: dict[str, Any], path: Path) -> None:
    """Left: lookup ms (median, bar up to p90) vs stored fingerprints. Right: what is read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measurements = document["measurements"]
    settings = document["settings"]
    states = {"inserted": ("-", "after insert"), "optimized": ("--", "after OPTIMIZE FINAL")}
    colors = {
        "owners": "#1f6fb4",
        "contested": "#d9822b",
        "worker": "#2a9d4b",
        "worker_new": "#b42a6f",
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    parts_axis = right.twinx()
    for state, (style, label) in states.items():
        points = [m for m in measurements if m["state"] == state and m["fingerprints"] > 0]
        if not points:
            continue
        xs = [m["fingerprints"] for m in points]
        for kind, color in colors.items():
            medians = [m[kind]["median_ms"] for m in points]
            above = [m[kind]["p90_ms"] - m[kind]["median_ms"] for m in points]
            left.errorbar(
                xs,
                medians,
                yerr=[[0.0] * len(above), above],
                fmt="o" + style,
                color=color,
                capsize=3,
                label=f"{LABELS[kind]} {label}",
            )
        rows_read = [m["owners"]["max_per_batch"]["rows_read"] for m in points]
        right.plot(xs, rows_read, "o" + style, color="#333333", label=f"owners() {label}")
        parts = [m["table_before"]["parts"] for m in points]
        parts_axis.plot(xs, parts, "s" + style, color="#8a3ffc", alpha=0.6, label=f"parts {label}")
    empty = [m for m in measurements if m["fingerprints"] == 0]
    if empty:
        level = empty[0]["owners"]["median_ms"]
        left.axhline(level, color="grey", linestyle=":", linewidth=1)
        left.annotate(
            "owners(), empty table",
            (0.01, level),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
            color="grey",
        )
    sizes = sorted({m["fingerprints"] for m in measurements if m["fingerprints"] > 0})
    if sizes:
        chunks = math.ceil(settings["batch_size"] / settings["lookup_chunk"])
        whole = [chunks * rows_for(size) for size in sizes]
        right.plot(
            sizes, whole, ":", color="grey", label=f"all rows × queries per batch ({chunks})"
        )
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("stored fingerprints")
        ax.grid(True, which="both", alpha=0.3)
    left.set_ylabel(f"ms per batch of {settings['batch_size']:,} (half stored)")
    left.set_ylim(bottom=0)
    left.set_title("lookup time per batch: median, bar up to p90", fontsize=10)
    left.legend(fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("rows the server read per owners() batch (max)")
    right.set_title("what grows: rows read (black), active parts (purple)", fontsize=10)
    right.legend(fontsize=8, loc="upper left")
    parts_axis.set_ylabel("active parts of event_fingerprints", color="#8a3ffc")
    parts_axis.set_ylim(bottom=0)
    parts_axis.legend(fontsize=8, loc="lower right")
    git = document["git"]
    fig.suptitle(
        f"event_fingerprints lookup {document['run_id']}: ClickHouse "
        f"{settings.get('clickhouse_version')}, {document['machine']['nproc']} cores, commit "
        f"{git['commit'][:10]}{'+dirty' if git['dirty'] else ''}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 132  # a log or a pipe: one row per line rather than 80 columns
    table = Table(title=f"event_fingerprints lookup {document['run_id']}")
    for name in (
        "fingerprints",
        "state",
        "parts",
        "merging",
        "load",
        "owners p50 / p90 ms",
        "µs/fp",
        "rows read/batch",
        "contested p50 / p90 ms",
        "filtered p50 ms: half / new",
        "searched: half / new",
        "found: owners + contested",
    ):
        table.add_column(name, justify="left" if name == "state" else "right")
    for m in document["measurements"]:
        owners, contested, parts = m["owners"], m["contested"], m["table_before"]
        found = m["check"]
        table.add_row(
            f"{m['fingerprints']:,}",
            m["state"],
            f"{parts['parts']} → {m['table_after']['parts']}",
            str(parts["merges_running"]),
            f"{m['loadavg_before'][0]:.1f}",
            f"{owners['median_ms']:,.1f} / {owners['p90_ms']:,.1f}",
            f"{owners['us_per_fingerprint']:.1f}",
            f"{owners['max_per_batch']['rows_read']:,}",
            f"{contested['median_ms']:,.1f} / {contested['p90_ms']:,.1f}",
            f"{m['worker']['median_ms']:,.1f} / {m['worker_new']['median_ms']:,.1f}",
            f"{m['worker']['max_per_batch']['searched']:,}"
            f" / {m['worker_new']['max_per_batch']['searched']:,}",
            f"{found['owners_found']:,} + {found['contested_found']}",
        )
    console.print(table)
    for insert in document["inserts"]:
        console.print(
            f"  grew to {insert['fingerprints']:,} fingerprints in {insert['insert_s']:.1f}s"
            + f", filter refilled in {insert['refill_s']:.1f}s"
            + (f", OPTIMIZE FINAL {insert['optimize_s']:.1f}s" if "optimize_s" in insert else "")
        )
    for state, figures in document["growth"].items():
        console.print(f"  growth {state}: {figures}")
    if document["error"]:
        console.print(f"[red]failed:[/] {document['error'].splitlines()[-1]}")
    console.print(f"  results: {document['paths']['json']}, chart: {document['paths']['chart']}")
