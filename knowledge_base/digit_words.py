"""How each digit is said in Chinese: the one table for reading digits out and hearing them back.

Customers and hotline ASR say numbers digit by digit (户号, phone, 95598) with the radio-style
幺=1, 两=2, 拐=7, 勾=9, 洞=0; the hotline reads digits back in the plain written form. The
agent's NLU, the knowledge-base query normaliser, identity verification and the TTS speller all
use this table (it lives in the lowest layer, which imports no other PowerDesk package); each
keeps its own rule for *when* a run of such characters is a number.
"""

from __future__ import annotations

# The written word of each digit 0–9, as read back to a caller: DIGIT_CHARS[7] == "七".
DIGIT_CHARS = "零一二三四五六七八九"

# Radio (and IVR) pronunciations that are also ordinary characters (「墙上有个洞」, 「打勾」,
# 「七拐八拐」): a caller means a digit only inside a run of digit words.
RADIO_DIGIT_WORDS = frozenset("洞拐勾")

# Every word heard for one digit → the digit.
DIGIT_WORDS: dict[str, str] = {
    **{word: str(digit) for digit, word in enumerate(DIGIT_CHARS)},
    "〇": "0", "洞": "0",
    "幺": "1",
    "两": "2",
    "拐": "7",
    "勾": "9",
}  # fmt: skip
