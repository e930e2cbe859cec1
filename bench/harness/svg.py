"""A dependency-free SVG chart: for every (worker count, load), horizontal
bars of req/s and proxy CPU µs/request, median with a min–max whisker."""

from __future__ import annotations

from html import escape

from .loads import Load
from .targets import TargetSpec

COLORS = {"direct": "#9e9e9e", "weir": "#d9480f", "nginx": "#2b8a3e", "haproxy": "#1971c2",
          "pingora": "#e8590c", "envoy": "#7048e8"}
PANEL_W, LABEL_W, BAR_H, GAP, HEAD = 470, 190, 16, 6, 44


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp


def _panel(x0: float, y0: float, title: str, rows: list[tuple[TargetSpec, dict]], metric: str,
           scale: float, digits: int) -> tuple[list[str], float]:
    out = [f'<text x="{x0}" y="{y0 + 16}" class="t">{escape(title)}</text>']
    top = max((row[metric]["max"] / scale for _, row in rows), default=0.0)
    axis = _nice_max(top)
    width = PANEL_W - LABEL_W - 60
    y = y0 + 28
    for spec, row in rows:
        med, lo, hi = (row[metric][k] / scale for k in ("median", "min", "max"))
        bx = x0 + LABEL_W
        out.append(f'<text x="{bx - 6}" y="{y + BAR_H - 4}" class="l">{escape(spec.label)}</text>')
        out.append(f'<rect x="{bx}" y="{y}" width="{med / axis * width:.1f}" height="{BAR_H}" '
                   f'fill="{COLORS.get(spec.kind, "#555")}"/>')
        wy = y + BAR_H / 2
        out.append(f'<line x1="{bx + lo / axis * width:.1f}" x2="{bx + hi / axis * width:.1f}" '
                   f'y1="{wy}" y2="{wy}" class="w"/>')
        out.append(f'<text x="{bx + max(med, hi) / axis * width + 4:.1f}" y="{y + BAR_H - 4}" '
                   f'class="v">{med:,.{digits}f}</text>')
        y += BAR_H + GAP
    out.append(f'<line x1="{x0 + LABEL_W}" x2="{x0 + LABEL_W}" y1="{y0 + 24}" y2="{y}" class="a"/>')
    out.append(f'<text x="{x0 + LABEL_W + width}" y="{y + 12}" class="s">{axis:,.{digits}f}</text>')
    return out, y + 20


def chart(result: dict, specs: list[TargetSpec], load_list: list[Load]) -> str:
    body: list[str] = []
    y = 10.0
    body.append(f'<text x="10" y="{y + 18}" class="h">Weir benchmark — {escape(result["started"])}'
                f'{" (smoke run: numbers meaningless)" if result.get("smoke") else ""}</text>')
    body.append(f'<text x="10" y="{y + 34}" class="s" style="text-anchor:start">bars: median over '
                f'{result["settings"]["rounds"]} round(s); whiskers: min–max; one load-generator thread; '
                f'see results.md for the method and caveats</text>')
    y += HEAD
    for phase in result["phases"]:
        for load in load_list:
            rows = [(spec, phase["summary"][load.key][spec.key]) for spec in specs
                    if spec.key in phase["summary"].get(load.key, {})]
            if not rows:
                continue
            w = phase["workers"]
            head = f"{w} worker{'s' if w > 1 else ''} · {load.title}"
            left, y_left = _panel(10, y, f"{head} — req/s", rows, "rps", 1, 0)
            right, y_right = _panel(20 + PANEL_W, y, "proxy CPU µs per request (lower is better)",
                                    rows, "cpu_us_per_req", 1, 1)
            body += left + right
            y = max(y_left, y_right) + 10
    width = 30 + 2 * PANEL_W
    style = ("<style>text{font-family:sans-serif;font-size:11px;fill:#222}"
             ".h{font-size:16px;font-weight:bold}.t{font-size:12px;font-weight:bold}"
             ".l{text-anchor:end}.v{font-size:10px}.s{font-size:9px;fill:#666;text-anchor:end}"
             ".w{stroke:#000;stroke-width:1.5}.a{stroke:#444}</style>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y:.0f}" '
            f'viewBox="0 0 {width} {y:.0f}">{style}<rect width="100%" height="100%" fill="#fff"/>'
            + "".join(body) + "</svg>\n")
