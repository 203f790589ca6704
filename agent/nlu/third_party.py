"""Whose account is this about? A lexical check that backs up the `other_account` intent.

"查我家电费" and "查我姨妈家电费" differ by one word, which neither a sentence embedding nor
character n-grams weigh reliably with a few dozen examples. So the classifier's verdict on
`other_account` is checked against an explicit list of words that point at someone else
(邻居, 朋友, 房东, 表哥, 别人, 这个户是谁的 …): without such a word the clause is about the
customer's own account; with one, a billing question leans to `other_account`. This only
labels the request; the tools still refuse any account the session has not verified.
"""

from __future__ import annotations

import re

from agent.nlu.classifier import IntentScore

OTHER_ACCOUNT = "other_account"
# Billing questions that become `other_account` when they are about someone else.
BILLING_INTENTS = frozenset(
    {"lookup_bill", "payment_status", "explain_bill", "overdue_late_fee", "open_dispute", "provide_identity"}
)
# Upgrade only when the classifier already considers `other_account` plausible.
MIN_OTHER_ACCOUNT_SCORE = 0.05

THIRD_PARTY_CUE = re.compile(
    r"邻居|隔壁|隔篱|对门|对面|楼上|楼下|别人|别家|他人|其他人|其它人|其他户|其它户|其他住户|另一个户|另一户|另一个人"
    r"|朋友|同事|同学|亲戚|房东|租客|房客|业主|老板|前夫|前妻|前任|闺蜜|保姆|会计"
    r"|[表堂][哥姐弟妹]|[姑舅姨叔伯婶]|岳[父母]|公公|婆婆|老王|张三|李四|外人"
    r"|侄子|侄女|外甥|姐夫|妹夫|嫂子|弟媳|干妈|干爹|老乡|亲家|丈母娘|老丈人|[男女]朋友|[男女]友|盆友|邻局"
    r"|我的?(?:员工|下属|租户|客户)"
    # a relative's own household: 「我奶奶家」「我阿妈屋企」 (but not 「我家」)
    r"|(?:爸|妈|爷爷|奶奶|外公|外婆|姥姥|姥爷|儿子|女儿|父母|阿哥|阿姐|阿爷|阿嫲)(?:家|屋企|那户|那边|嗰户)"
    r"|(?:他|她|佢)(?:家|屋企|的|嘅|那)|[哥姐弟妹](?:家|那)|户主(?:是谁|电话|手机|名字|姓名|叫什么)|是谁的|谁在用|谁的户"
    r"|不是我的|不是本人的|不是户主|户主的|(?:他|她)户|(?:户号|户)的?(?:地址|手机|电话|名字|身份证)"
    r"|(?:告诉|发给|发)我.{0,14}(?:地址|手机号|电话|身份证)|(?:地址|手机号|电话|身份证号?)(?:告诉|发给)我"
    # whose is it / many households at once: 「这个户号是谁的名字」「楼里谁家欠费」「整栋楼的电费」
    r"|谁家|哪家|哪户|哪些人|哪些户|哪几户|王五|赵六|(?:户号|户|账户).{0,8}(?:是谁|系边个|是边个|边个)"
    r"|对应(?:的|哪个|哪一个)?户号|整栋|整幢|全楼|整个小区|(?:楼|小区)里(?:谁|哪|其他|别)|批量"
)


_COMPARISON = frozenset("比跟和同像")  # 「比邻居家高」 compares, it does not ask about the neighbour


def mentions_someone_else(text: str) -> bool:
    return any(
        match.start() == 0 or text[match.start() - 1] not in _COMPARISON
        for match in THIRD_PARTY_CUE.finditer(text)
    )


def _promote(ranking: list[IntentScore], winner: IntentScore) -> list[IntentScore]:
    """Put `winner` first with the displaced top score, and give the old top the winner's score.

    The check is a decision about whose account it is, not about what is asked, so the
    confidence that a billing request was made carries over to the corrected intent.
    """
    top = ranking[0]
    rest = [s for s in ranking[1:] if s.intent != winner.intent]
    return [IntentScore(winner.intent, top.score), IntentScore(top.intent, winner.score), *rest]


def check_ownership(text: str, ranking: list[IntentScore]) -> list[IntentScore]:
    """Reorder a clause's ranking so that `other_account` is first exactly when it should be."""
    if len(ranking) < 2:
        return ranking
    top = ranking[0].intent
    someone_else = mentions_someone_else(text)
    if top == OTHER_ACCOUNT and not someone_else:
        return _promote(ranking, ranking[1])
    if top in BILLING_INTENTS and someone_else:
        other = next((s for s in ranking if s.intent == OTHER_ACCOUNT), None)
        if other is not None and other.score >= MIN_OTHER_ACCOUNT_SCORE:
            return _promote(ranking, other)
    return ranking
