"""Charts for the satisfaction report, drawn here as inline SVG (no CDN, no JavaScript: the report is
one self-contained file a staff member can open, print or mail), and as text bars for Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BAR_COLOUR = "#2f6fb3"
ROW, LABEL_WIDTH, BAR_WIDTH = 22, 150, 320


def bar_chart(title: str, items: Sequence[tuple[str, float | None]], unit: str = "", maximum: float | None = None) -> str:
    """A horizontal bar chart; an item without a value (无数据) gets no bar and says so."""
    values = [v for _, v in items if v is not None]
    top = maximum if maximum is not None else (max(values) if values else 1.0) or 1.0
    height = ROW * max(len(items), 1) + 30
    width = LABEL_WIDTH + BAR_WIDTH + 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f"<title>{escape(title)}</title>",
             f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>']
    for row, (label, value) in enumerate(items):
        y = 24 + row * ROW
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 14}" text-anchor="end">{escape(label[:18])}</text>')
        if value is None:
            parts.append(f'<text x="{LABEL_WIDTH}" y="{y + 14}" fill="#888">无数据</text>')
            continue
        length = max(BAR_WIDTH * value / top, 1.0) if top else 1.0
        parts.append(f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length:.1f}" height="{ROW - 6}" fill="{BAR_COLOUR}"/>')
        parts.append(f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + 14}">{_number(value)}{escape(unit)}</text>')
    if not items:
        parts.append(f'<text x="{LABEL_WIDTH}" y="38" fill="#888">本期无数据</text>')
    parts.append("</svg>")
    return "".join(parts)


def text_bars(items: Sequence[tuple[str, float | None]], unit: str = "", maximum: float | None = None,
              width: int = 20) -> str:
    """The same chart as a fenced block of █ bars, for the Markdown report."""
    values = [v for _, v in items if v is not None]
    top = maximum if maximum is not None else (max(values) if values else 1.0) or 1.0
    label_width = max((len(label) for label, _ in items), default=4)
    lines = []
    for label, value in items:
        bar = "（无数据）" if value is None else "█" * max(round(width * value / top), 1 if value else 0) + f" {_number(value)}{unit}"
        lines.append(f"{label.ljust(label_width, '　')} {bar}")
    return "```\n" + ("\n".join(lines) if lines else "（本期无数据）") + "\n```"


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
