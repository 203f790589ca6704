"""One satisfaction scale everywhere: the web widget, the agent's spoken prompt and the parser agree on 1–5."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import yaml

from agent.nlu.entities import SatisfactionRating, extract_entities
from agent.records import parse_csat
from channels.web_chat import CSAT_LABELS

WEB = Path(__file__).resolve().parents[2] / "channels" / "web"
TEMPLATES = Path(__file__).resolve().parents[2] / "agent" / "templates.yaml"


def test_widget_buttons_are_the_five_points_of_the_scale() -> None:
    html = (WEB / "chat.html").read_text(encoding="utf-8")
    buttons = re.findall(r'data-score="(\d)"[^>]*>(\d) ([^<]+)</button>', html)
    assert {int(score): label for score, _, label in buttons} == CSAT_LABELS
    assert all(score == shown for score, shown, _ in buttons)


def test_agent_prompt_offers_the_same_scale_and_each_label_parses_to_its_score() -> None:
    templates = yaml.safe_load(TEMPLATES.read_text(encoding="utf-8"))
    for key in ("ask_csat", "csat_retry"):
        text = templates[key]["text"]
        offered = {int(n): label for n, label in re.findall(r"([1-5]) (非常不满意|不满意|一般|非常满意|满意)", text)}
        assert offered == CSAT_LABELS, key
    for score, label in CSAT_LABELS.items():
        assert parse_csat(label)[0] == score
        ratings = [e for e in extract_entities(label, date(2026, 6, 1)) if isinstance(e, SatisfactionRating)]
        assert [r.score for r in ratings] == [score], label
