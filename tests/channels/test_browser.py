"""The web chat page end to end in Debian's Chromium against a real `powerdesk serve`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from agent.models import ConversationRecord
from billing_core.db.engine import session_scope
from tests.channels.conftest import STAFF_TOKEN, DemoCustomer, demo_customers
from tests.channels.serve_process import ServeProcess, serve_process

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def server(seeded_database: str) -> Iterator[ServeProcess]:
    env = {"POWERDESK_VAR_DIR": os.environ["POWERDESK_VAR_DIR"], "POWERDESK_STAFF_TOKENS": STAFF_TOKEN}
    with serve_process(env) as process:
        yield process


def test_chat_page_bill_lookup_rating_and_reconnect(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    customer: DemoCustomer = demo_customers(3)[-1]  # not the customer other tests use
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(server.url + "/")
            expect(page.locator("#status")).to_have_text("已连接")
            conversation_id = page.evaluate("localStorage.getItem('powerdesk.conversation')")
            assert conversation_id and conversation_id.startswith("web-")

            page.fill("#text", f"查一下{customer.period_words}的电费")
            page.click("#send")
            expect(page.locator("#identity")).to_be_visible()  # the agent asks who is asking
            page.fill("#account", customer.account_no)
            page.fill("#last4", customer.last4)
            page.click("#identity button")
            expect(page.locator(".msg.bot").last).not_to_have_text("…")
            page.fill("#text", f"查一下{customer.period_words}的电费")
            page.click("#send")
            expect(page.locator(".msg.bot").last).to_contain_text(customer.amount_text)

            page.reload()  # reconnect: the same conversation comes back from the server
            expect(page.locator("#status")).to_have_text("已连接")
            assert page.evaluate("localStorage.getItem('powerdesk.conversation')") == conversation_id
            expect(page.locator(".msg.bot", has_text=customer.amount_text).first).to_be_visible()

            # A person takes over: the bot stays quiet and the staff reply appears on the page.
            staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}
            api = f"{server.url}/api/assist/conversations/{conversation_id}"
            assert httpx.post(api + "/takeover", json={}, headers=staff, timeout=30).status_code == 200
            page.fill("#text", "这个金额我想找人核对一下")
            page.click("#send")
            expect(page.locator(".msg.bot").last).to_contain_text("人工客服正在为您处理")
            assert httpx.post(api + "/messages", json={"text": "您好，我是人工客服，正在为您核对。"}, headers=staff,
                              timeout=30).status_code == 200
            expect(page.locator(".msg.bot", has_text="我是人工客服")).to_have_count(1, timeout=15_000)
            assert httpx.post(api + "/handback", headers=staff, timeout=30).status_code == 200

            page.click("#end")
            page.click("#csat [data-score='5']")
            expect(page.locator("#csat-done")).to_have_text("感谢您的评价！")
        finally:
            browser.close()

    with session_scope() as session:
        record = session.scalar(select(ConversationRecord).where(
            ConversationRecord.conversation_id == conversation_id))
        assert record is not None
        assert record.csat_score == 5 and record.channel == "web"
        assert record.account_no == customer.account_no
        assert record.turn_count >= 3


def test_kpi_dashboard_draws_charts_and_exports_csv(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(accept_downloads=True)
            page.set_default_timeout(30_000)
            page.goto(server.url + "/static/kpi.html")
            page.fill("#token", "not-a-staff-token")
            page.fill("#period", "2026-08")
            page.click("#login button")
            expect(page.locator("#message")).to_have_text("未登录或无坐席权限")
            page.fill("#token", STAFF_TOKEN)
            page.click("#login button")
            expect(page.locator("#message")).to_have_text("账期 2026-08")
            expect(page.locator("#billing .card")).to_have_count(7)
            expect(page.locator("#service .card")).to_have_count(4)
            expect(page.locator("#billing svg rect").first).to_be_attached()
            widths = page.locator("#billing svg rect").evaluate_all(
                "rs => rs.map(r => Number(r.getAttribute('width')))")
            assert any(w > 0 for w in widths)  # bars are drawn from the figures
            with page.expect_download() as download_info:
                page.click("#csv")
            path = download_info.value.path()
            text = open(path, encoding="utf-8-sig").read()
            assert text.startswith("账期,类别,渠道") and "电费回收率" in text
        finally:
            browser.close()


def test_api_docs_render_offline(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
            page.goto(server.url + "/docs")
            operation = page.locator(".opblock-summary-path", has_text="/ivr/turn").first
            expect(operation).to_be_visible(timeout=30_000)
            assert outside == []  # nothing fetched from anywhere else
        finally:
            browser.close()
