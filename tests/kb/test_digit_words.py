"""One spoken-digit table: what the hotline reads out, every reader hears back as the same digits."""

from __future__ import annotations

import pytest

from agent.nlu.numerals import spoken_digits_to_arabic as nlu_digits
from channels.spoken import digits_to_chinese
from knowledge_base.digit_words import DIGIT_CHARS, DIGIT_WORDS, RADIO_DIGIT_WORDS
from knowledge_base.normalize import spoken_digits_to_arabic as kb_digits
from tools.verify_identity import normalize_digits


def test_table_covers_each_digit_once_in_writing() -> None:
    assert [DIGIT_WORDS[word] for word in DIGIT_CHARS] == [str(d) for d in range(10)]
    assert set(DIGIT_WORDS.values()) == {str(d) for d in range(10)}
    assert RADIO_DIGIT_WORDS <= DIGIT_WORDS.keys()


@pytest.mark.parametrize("digits", ["0123456789", "440100000001", "95598"])
def test_what_tts_reads_out_every_reader_hears_back(digits: str) -> None:
    spoken = digits_to_chinese(digits)
    assert nlu_digits(spoken) == kb_digits(spoken) == normalize_digits(spoken) == digits


def test_radio_words_are_digits_in_a_run() -> None:
    assert nlu_digits("幺拐勾洞两") == normalize_digits("幺拐勾洞两") == "17902"
    assert kb_digits("洞幺两") == "012"
    assert nlu_digits("墙上有个洞") == "墙上有个洞"


def test_query_normaliser_keeps_gua_and_gou_as_words() -> None:
    assert kb_digits("七拐八拐的线路") == "七拐八拐的线路"
