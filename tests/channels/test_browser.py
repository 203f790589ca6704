"""The web pages end to end in Debian's Chromium against a real `powerdesk serve`: web chat, KPI
dashboard, staff console, API docs, and Chinese text rendered in a real CJK font (not tofu)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import delete, select

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


def test_kpi_dashboard_opens_on_the_latest_period_with_trends_and_targets(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    trend = httpx.get(server.url + "/api/kpi/trend", headers=staff, timeout=60).json()
    latest = trend["latest_period"]
    fcr_now = next(k for k in trend["service"] if k["code"] == "first_contact_resolution")["channels"]["all"][-1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(accept_downloads=True)
            page.set_default_timeout(30_000)
            page.goto(server.url + "/static/kpi.html")
            page.fill("#token", "not-a-staff-token")
            page.click("#login button")
            expect(page.locator("#message")).to_have_text("未登录或无坐席权限")
            page.fill("#token", STAFF_TOKEN)
            page.click("#login button")
            # No period typed: the page opens on the latest period with data, not on an empty month.
            expect(page.locator("#message")).to_contain_text("账期 " + latest)
            expect(page.locator("#billing .kpi-card")).to_have_count(7)
            expect(page.locator("#platform .kpi-card")).to_have_count(1)
            expect(page.locator("#service .kpi-card")).to_have_count(4)
            assert page.locator("#billing .kpi-card .value.muted").count() < 7  # billing cards show figures
            expect(page.locator(".kpi-card svg line.target")).to_have_count(12)  # every KPI has a target line
            billed = page.locator("#billing .kpi-card[data-code='collection_rate'] path.series")
            expect(billed).to_have_count(1)
            assert len(billed.get_attribute("d").split("L")) >= 2  # a trend, not one bar
            service_lines = page.locator("#service .kpi-card[data-code='response_time'] path.series, "
                                         "#service .kpi-card[data-code='response_time'] circle.point")
            assert service_lines.count() >= 1
            fcr = page.locator("#service .kpi-card[data-code='first_contact_resolution'] .value")
            if fcr_now and fcr_now["value"] is None and fcr_now["pending"]:
                expect(fcr).to_have_text("待定")  # still inside the repeat-contact window
            assert fcr.text_content() != "0.00%"
            with page.expect_download() as download_info:
                page.click("#csv")
            text = open(download_info.value.path(), encoding="utf-8-sig").read()
            assert text.startswith("账期,类别,渠道") and "电费回收率" in text and "智能服务平台/系统故障率" in text
            # The guide's four kinds of CX indicators, each with its formula; the satisfaction report opens.
            expect(page.locator("#cx .kpi-card")).to_have_count(4)
            expect(page.locator("#cx .kpi-card h3").nth(3)).to_have_text("结果指标")
            expect(page.locator("#cx .kpi-card .basis").first).to_contain_text("÷")
            with page.expect_popup() as popup_info:
                page.click("#cx-report")
            report = popup_info.value
            expect(report.locator("h1")).to_contain_text("客户满意度报告 " + latest)
            assert report.locator("svg").count() >= 9
        finally:
            browser.close()


def test_staff_console_one_view_and_a_session_shared_by_tabs(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    from agent.experience.models import CustomerProfile
    from agent.experience.tags import refresh_tags
    from billing_core.db.engine import utc_now
    from channels.models import OpsAlert
    from tests.channels.serve_process import web_conversation

    customer = demo_customers(4)[-1]
    conversation_id, token = web_conversation(server.url)
    for text in (f"户号{customer.account_no}，手机尾号{customer.last4}", f"查一下{customer.period_words}的电费"):
        response = httpx.post(f"{server.url}/api/chat/conversations/{conversation_id}/messages?stream=false",
                              json={"text": text}, headers=token, timeout=60)
        assert response.status_code == 200, response.text
    with session_scope() as session:
        alert = OpsAlert(rule="browser_test_alert", severity="critical", message="网页客服探测失败（测试）",
                         value="100.00%", threshold="5%", first_seen_at=utc_now(), last_seen_at=utc_now())
        session.add(alert)
        refresh_tags(session, utc_now())  # the card's tag chips (removed again below)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            session_one = browser.new_context(viewport={"width": 1440, "height": 900})
            page = session_one.new_page()
            page.set_default_timeout(30_000)
            page.goto(server.url + "/static/console.html")
            page.fill("#token", STAFF_TOKEN)
            page.click("#login button")
            expect(page.locator("#who")).to_be_visible()
            expect(page.locator("#alerts .alert.critical")).to_contain_text("网页客服探测失败（测试）")
            page.click(f"#recent li[data-conversation='{conversation_id}']")
            # Queue, transcript, customer card and suggestions in one view.
            expect(page.locator("#transcript .bubble.customer").first).to_contain_text(customer.account_no)
            expect(page.locator("#transcript .bubble.bot", has_text=customer.amount_text).first).to_be_visible()
            expect(page.locator("#customer .customer-head")).to_contain_text(customer.account_no)
            expect(page.locator("#customer table tr", has_text=customer.period).first).to_contain_text(customer.amount_text)
            expect(page.locator("#customer h4", has_text="在办工单")).to_be_visible()
            usage = page.locator("#customer .chip.tag", has_text="月均用电").first
            expect(usage).to_be_visible()
            assert "用电行为：来源 bill" in (usage.get_attribute("title") or "")  # the records behind the tag
            expect(page.locator("#suggestions li button", has_text="采用").first).to_be_visible()
            for box in ("#waiting", "#transcript", "#customer", "#suggestions"):
                assert page.locator(box).is_visible()

            second_tab = session_one.new_page()  # same browser session, another tab: still signed in
            second_tab.goto(server.url + "/static/console.html")
            expect(second_tab.locator("#who")).to_be_visible()
            expect(second_tab.locator(f"#recent li[data-conversation='{conversation_id}']")).to_be_visible()

            other_session = browser.new_context().new_page()  # another browser session: not signed in
            other_session.goto(server.url + "/static/console.html")
            other_session.wait_for_timeout(1000)
            expect(other_session.locator("#login")).to_be_visible()
            assert other_session.evaluate("sessionStorage.getItem('powerdesk.staff')") is None

            second_tab.click("#logout")  # signing out in one tab signs out the session's tabs
            expect(page.locator("#login")).to_be_visible()
        finally:
            browser.close()
            with session_scope() as session:
                session.execute(delete(OpsAlert).where(OpsAlert.rule == "browser_test_alert"))
                session.execute(delete(CustomerProfile))


def test_chinese_text_renders_as_glyphs_not_tofu(server: ServeProcess) -> None:
    """Without a CJK font every Chinese character is the same empty box: 电 and 费 would render
    alike and like a character no font has. Compare pixels of the page's own font stack."""
    import io

    from PIL import Image, ImageChops
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(server.url + "/static/console.html")
            page.evaluate(r"""() => {
                for (const [id, text] of [["dian", "电"], ["fei", "费"], ["tofu", "\u{10FFFD}"], ["blank", "\u3000"]]) {
                    const span = document.createElement("span");
                    span.id = id; span.textContent = text;
                    span.style.cssText = "display:inline-block;font-size:48px;line-height:64px;padding:4px;background:#fff;color:#000";
                    document.body.prepend(span);
                }
            }""")

            def shot(selector: str) -> Image.Image:
                return Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("L")

            dian, fei, tofu, blank = (shot(f"#{name}") for name in ("dian", "fei", "tofu", "blank"))
        finally:
            browser.close()

    def ink(image: Image.Image) -> int:
        return sum(image.histogram()[:128])  # dark pixels

    def differ(a: Image.Image, b: Image.Image) -> int:
        width, height = min(a.width, b.width), min(a.height, b.height)
        diff = ImageChops.difference(a.crop((0, 0, width, height)), b.crop((0, 0, width, height)))
        return sum(diff.histogram()[65:])  # pixels that differ clearly

    assert ink(blank) == 0 and ink(dian) > 150 and ink(fei) > 150  # glyphs have strokes
    assert differ(dian, fei) > 150, "电 and 费 render alike: boxes, not glyphs (install fonts-noto-cjk)"
    assert differ(dian, tofu) > 150 and differ(fei, tofu) > 150, "Chinese renders as the missing-glyph box"


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


def test_staff_lift_an_identity_lock_from_the_console(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.channels.serve_process import web_conversation
    from tools.models import IdentityLockLift

    ghost = "440197700001"  # no customer: the lock and its lift work the same
    for tail in ("1001", "1002", "1003", "1004", "1005"):
        conversation_id, token = web_conversation(server.url)
        response = httpx.post(f"{server.url}/api/chat/conversations/{conversation_id}/messages?stream=false",
                              json={"text": f"户号{ghost}，尾号{tail}"}, headers=token, timeout=60)
        assert response.status_code == 200, response.text
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(server.url + "/static/console.html")
            page.fill("#token", STAFF_TOKEN)
            page.click("#login button")
            row = page.locator("#locks li", has_text=ghost)
            expect(row).to_contain_text("非本单位户号")
            asked: list[str] = []

            def answer(dialog) -> None:  # noqa: ANN001
                asked.append(dialog.message)
                dialog.accept("客户到营业厅出示户主身份证件")

            page.once("dialog", answer)
            row.locator("button", has_text="解除锁定").click()
            expect(page.locator("#message")).to_contain_text("已解除")
            expect(row).to_have_count(0)
            assert "必填" in asked[0] and ghost in asked[0]
        finally:
            browser.close()
    with session_scope() as session:
        lift = session.scalars(select(IdentityLockLift).where(IdentityLockLift.key == ghost)).one()
        assert lift.reason == "客户到营业厅出示户主身份证件" and lift.lifted_by.startswith("staff:")
