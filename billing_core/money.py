"""Money and quantity helpers. Money is `Decimal`, never float, rounded half-up to the fen."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN = Decimal("0.01")
ZERO = Decimal("0")


def to_fen(amount: Decimal) -> Decimal:
    """Round an amount half-up to the fen (0.01 元), the rounding every bill line uses."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def round_half_up(value: Decimal, places: int) -> Decimal:
    """Round half-up to `places` decimals (power factor uses 2, unit prices up to 8)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def parse_decimal(value: object, field: str) -> Decimal:
    """Parse a user-supplied number exactly; reject floats' binary noise and non-numbers.

    Raises ValueError naming `field` so error messages can point at the bad input.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{field}: {value!r} is not a number") from None
    else:
        raise ValueError(f"{field}: expected a number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not a finite number")
    return result


def yuan(amount: Decimal) -> str:
    """Format an amount for Chinese text: '242.55元'."""
    return f"{to_fen(amount)}元"
