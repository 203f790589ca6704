"""How prices and quantities are written on a bill: one rule for every line, explanation and note.

A price computed from its inputs carries their precision: 0.4105 × a multiplier of 1.000 is
0.4105000, which reads like a different figure from the tariff's 0.4105, and a capacity entered as
630.00 kVA is the same 630 kVA. So a price keeps the decimals of the tariff it comes from (never
fewer than 2, the fen) and loses only trailing zeros beyond them; a quantity (kWh, kVA, kW, a
percentage) loses every needless trailing zero. Nothing is rounded here: rounding a price would
change money, so digits that carry value are always kept.
"""

from __future__ import annotations

import functools
from decimal import Decimal

MIN_PRICE_PLACES = 2  # a price is never written with fewer decimals than the fen
_ONE = Decimal(1)


def decimals(value: Decimal) -> int:
    """How many decimals a figure is written with ('0.4070' → 4): a tariff figure's own precision."""
    text = str(value)  # str() is several times cheaper than as_tuple() on the billing hot path
    if "E" in text:
        exponent = value.as_tuple().exponent
        return -exponent if isinstance(exponent, int) and exponent < 0 else 0
    point = text.find(".")
    return 0 if point < 0 else len(text) - point - 1


@functools.lru_cache(maxsize=8192)
def tidy_price(value: Decimal, places: int = MIN_PRICE_PLACES) -> Decimal:
    """`value` with trailing zeros beyond max(places, 2) decimals removed; never rounded.

    tidy_price(Decimal('0.4105000'), 4) == '0.4105'; tidy_price(Decimal('22.6'), 1) == '22.60';
    tidy_price(Decimal('0.61575'), 4) keeps all five decimals because the last one carries value.
    (Cached: the result depends only on the numeric value and `places`, and bills reuse few prices.)
    """
    keep = max(places, MIN_PRICE_PLACES)
    stripped = value.normalize()
    if decimals(stripped) > keep:
        return stripped
    return stripped.quantize(_ONE.scaleb(-keep))


@functools.lru_cache(maxsize=8192)
def price_text(value: Decimal, places: int = MIN_PRICE_PLACES) -> str:
    """A price as written in a bill's explanation: tidy_price, in plain digits (never '1E-8')."""
    return format(tidy_price(value, places), "f")


def tidy_quantity(value: Decimal) -> Decimal:
    """A quantity without needless trailing zeros (Decimal('400.000') → 400, '12.50' → 12.5)."""
    return Decimal(quantity_text(value))


def quantity_text(value: Decimal) -> str:
    """A quantity as written in a bill's explanation: '400', '12.5', '630'."""
    text = str(value)
    if "E" in text:  # rare (e.g. 4E+2): write it out in plain digits, exactly
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
