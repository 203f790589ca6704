"""Staff routes of the voice of the customer: the HTML satisfaction report, the needs loop and the four
kinds of CX indicators, on the channel tests' seeded demo database; staff token required."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.channels.conftest import STAFF_TOKEN

STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}
ACCOUNT = re.compile(r"(?<!\d)4401\d{8}(?!\d)")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def test_report_is_one_html_page_for_staff_only(client: TestClient) -> None:
    assert client.get("/api/cx/report").status_code == 401
    assert client.get("/api/cx/report", headers={"Authorization": "Bearer wrong"}).status_code in (401, 403)
    page = client.get("/api/cx/report", headers=STAFF)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "客户满意度报告" in page.text and "<svg" in page.text and "<script" not in page.text
    assert not ACCOUNT.search(page.text) and not MOBILE.search(page.text)
    markdown = client.get("/api/cx/report?period=2026-05&format=md", headers=STAFF)
    assert markdown.status_code == 200 and markdown.text.startswith("# 客户满意度报告 2026-05")
    assert client.get("/api/cx/report?period=2026-13", headers=STAFF).status_code == 422


def test_indicators_of_four_kinds_with_formulas(client: TestClient) -> None:
    assert client.get("/api/kpi/indicators").status_code == 401
    data = client.get("/api/kpi/indicators", headers=STAFF).json()
    assert set(data["kinds"]) == {"interaction", "perception", "behaviour", "result"}
    kinds = {i["kind"] for i in data["indicators"]}
    assert kinds == set(data["kinds"]) and all(i["formula"] and i["records"] for i in data["indicators"])
    billing = {i["code"]: i for i in data["indicators"]}["collection_rate"]
    assert billing["denominator"] != "0"  # the demo's bills are behind it


def test_needs_list_is_masked(client: TestClient) -> None:
    data = client.get("/api/cx/needs", headers=STAFF).json()
    assert "needs" in data and isinstance(data["overdue"], int)
    text = str(data)
    assert not ACCOUNT.search(text) and not MOBILE.search(text)
