"""Polite Chinese replies rendered from `templates.yaml` with slots filled from tool results.

A template names its slots; rendering refuses a missing slot rather than print "{amount}",
and formats values the way customers read them (dates as 2026年6月20日, amounts as given by
the billing core, never re-rounded here).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATES_FILE = Path(__file__).with_name("templates.yaml")


class TemplateError(KeyError):
    """A template is unknown or a slot was not given (the message names both)."""


@dataclass(frozen=True)
class Template:
    key: str
    text: str
    awaiting: str | None
    slots: tuple[str, ...]


@dataclass(frozen=True)
class Rendered:
    text: str
    awaiting: str | None
    template: str


@lru_cache(maxsize=1)
def templates() -> dict[str, Template]:
    raw = yaml.safe_load(TEMPLATES_FILE.read_text(encoding="utf-8"))
    result = {}
    for key, spec in raw.items():
        text = spec["text"]
        slots = tuple(name for _, name, _, _ in string.Formatter().parse(text) if name)
        result[key] = Template(key=key, text=text, awaiting=spec.get("awaiting"), slots=slots)
    return result


def format_value(value: Any) -> str:
    """How a slot value is written for a customer."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日"
    if isinstance(value, Decimal):
        return format(value, "f")
    if value is None:
        return ""
    return str(value)


def period_text(period: str) -> str:
    """'2026-05' → '2026年5月'."""
    try:
        year, month = period.split("-")
        return f"{int(year)}年{int(month)}月"
    except ValueError:
        return period


def render(key: str, **slots: Any) -> Rendered:
    """Fill template `key`; every slot it names must be given."""
    template = templates().get(key)
    if template is None:
        raise TemplateError(f"template: unknown template {key!r}")
    missing = [name for name in template.slots if name not in slots]
    if missing:
        raise TemplateError(f"template {key}: missing slot(s) {', '.join(missing)}")
    text = template.text.format(**{name: format_value(slots[name]) for name in template.slots})
    return Rendered(text=text, awaiting=template.awaiting, template=key)


def join(parts: list[Rendered]) -> Rendered:
    """Several replies in one message (multi-intent turns); the last one's awaited slot wins."""
    parts = [p for p in parts if p.text]
    if not parts:
        return render("safe_fallback")
    return Rendered(text="".join(p.text for p in parts), awaiting=parts[-1].awaiting,
                    template="+".join(p.template for p in parts))
