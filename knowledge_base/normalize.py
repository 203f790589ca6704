"""Normalise noisy customer text so it can match the knowledge base.

Customers type Traditional characters, full-width digits, Cantonese phrasing and typos, and voice
channels deliver ASR transcripts full of homophones (「店费」 for 电费, 「幺」 for 1). Both the corpus
and the query go through `normalize_text` (width, case, script, canonical synonyms); the query
additionally gets dialect, typo and digit fixes and a pinyin-based correction against the corpus
vocabulary (a window of the query that never occurs in the corpus but sounds like a corpus word is
replaced by that word).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache

import cn2an
import opencc
from pypinyin import Style, lazy_pinyin

from knowledge_base.digit_words import DIGIT_WORDS

MAX_QUERY_CHARS = 200  # longer queries keep their head and tail (problem first, question last)

_T2S = opencc.OpenCC("t2s")
_SPACES = re.compile(r"\s+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_SENTENCE_END = re.compile(r"[。！？!?；;，,\n]+")

# Same meaning, different wording: mapped to one form on BOTH sides so BM25 sees one token.
CANONICAL_FORMS: tuple[tuple[str, str], ...] = (
    ("滞纳金", "违约金"),
    ("截止日期", "到期日"),  # customers say 截止日期, bills and articles 到期日
    ("截止日", "到期日"),
    ("交电费", "缴电费"),
    ("交费", "缴费"),
    ("交纳", "缴纳"),
    ("交钱", "缴费"),
    ("电度表", "电表"),
    ("电能表", "电表"),
    ("智能电表", "智能电表"),
    ("南方电网在线", "南网在线"),
    ("网上国网", "南网在线"),  # customers borrow State Grid's app name; ours is 南网在线
)

# Cantonese (after Traditional→Simplified) and other spoken forms → standard Mandarin.
DIALECT_FORMS: tuple[tuple[str, str], ...] = (  # longest phrases first: order matters
    ("你哋", "你们"), ("我哋", "我们"), ("佢哋", "他们"), ("人哋", "别人"), ("隔篱屋", "邻居"),
    ("隔篱", "邻居"), ("平啲", "便宜些"), ("好平", "很便宜"), ("洗衫", "洗衣服"), ("过咗期", "逾期了"),
    ("会点", "会怎样"), ("摊落", "分摊到"), ("搬走", "搬家"), ("过身", "去世"), ("几日", "几天"),
    ("会唔会平", "会不会便宜"),
    ("系唔系", "是不是"), ("系咪", "是不是"), ("点解", "为什么"), ("点样", "怎么"), ("点算", "怎么办"),
    ("几多钱", "多少钱"), ("几钱", "多少钱"), ("几多", "多少"), ("几时", "什么时候"), ("乜嘢", "什么"), ("咩嘢", "什么"),
    ("边度", "哪里"), ("边个", "谁"), ("边间", "哪个"), ("而家", "现在"), ("有冇", "有没有"),
    ("得唔得", "可不可以"), ("可唔可以", "可不可以"), ("识唔识", "会不会"), ("屋企", "家里"),
    ("唔该", "请问"), ("唔", "不"), ("冇", "没有"), ("嘅", "的"), ("咗", "了"), ("佢", "他"),
    ("啲", "些"), ("畀", "给"), ("睇", "看"), ("搵", "找"), ("揾", "找"), ("嚟", "来"), ("喺", "在"),
    ("咩", "什么"), ("噉", "这样"), ("咁", "这么"), ("啱", "对"), ("攞", "拿"), ("嘢", "东西"),
    ("冚", "全"), ("咪", "不要"), ("俾钱", "付钱"), ("交唔起", "交不起"),
    ("几耐", "多久"), ("做乜", "做什么"), ("今个月", "这个月"), ("嗰", "那"),
    ("定系", "还是"), ("乜", "什么"), ("咋整", "怎么办"), ("咋办", "怎么办"), ("咋", "怎么"), ("啥", "什么"), ("俺", "我"),
)

# Frequent typos and ASR homophones seen in billing conversations.
TYPO_FORMS: tuple[tuple[str, str], ...] = (
    ("店费", "电费"), ("电废", "电费"), ("电肺", "电费"), ("垫费", "电费"), ("殿费", "电费"),
    ("店表", "电表"), ("电标", "电表"), ("店价", "电价"), ("电驾", "电价"),
    ("接梯", "阶梯"), ("阶体", "阶梯"), ("节梯", "阶梯"), ("街梯", "阶梯"), ("阶第", "阶梯"),
    ("风谷", "峰谷"), ("峰古", "峰谷"), ("丰谷", "峰谷"), ("锋谷", "峰谷"), ("峰骨", "峰谷"),
    ("违约今", "违约金"), ("围约金", "违约金"), ("为约金", "违约金"), ("维约金", "违约金"),
    ("只付宝", "支付宝"), ("支付包", "支付宝"), ("支福宝", "支付宝"), ("威信", "微信"), ("薇信", "微信"),
    ("难网在线", "南网在线"), ("南往在线", "南网在线"), ("蓝网在线", "南网在线"), ("南网再线", "南网在线"),
    ("代购电", "代理购电"), ("待理购电", "代理购电"), ("力调费", "力调电费"), ("利调电费", "力调电费"),
    ("功率因素", "功率因数"), ("过护", "过户"), ("过沪", "过户"), ("投素", "投诉"), ("头诉", "投诉"),
    ("退不", "退补"), ("抄标", "抄表"), ("超表", "抄表"), ("钞表", "抄表"), ("发飘", "发票"),
    ("发漂", "发票"), ("代扣", "代扣"), ("带扣", "代扣"), ("待扣", "代扣"), ("停店", "停电"),
    ("亭电", "停电"), ("挺电", "停电"), ("隐私", "隐私"), ("印私", "隐私"),
)

# Three or more spoken digits in a row are a number read out digit by digit (九五五九八 → 95598).
# 拐/勾 stay words in a query (「七拐八拐的线路」), as before the table was shared.
_CHINESE_DIGITS = {word: digit for word, digit in DIGIT_WORDS.items() if word not in "拐勾"}
_DIGIT_RUN = re.compile(f"[{''.join(_CHINESE_DIGITS)}]{{3,}}")
_ONE_PEOPLE = re.compile(r"一户多人(?!口)")
# Spoken quantities with a unit the articles write in digits (「四百度」→400度, 「百分之一百零五」→105%).
_SPOKEN_QUANTITY = re.compile(
    r"(百分之)?([零〇一二两三四五六七八九十百千万]+(?:点[零一二三四五六七八九]+)?)"
    r"(度|月份|月|天|日|倍|块钱|块|元|千伏|千瓦|号|年)?"
)
_APPROXIMATION = re.compile(r"^[一二两三四五六七八九]{2,}$")  # 一两天, 三四个月: a range, not a number


# Cantonese 点 + verb is "how to ..." (点计 = 怎么算); 仲 = 还 (but not in 仲裁); 系 before a
# number word or negation is the copula 是 (系统/关系 are untouched).
_DIALECT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<![快一有早晚慢多少好差])点(?=计|算|睇|交|开|办|申请|报修|查|改|退|处理|收|搞|弄|填)"), "怎么"),
    (re.compile(r"仲(?!裁)"), "还"),
    (re.compile(r"(?<![关联体维])系(?=[第一二三四五六七八九十不咪唔怎])"), "是"),
    (re.compile(r"怎么计"), "怎么算"),
    (re.compile(r"(?<![提转移外公成])交(?=$|[吗呢啊吧?,.!])"), "缴费"),  # 「在哪里交」: the fee is implied
)


def _apply_forms(text: str, forms: Iterable[tuple[str, str]]) -> str:
    for wrong, right in forms:
        if wrong != right and wrong in text:
            text = text.replace(wrong, right)
    return text


def normalize_text(text: str) -> str:
    """Width, case, script and canonical wording; applied to corpus and queries alike."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _T2S.convert(text)
    text = _SPACES.sub(" ", text).strip()
    return _apply_forms(text, CANONICAL_FORMS)


def truncate_query(text: str, limit: int = MAX_QUERY_CHARS) -> tuple[str, bool]:
    """Shorten a very long query: drop repeated sentences (ASR loops, pasted text), then keep the
    head and the tail, because customers describe the problem first and ask last."""
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= limit:
        return text, False
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    unique = list(dict.fromkeys(s.strip() for s in sentences))
    joined = "，".join(unique)
    if len(joined) <= limit:
        return joined, True
    half = limit // 2
    return f"{joined[:half]} … {joined[-half:]}", True


def _quantity(match: re.Match[str]) -> str:
    percent, number, unit = match.group(1), match.group(2), match.group(3)
    if not (percent or unit or "点" in number) or _APPROXIMATION.match(number):
        return match.group(0)
    try:
        value = cn2an.cn2an(number.replace("两", "二").replace("〇", "零"), "smart")
    except (ValueError, KeyError, IndexError):
        return match.group(0)
    text = str(int(value)) if float(value).is_integer() and "点" not in number else str(value)
    return f"{text}%" if percent else f"{text}{unit or ''}"


def spoken_digits_to_arabic(text: str) -> str:
    """Digit-by-digit readings (九五五九八, 幺) and spoken quantities with a unit become Arabic digits."""
    text = _DIGIT_RUN.sub(lambda m: "".join(_CHINESE_DIGITS[c] for c in m.group(0)), text)
    return _SPOKEN_QUANTITY.sub(_quantity, text)


# Southern Mandarin/Cantonese speakers (and ASR) blur these: zh/z, ch/c, sh/s, n/l, -ng/-n.
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


@lru_cache(maxsize=20000)
def fuzzy_syllable(char: str) -> str:
    syllable = lazy_pinyin(char, style=Style.NORMAL, errors="default")[0]
    for long, short in _FUZZY_INITIALS:
        if syllable.startswith(long):
            syllable = short + syllable[len(long):]
            break
    for long, short in _FUZZY_FINALS:
        if syllable.endswith(long):
            syllable = syllable[: -len(long)] + short
            break
    return syllable


@lru_cache(maxsize=20000)
def exact_syllable(char: str) -> str:
    return lazy_pinyin(char, style=Style.NORMAL, errors="default")[0]


def exact_key(word: str) -> str:
    return " ".join(exact_syllable(c) for c in word)


def fuzzy_key(word: str) -> str:
    return " ".join(fuzzy_syllable(c) for c in word)


class PinyinCorrector:
    """Replace query windows that never occur in the corpus but sound like a domain term.

    Only domain terms are candidates (not every corpus word: 「那个」 must not become 「哪个」).
    Two-character terms need the exact toneless pinyin; longer ones tolerate the southern
    zh/z, n/l, -ng/-n blur, where a false match is unlikely. The window must share a character
    with the term, as real typos do.
    """

    def __init__(self, vocabulary: Iterable[str], corpus_texts: Iterable[str],
                 min_len: int = 2, max_len: int = 4) -> None:
        self.min_len, self.max_len = min_len, max_len
        self._ngrams: set[str] = set()
        counts: Counter[str] = Counter()
        for text in corpus_texts:
            for run in _CJK_RUN.findall(text):
                for n in range(min_len, max_len + 1):
                    for i in range(len(run) - n + 1):
                        gram = run[i:i + n]
                        self._ngrams.add(gram)
                        counts[gram] += 1
        by_key: dict[str, Counter[str]] = defaultdict(Counter)
        for word in set(vocabulary):
            if min_len <= len(word) <= max_len and _CJK_RUN.fullmatch(word):
                by_key[self._key(word)][word] = counts.get(word, 0) + 1
        self._index = {key: words.most_common(1)[0][0] for key, words in by_key.items()}

    @staticmethod
    def _key(word: str) -> str:
        return fuzzy_key(word) if len(word) >= 3 else exact_key(word)

    def knows(self, text: str) -> bool:
        return text in self._ngrams

    def correct(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        for match in _CJK_RUN.finditer(text):
            out.append(text[pos:match.start()])
            out.append(self._correct_run(match.group(0)))
            pos = match.end()
        out.append(text[pos:])
        return "".join(out)

    def _correct_run(self, run: str) -> str:
        result: list[str] = []
        i = 0
        while i < len(run):
            replaced = False
            for n in range(min(self.max_len, len(run) - i), self.min_len - 1, -1):
                window = run[i:i + n]
                if window in self._ngrams:
                    break  # corpus wording starts here (so do its shorter prefixes): keep this char
                candidate = self._index.get(self._key(window))
                # a real typo keeps part of the word (店费/电费, 尖风/尖峰); 会放 → 回访 would not
                if candidate and candidate != window and set(candidate) & set(window):
                    result.append(candidate)
                    i += n
                    replaced = True
                    break
            if not replaced:
                result.append(run[i])
                i += 1
        return "".join(result)


class QueryNormalizer:
    """The full query pipeline; the corrector is optional (it needs the corpus)."""

    def __init__(self, corrector: PinyinCorrector | None = None) -> None:
        self.corrector = corrector

    def normalize(self, query: str) -> str:
        text = unicodedata.normalize("NFKC", query).lower()
        text = _T2S.convert(text)
        text = _SPACES.sub(" ", text).strip()
        text = _apply_forms(text, DIALECT_FORMS)
        for pattern, replacement in _DIALECT_PATTERNS:
            text = pattern.sub(replacement, text)
        text = _apply_forms(text, TYPO_FORMS)
        text = spoken_digits_to_arabic(text)
        text = _ONE_PEOPLE.sub("一户多人口", text)
        text = _apply_forms(text, CANONICAL_FORMS)
        if self.corrector is not None:
            text = self.corrector.correct(text)
        return text


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))
