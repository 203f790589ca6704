"""The local brain's knowledge-base answer: which passage answers, whether it covers the asked point,
and which questions are general."""

from __future__ import annotations

from collections.abc import Callable

from agent.agent import Agent
from agent.nlu.questions import ABOUT_MY_ACCOUNT, asks_about_estimate, is_general_question, question_part
from agent.replies import render
from knowledge_base.rerank import best_hit, with_article_context


def _best_hit(query: str, hits: list[dict[str, str]]) -> dict[str, str]:
    """What the knowledge flow does: match titles against the clause that asks."""
    return best_hit(question_part(query), hits)


def _hit(article_id: str, title: str, section: str = "", text: str = "") -> dict[str, str]:
    return {"article_id": article_id, "title": title, "section": section, "text": text}


def test_the_title_matching_the_asking_clause_wins_over_retrieval_order() -> None:
    hits = [_hit("meter-suspected-fault", "怀疑电表走得快、不准，怎么办？"),
            _hit("meter-check-request", "如何申请电表校验（验表）？")]
    assert _best_hit("怀疑电表走得快，怎么申请校验电表", hits)["article_id"] == "meter-check-request"


def test_retrieval_order_breaks_a_tie() -> None:
    hits = [_hit("a", "电费有哪些缴费方式？"), _hit("b", "可以到营业厅交电费吗？")]
    assert _best_hit("帮我查一下5月电费，另外电费可以在哪里交", hits)["article_id"] == "a"


def test_a_section_heading_that_names_the_asked_point_beats_a_closer_title() -> None:
    # The five passages retrieval returned, in its order. The residential title shares one pair
    # more with the question (电费), but the dedicated article's section 「过了到期日就开始算」 names
    # the asked point once 截止日期 reads as 到期日; the residential article's phrasings add no more.
    hits = [_hit("due-due-date", "电费什么时候要交？缴费期限是多久？"),
            _hit("due-late-fee-residential", "居民电费逾期了违约金怎么算？"),
            _hit("due-late-fee-business", "企业、商铺、农业用电逾期违约金怎么算？"),
            _hit("bill-late-fee-line", "账单上多了一行“违约金”，是怎么算的？"),
            _hit("due-late-fee-start", "晚交一两天也要交违约金吗？")]
    assert _best_hit("电费过了截止日期多久开始收违约金", hits)["article_id"] == "due-late-fee-start"
    # ... while a question worded like the residential title still gets it.
    assert _best_hit("居民电费逾期违约金怎么算", hits)["article_id"] == "due-late-fee-residential"


def test_many_keywords_do_not_outvote_one_close_phrasing() -> None:
    # Only the closest phrasing counts: an article is not preferred for having more keywords.
    hits = [_hit("payment-channels-overview", "电费有哪些缴费方式？"), _hit("payment-alipay", "可以用支付宝交电费吗？")]
    assert _best_hit("支付宝怎么交电费", hits)["article_id"] == "payment-alipay"
    assert _best_hit("有哪些缴费方式", hits)["article_id"] == "payment-channels-overview"


def test_a_short_passage_gets_the_rest_of_its_article() -> None:
    hit = _hit("payment-channels-overview", "电费有哪些缴费方式？", "线下缴费", "- 营业厅柜台缴费。\n- 自助缴费终端。")
    text = with_article_context(hit)
    assert text.startswith("- 营业厅柜台缴费。") and "微信" in text


def test_general_and_personal_questions_are_told_apart() -> None:
    general = ["居民电费逾期了违约金怎么算", "欠电费会被停电吗", "微信怎么绑定户号"]
    personal = ["我4月电费忘交了，现在要交多少违约金", "帮我查一下这个月电费多少钱"]
    assert all(is_general_question(t) for t in general)
    assert all(ABOUT_MY_ACCOUNT.search(t) and not is_general_question(t) for t in personal)


def test_a_question_about_an_estimated_reading_is_told_from_i_guess() -> None:
    asked = ["为什么我的电费是估抄的", "这个月电量是估的吗", "是不是按估计电量收的", "账单上是估计值吗"]
    assert all(asks_about_estimate(t) for t in asked)
    assert not any(asks_about_estimate(t) for t in ["我估计是电表坏了", "这个月电费为什么这么高", "估计要交多少"])


def test_a_neighbouring_article_is_not_given_as_the_answer(make_agent: Callable[..., Agent],
                                                           knowledge: Callable) -> None:
    agent = make_agent(knowledge=knowledge)
    for i, question in enumerate(["电费能用信用卡交吗", "电费可以用数字人民币交吗"]):
        reply = agent.handle(f"kb-nc-{i}", "web", question)
        assert reply.text == render("kb_not_covered").text and "人工" in reply.text
        assert not reply.citations and not reply.actions  # nothing resolved: a person is offered


def test_the_questions_that_got_a_neighbour_before_now_get_their_own_article(
        make_agent: Callable[..., Agent], knowledge: Callable) -> None:
    agent = make_agent(knowledge=knowledge)
    expected = {"可以开增值税专用发票吗": "payment-vat-special-invoice", "欠费多久会停电？": "due-power-cut-timeline",
                "交了钱多久来电": "due-reconnection", "居民阶梯电价是怎么算的": "tariff-residential-tiers"}
    for i, (question, article_id) in enumerate(expected.items()):
        reply = agent.handle(f"kb-ok-{i}", "web", question)
        assert [c["article_id"] for c in reply.citations] == [article_id], question
        assert reply.citations[0]["title"] in reply.text and reply.grounded


def test_the_arrangement_flow_judges_the_customers_words_not_its_appended_topic(
        make_agent: Callable[..., Agent], knowledge: Callable) -> None:
    agent = make_agent(knowledge=knowledge)
    colloquial = agent.handle("kb-arr-1", "web", "缓几天交行不行")  # shares no word with the article
    assert [c["article_id"] for c in colloquial.citations] == ["due-payment-plan"]
    assert render("arrangement_offer_person").text in colloquial.text
    interest = agent.handle("kb-arr-2", "web", "分期交电费要利息吗")  # the article never says 利息
    assert interest.text.startswith(render("kb_not_covered").text) and not interest.citations
    assert render("arrangement_offer_person").text in interest.text
