"""Query normalisation: noisy customer text must reach the same words the articles use."""

from __future__ import annotations

from knowledge_base.lexical import JiebaTokenizer
from knowledge_base.normalize import (
    MAX_QUERY_CHARS, PinyinCorrector, QueryNormalizer, normalize_text, truncate_query,
)


def test_traditional_and_full_width_become_simplified_half_width() -> None:
    assert normalize_text("電費９５５９８ＡＢＣ") == "电费95598abc"


def test_asr_homophones_and_typos_are_fixed() -> None:
    normalizer = QueryNormalizer()
    assert "电费" in normalizer.normalize("我个店费点解咁贵")
    assert "违约金" in normalizer.normalize("滞纳金怎么算")
    assert "峰谷" in normalizer.normalize("风谷电价系咩")


def test_spoken_digits_become_numbers_but_words_stay() -> None:
    normalizer = QueryNormalizer()
    assert "95598" in normalizer.normalize("打九五五九八")
    assert "110" in normalizer.normalize("幺幺零")
    assert "一户多人口" in normalizer.normalize("一户多人口怎么申请")
    assert "一户多人口" in normalizer.normalize("一户多人怎么申请")


def test_cantonese_phrasing_becomes_mandarin() -> None:
    text = QueryNormalizer().normalize("電費點樣交？有冇得用支付寶")
    assert "怎么" in text and "有没有" in text and "支付宝" in text


def test_jiao_and_jiao_fees_map_to_one_token_on_both_sides() -> None:
    tokenizer = JiebaTokenizer()
    assert "缴费" in tokenizer.tokens("网上交费")
    assert "缴费" in tokenizer.tokens("网上缴费")


def test_pinyin_correction_uses_corpus_vocabulary_and_leaves_known_words_alone() -> None:
    corpus = ["居民阶梯电价怎么算", "峰谷电价的时段"]
    corrector = PinyinCorrector(["阶梯电价", "峰谷电价", "时段"], corpus)
    assert corrector.correct("接替电价怎么算") == "阶梯电价怎么算"
    assert corrector.correct("峰谷电价的时段") == "峰谷电价的时段"
    # n/l and -ng/-n blur for southern speakers: 时断 (shi duan) ~ 时段
    assert "时段" in corrector.correct("峰谷电价的时断")


def test_long_query_is_truncated_to_head_and_tail() -> None:
    text = "我家" + "电费很贵" * 1250 + "阶梯电价怎么算"
    short, truncated = truncate_query(text)
    assert truncated and len(short) <= MAX_QUERY_CHARS + 3
    assert short.startswith("我家") and short.endswith("阶梯电价怎么算")
    assert truncate_query("阶梯电价") == ("阶梯电价", False)


def test_dialect_rules_leave_ordinary_mandarin_alone() -> None:
    normalizer = QueryNormalizer()
    for text in ("联系客服", "系统显示欠费", "关系到电费", "请快点处理", "提交申请", "仲裁结果"):
        assert normalizer.normalize(text) == normalize_text(text)
    assert normalizer.normalize("晚交一两天") == "晚交一两天"  # a range, not the number 12
    assert normalizer.normalize("七月用咗四百度") == "7月用了400度"
    assert normalizer.normalize("超了百分之一百零五") == "超了105%"


def test_repeated_sentences_are_dropped_before_truncating() -> None:
    short, truncated = truncate_query("支付宝能交电费吗？" * 600)
    assert truncated and short == "支付宝能交电费吗"


def test_pinyin_correction_never_rewrites_to_a_term_sharing_no_character() -> None:
    corrector = PinyinCorrector(["回访"], ["投诉回访"])
    assert corrector.correct("会不会放宽") == "会不会放宽"  # 会放 sounds like 回访 but is not a typo of it
