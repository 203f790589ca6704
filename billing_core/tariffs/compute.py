"""`compute_bill`: a bill request in, a bill out, line by line, from versioned tariff data.

Every amount a customer sees comes from here, so each line carries its quantity, unit price,
the tariff version and policy document it used, and one Chinese sentence explaining it. Each
line is rounded half-up to the fen and the total is the sum of the lines. A period that spans a
tariff change or a season change is split, and each part is billed under its own rules.
Each tariff family is its own module (`residential`, `ci`, `agricultural`); what they share,
from reading the usage to the funds line, is `draft`. A new family is one module and one branch here.

The hot path builds result objects with `model_construct` (the inputs are already validated),
because the billing cycle computes thousands of bills at a time.
"""

from __future__ import annotations

from billing_core.bill_types import BillRequest, ComputedBill, CustomerCategory, trusted
from billing_core.errors import UnknownTariffError
from billing_core.tariffs.agricultural import bill_agricultural
from billing_core.tariffs.ci import bill_ci
from billing_core.tariffs.draft import ROUNDING_RULE, ZERO, BillDraft, billing_months, read_usage
from billing_core.tariffs.library import TariffLibrary, get_library
from billing_core.tariffs.residential import bill_residential


def compute_bill(request: BillRequest, library: TariffLibrary | None = None) -> ComputedBill:
    """Compute a bill, line by line, from the tariff versions in force during its period."""
    library = library or get_library()
    period_days = (request.period_end - request.period_start).days + 1
    usage = read_usage(request, period_days)
    bill = BillDraft(request, library, period_days, billing_months(period_days))
    category = request.attributes.category
    if category == CustomerCategory.RESIDENTIAL:
        bill_residential(bill, usage)
    elif category in (CustomerCategory.CI_SINGLE, CustomerCategory.CI_TWO_PART):
        bill_ci(bill, usage)
    elif category == CustomerCategory.AGRICULTURAL:
        bill_agricultural(bill, usage)
    else:
        raise UnknownTariffError(f"暂无{category.value}类别的电价数据", "attributes.category")
    unconfirmed = [key for key, version in bill.versions.items() if not version.confirmed]
    if unconfirmed:
        bill.notes.append(
            f"本账单用到的部分电价数据未经官方文件完全确认（{'、'.join(unconfirmed)}），仅供核对演示，以正式公告为准。"
        )
    total = sum((line.amount for line in bill.lines), ZERO)
    return trusted(
        ComputedBill,
        {
            "account_no": request.account_no,
            "period_start": request.period_start,
            "period_end": request.period_end,
            "total_kwh": usage.total,
            "lines": bill.lines,
            "total": total,
            "rounding": ROUNDING_RULE,
            "notes": bill.notes,
            "tariff_versions": list(bill.versions),
            "unconfirmed_figures": bill.unconfirmed_figures(),
        },
    )
