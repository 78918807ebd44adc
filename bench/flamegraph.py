"""A static SVG flame graph (icicle: callers on top) from collapsed stacks; hover for numbers."""

from __future__ import annotations

import zlib
from html import escape
from pathlib import Path

from attrs import define, field

WIDTH = 1600
ROW = 17
MARGIN = 10
HEADER = 40
MIN_WIDTH = 0.3  # pixels; narrower frames are dropped (their time still counts in the parent)
OURS = ("domain/", "application/", "adapters/", "infrastructure/")


@define
class Node:
    name: str
    count: int = 0
    children: dict[str, Node] = field(factory=dict)


def build(stacks: list[tuple[list[str], int]]) -> Node:
    root = Node("all")
    for frames, count in stacks:
        root.count += count
        node = root
        for frame in frames:
            node = node.children.setdefault(frame, Node(frame))
            node.count += count
    return root


def _color(name: str) -> str:
    shade = zlib.crc32(name.encode()) % 60
    if "(" in name and name[name.rfind("(") + 1 :].startswith(OURS):
        return f"rgb({60 + shade},{130 + shade},{220})"  # our code in blue
    if name.startswith("process "):
        return "rgb(200,200,200)"
    return f"rgb(230,{110 + shade * 2},{40 + shade})"


def _depth(node: Node) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0)


def write_svg(stacks: list[tuple[list[str], int]], path: Path, *, title: str) -> None:
    root = build(stacks)
    total = root.count or 1
    scale = (WIDTH - 2 * MARGIN) / total
    height = HEADER + _depth(root) * ROW + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        'font-family="monospace" font-size="11">',
        f'<rect width="100%" height="100%" fill="#fafafa"/>'
        f'<text x="{MARGIN}" y="20" font-size="14">{escape(title)} — {total} samples; '
        "width = time, our code in blue; hover a frame for its share</text>",
    ]

    def draw(node: Node, x: float, depth: int) -> None:
        width = node.count * scale
        if width < MIN_WIDTH:
            return
        y = HEADER + depth * ROW
        share = 100 * node.count / total
        label = escape(node.name)
        parts.append(
            f"<g><title>{label} — {node.count} samples, {share:.1f}%</title>"
            f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{ROW - 1}" '
            f'fill="{_color(node.name)}" rx="1"/>'
        )
        chars = int((width - 4) / 6.6)
        if chars >= 3:
            text = node.name if len(node.name) <= chars else node.name[: chars - 2] + ".."
            parts.append(f'<text x="{x + 2:.2f}" y="{y + ROW - 5}">{escape(text)}</text>')
        parts.append("</g>")
        offset = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, offset, depth + 1)
            offset += child.count * scale

    draw(root, MARGIN, 0)
    parts.append("</svg>")
    path.write_text("\n".join(parts), encoding="utf-8")
