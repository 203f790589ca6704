"""BM25 over jieba tokens, with a user dictionary of electricity-billing terms.

Without the dictionary jieba splits 「阶梯电价」 into 阶梯/电价 and 「一户多人口」 into noise, so the
exact terms customers and articles share would score like ordinary words. Both corpus and query
pass through `normalize_text` first so width, script and synonyms agree.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

import jieba
import numpy as np
from rank_bm25 import BM25Okapi

from knowledge_base.normalize import normalize_text

jieba.setLogLevel(logging.WARNING)

DOMAIN_TERMS: tuple[str, ...] = (
    "阶梯电价", "阶梯电量", "峰谷", "峰谷电价", "分时电价", "尖峰电价", "尖峰", "高峰", "低谷", "平段",
    "力调电费", "功率因数", "功率因数调整电费", "代理购电", "电网代购", "一户多人口", "两部制", "单一制",
    "基本电费", "电度电费", "需量", "最大需量", "变压器容量", "市场化用户", "基金及附加", "政府性基金",
    "违约金", "电费违约金", "欠费", "停电", "复电", "催费", "抄表", "估抄", "智能电表", "电表", "电能表",
    "电费", "电价", "电量", "缴费", "缴电费", "代扣", "银行代扣", "预存", "预付费", "电子发票", "增值税发票",
    "南网在线", "95598", "微信服务号", "支付宝", "营业厅", "过户", "更名", "改名", "手机号", "户号",
    "退补", "退费", "追补", "电费异议", "投诉", "举报", "表扬", "身份核验", "隐私", "个人信息",
    "夏季", "非夏季", "居民", "工商业", "农业生产", "合表用户", "分布式光伏", "余电上网", "故障报修", "报装",
    "业扩报装", "增容", "减容", "暂停", "销户", "电费账单", "电费单", "账单", "上网电价", "输配电价",
)

STOPWORDS: frozenset[str] = frozenset(
    "的 了 吗 呢 啊 呀 吧 哦 喔 啦 嘛 哈 么 我 我们 你 你们 您 他 她 它 是 在 有 和 与 及 或 就 都 也 还 又 "
    "要 会 能 可以 这 那 这个 那个 一个 一下 什么 怎么 怎样 如何 为什么 多少 哪 哪里 哪个 吗 请问 请 想 "
    "问 问下 还要 还是 一下 知道 告诉 帮 帮忙 麻烦 谢谢 你好 您好 喂 嗯 呃 就是 然后 那么 这么 个 把 被 给 让 "
    "到 从 对 为 以 及其 等 等等 其 之 而 但 但是 如果 因为 所以 没 不 没有 吗? ? ! , . 、 : ; ( ) …".split()
)

_TOKEN_OK = re.compile(r"[\w\u4e00-\u9fff]")


class JiebaTokenizer:
    """A private jieba tokenizer (the global one is shared with other code) with our dictionary."""

    def __init__(self, extra_terms: Iterable[str] = ()) -> None:
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        for term in (*DOMAIN_TERMS, *extra_terms):
            term = normalize_text(term)
            if 2 <= len(term) <= 12 and " " not in term:
                self._jieba.add_word(term, freq=200000)

    def tokens(self, text: str, already_normalized: bool = False) -> list[str]:
        text = text if already_normalized else normalize_text(text)
        return [t for t in self._jieba.cut_for_search(text)
                if t.strip() and t not in STOPWORDS and _TOKEN_OK.search(t)]

    def words(self, text: str) -> list[str]:
        """Plain segmentation (no sub-words), used to build the correction vocabulary."""
        return [t for t in self._jieba.cut(normalize_text(text)) if t.strip()]


class LexicalIndex:
    """BM25Okapi over a fixed list of documents, addressed by position."""

    def __init__(self, texts: Sequence[str], tokenizer: JiebaTokenizer) -> None:
        self.tokenizer = tokenizer
        corpus = [tokenizer.tokens(t) or ["∅"] for t in texts]
        self._bm25 = BM25Okapi(corpus) if corpus else None
        self.size = len(corpus)

    def scores(self, normalized_query: str) -> np.ndarray:
        if self._bm25 is None:
            return np.zeros(0)
        tokens = self.tokenizer.tokens(normalized_query, already_normalized=True)
        if not tokens:
            return np.zeros(self.size)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)
