"""Mask a customer's phone and ID numbers: one set of patterns for replies, records and logs.

It lives in the lowest layer (this package imports no other PowerDesk package) so that the
agent's grounding guard and the channels' JSON logs share it: with two copies the boundaries
drifted apart (the log copy also masked the tail of a 'GD' + 18-digit bill number; the reply
copy missed full-width digits).

Boundaries, the same everywhere:
- a number is personal only when it stands alone: not part of a longer run of digits (a 12-digit
  户号 or a 13-digit run never yields a phone), full-width digits counting as digits; the one
  exception is the country code written with its plus (+8613812345678, as caller ids come);
- an ID number must not follow an ASCII letter either ('GD202612440100000001' is a bill number,
  'WO…' a ticket), and starts 1–9 like every region code; its check digit may be X;
- landlines (020-87654321) only on request: replies quote public 营业厅 numbers, logs may carry a
  caller's home line.
The masked form keeps what staff need to recognise a number: 138****5678, 440106********123X.
"""

from __future__ import annotations

import re

_D = "0-9０-９"  # ASCII and full-width digits: both are the same number to a reader
_CHECK = f"{_D}XxＸｘ"

_ID_NUMBER = re.compile(
    rf"(?<![{_D}A-Za-z])([1-9１-９][{_D}]{{5}})[{_D}]{{8}}([{_D}]{{3}}[{_CHECK}])(?![{_D}A-Za-z])"
)
_MOBILE = re.compile(
    rf"(?:(?<=\+86)|(?<![{_D}]))([1１][3-9３-９][{_D}])[{_D}]{{4}}([{_D}]{{4}})(?![{_D}])"
)
_LANDLINE = re.compile(rf"(?<![{_D}])([0０][{_D}]{{2,3}}[-－])[{_D}]{{3,4}}([{_D}]{{4}})(?![{_D}])")


def mask_personal_numbers(text: str, *, landlines: bool = False) -> str:
    """Mask resident ID numbers (keep region and last 4) and mobile numbers (keep 3 + 4);
    with `landlines`, area-code landlines too (keep area code and last 4)."""
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}{'*' * 8}{m.group(2)}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    if landlines:
        text = _LANDLINE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return text
