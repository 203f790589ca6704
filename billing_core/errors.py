"""Errors the billing core raises. Each names what was wrong so callers can show it as is."""

from __future__ import annotations


class BillingError(Exception):
    """Base class: a request the billing core refuses. `field` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:  # "usage.total_kwh: must not be negative"
        base = super().__str__()
        return f"{self.field}: {base}" if self.field else base


class UnknownTariffError(BillingError):
    """No tariff schedule matches the customer's attributes."""


class TariffPeriodError(BillingError):
    """The billing period falls (partly) outside every version of the tariff."""


class InvalidRequestError(BillingError):
    """A bill request is malformed: missing, negative or non-numeric fields."""


class UnknownAccountError(BillingError):
    """No customer has this account number (户号)."""


class ReadingAnomalyError(BillingError):
    """Meter readings cannot give a consumption without review (e.g. a reading went backwards)."""


class PaymentError(BillingError):
    """A payment is refused: unknown bill, non-positive amount, foreign currency, ..."""


class TariffDataError(BillingError):
    """A tariff data file is malformed; `field` names the file and the field inside it."""


class SchemaNotReadyError(BillingError):
    """The database has not been migrated (or not to this code's newest revision)."""
