"""General rules/procedure questions, told apart from questions about the customer's own bill.

「违约金怎么算」「欠费会停电吗」「微信怎么绑定户号」 ask how things work: the knowledge base answers
them and no verification is needed. 「我4月电费忘交了，现在要交多少违约金」 names the customer's own
bill (a month, 这期, 我家, 帮我查 …) and stays an account task. The local brain routes on
`is_general_question`; `question_part` picks the clause that asks, which is what an article
title is matched against (`knowledge_base.rerank.best_hit`).
"""

from __future__ import annotations

import re

# A general "how / what / how long / will it" question about rules or procedures ...
GENERAL_QUESTION = re.compile(
    r"(?:怎么|怎样|如何)(?:算|计算|收|申请|办|办理|绑定|查|处理|退)|怎么办|多久|多长时间|几个?工作日|是什么|什么是|"
    r"什么叫|为什么要|为啥要|去哪|哪里|在哪|哪些|会不会|会被.{0,6}吗|能不能退|规定|标准是")
# ... unless it is about the customer's own bill or payment (then it is an account task).
ABOUT_MY_ACCOUNT = re.compile(
    r"我家|我们|我的?(?:[0-9一二三四五六七八九十]+月|这期|本期|账单)|我.{0,4}(?:欠了|没交|忘交|交了没|逾期了)|"
    r"我(?:要|想)|我.{0,8}要(?:申请|办)|本期|这期|这个月|上个月|上上个月|帮我|给我查|查一下|查下|有没有欠|欠了多少|要交多少|多少钱")


def is_general_question(text: str) -> bool:
    """A question about how things work, not about this customer's bill."""
    return GENERAL_QUESTION.search(text) is not None and ABOUT_MY_ACCOUNT.search(text) is None


def question_part(query: str) -> str:
    """The clauses of `query` that ask the question (「怀疑电表走得快，怎么申请校验电表」 → the second)."""
    parts = [p for p in re.split(r"[，,。？?！!；;\s]+", query) if p]
    asking = [p for p in parts if GENERAL_QUESTION.search(p)]
    return "".join(asking) or query


# 「为什么我的电费是估抄的」「电量是估的吗」: whether a bill rests on an estimated reading. 估计 alone
# is "I guess" (「我估计是电表坏了」), so only 估计值/估计电量/估计读数/估计示数 count.
ESTIMATE_QUESTION = re.compile(r"估抄|估表|估数|估读|是估的|按估|估(?:算|计)(?:的|值|电量|读数|示数)")


def asks_about_estimate(text: str) -> bool:
    """The customer asks whether (or why) their bill's reading was estimated."""
    return ESTIMATE_QUESTION.search(text) is not None
