"""`covers`: does the chosen article answer the asked point, or a neighbouring question (real articles)?"""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_base.articles import load_articles
from knowledge_base.rerank import COVERAGE_PATH, CoverageRulesError, covers, load_coverage_rules

# The arrangement flow's search topic, appended to the customer's words (agent/flows/arrangement.py).
ARRANGEMENT_TOPIC = "电费分期缴纳 缓交 延期缴费"


def _hit(article_id: str) -> dict[str, str]:
    """A hit as the search tool returns it: the article's title and its first section."""
    article = next(a for a in load_articles().articles if a.id == article_id)
    head, _, rest = article.body.partition("\n## ")[2].partition("\n")
    return {"article_id": article_id, "title": article.title, "section": head, "text": rest.split("\n## ")[0]}


def test_a_neighbouring_article_does_not_cover_the_asked_point() -> None:
    # issue 13's two: 专用发票 answered by the e-invoice article, 多久会停电 by the reconnection one
    assert not covers("可以开增值税专用发票吗", _hit("payment-einvoice-get"))
    assert covers("可以开增值税专用发票吗", _hit("payment-vat-special-invoice"))
    assert not covers("欠费多久会停电", _hit("due-reconnection"))
    assert covers("欠费多久会停电", _hit("due-power-cut-timeline"))
    assert covers("交了钱多久来电", _hit("due-reconnection"))
    # a point no article names is not covered by the nearest one
    assert not covers("电费能用信用卡交吗", _hit("payment-wechat-pay"))
    assert not covers("电费可以用数字人民币交吗", _hit("payment-alipay"))


def test_colloquial_and_cantonese_questions_are_still_covered_by_their_article() -> None:
    assert covers("微信点样交电费", _hit("payment-wechat-pay"))
    assert covers("我想帮隔篱屋查下电费", _hit("privacy-others-bill"))
    assert covers("阶梯电价系点计嘅", _hit("tariff-residential-tiers"))
    assert covers("專票可以開嗎", _hit("payment-vat-special-invoice"))  # Traditional characters


def test_a_share_of_too_few_pairs_is_not_judged_and_an_unrelated_title_is_refused() -> None:
    assert covers("电费", _hit("payment-wechat-pay"))  # one pair: nothing to judge by
    assert not covers("新房怎么开户", _hit("account-transfer-ownership"))


def test_an_appended_topic_is_judged_as_the_topic_and_never_as_the_customers_point() -> None:
    plan = _hit("due-payment-plan")
    # the customer's colloquial words share no pair with the article: the flow's topic carries it
    assert not covers("缓几天交行不行", plan)
    assert covers("缓几天交行不行", plan, topic=ARRANGEMENT_TOPIC)
    # a point in the customer's own words is still looked for
    assert not covers("分期交电费要利息吗", plan, topic=ARRANGEMENT_TOPIC)
    # and a point is never read into the topic: 「专票」 appended by a flow asks for nothing
    assert covers("缓几天交行不行", plan, topic=f"{ARRANGEMENT_TOPIC} 专票")


def test_the_committed_rules_load_and_a_malformed_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    rules = load_coverage_rules(COVERAGE_PATH)
    assert 0 < rules.threshold < 1 and rules.points and "怎么" in rules.stop_pairs
    good = COVERAGE_PATH.read_text(encoding="utf-8")
    cases = {
        "threshold": good.replace("threshold: 0.1", "threshold: 1.5"),
        "min_pairs": good.replace("min_pairs: 3", "min_pairs: three"),
        r"points\[0\]\.asked\[0\]": good.replace("asked: [专用发票,", "asked: ['专用(发票',", 1),
        r"points\[1\]\.answered_by": good.replace("answered_by: [停电通知, 停电前]", "answered_by: []", 1),
        "stop_pairs": good.replace("stop_pairs: [怎么,", "stop_pairs: [怎么办呢,", 1),
        "effective_date": good.replace("effective_date: 2026-12-04", "effective_date: soon"),
    }
    for field, text in cases.items():
        assert text != good, field
        path = tmp_path / "coverage.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(CoverageRulesError, match=rf"coverage\.yaml \[{field}\]"):
            load_coverage_rules(path)
