"""A real China Southern Grid two-part TOU bill (Guangdong, May 2026), reproduced to the fen.

1–10 kV, agency purchase, 630 kVA by capacity at 22.60, PF 0.79 against 0.90 (+5.5 %). The
printed figures are in docs/reference (tariffs-guangdong.md §6a) and below as PRINTED. One
printed line differs from the rule: the funds line prints 707.81 where the rule (all billed kWh
× 0.02766875 = 25581.28 × 0.02766875 = 707.802…) gives 707.80 — the printed fund base is about
0.4 kWh larger than the energy lines' kWh. We bill by the rule, so our total is 30666.78 and the
printed total with its fund line is 30666.79; both differences are asserted below, not hidden.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from billing_core.bill_types import BillRequest, ComputedBill
from billing_core.cli.billing import app
from billing_core.tariffs.compute import compute_bill
from billing_core.tariffs.library import TARIFF_DIR, load_library

EXAMPLE = Path(__file__).resolve().parents[2] / "billing_core" / "schemas" / "examples" / "two_part_ci_real_2026_05.json"
D = Decimal
EXAMPLE_DAY = date(2026, 5, 15)

# As printed on the bill: per period, the energy line; then each line group.
PRINTED_ENERGY = {"peak": D("4437.25"), "flat": D("4869.00"), "valley": D("829.66")}
PRINTED_GROUPS = {
    "energy": D("10135.91"), "transmission": D("1087.21"), "line_loss": D("424.24"),
    "system_operation": D("1559.43"), "market_allocation": D("952.35"), "basic_capacity": D("14238.00"),
    "pf_adjustment": D("1561.84"),
}
PRINTED_FUNDS = D("707.81")  # the rule gives 707.80: see the module docstring
RULE_FUNDS = D("707.80")
PRINTED_TOTAL_WITH_PRINTED_FUNDS = D("30666.79")
RULE_TOTAL = D("30666.78")


def _raw() -> dict:  # type: ignore[type-arg]
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def _groups(bill: ComputedBill) -> dict[str, Decimal]:
    groups: dict[str, Decimal] = {}
    for line in bill.lines:
        head, _, period = line.code.rpartition("_")
        key = head if period in ("peak", "flat", "valley", "critical_peak") else line.code
        groups[key] = groups.get(key, D(0)) + line.amount
    return groups


def _assert_reproduces_the_printed_bill(bill: ComputedBill) -> None:
    energy = {line.code.removeprefix("energy_"): line.amount for line in bill.lines if line.code.startswith("energy_")}
    assert energy == PRINTED_ENERGY
    groups = _groups(bill)
    for key, printed in PRINTED_GROUPS.items():
        assert groups[key] == printed, key
    assert groups["government_funds"] == RULE_FUNDS == PRINTED_FUNDS - D("0.01")
    assert bill.total == RULE_TOTAL == PRINTED_TOTAL_WITH_PRINTED_FUNDS - D("0.01")
    assert bill.total == sum(PRINTED_GROUPS.values()) + RULE_FUNDS
    pf = next(line for line in bill.lines if line.code == "pf_adjustment")
    assert "功率因数0.79" in pf.explanation and pf.unit_price == D("0.055")


def test_the_request_with_the_bills_printed_prices_reproduces_it() -> None:
    bill = compute_bill(BillRequest.model_validate(_raw()))
    _assert_reproduces_the_printed_bill(bill)
    prices = {line.code: line.unit_price for line in bill.lines}
    assert prices["energy_peak"] == D("0.642117") and prices["energy_valley"] == D("0.143532")  # six decimals, as printed
    assert bill.unconfirmed_figures == []


def test_the_may_2026_tariff_data_reproduces_it_given_only_the_allocation_amount() -> None:
    raw = _raw()
    raw["prices"] = {"market_allocation_amount": "952.35"}
    bill = compute_bill(BillRequest.model_validate(raw))
    _assert_reproduces_the_printed_bill(bill)
    assert bill.unconfirmed_figures == []  # every figure this bill uses is the bill's own
    without_amount = compute_bill(BillRequest.model_validate({**raw, "prices": None}))
    assert any("market_allocation" in item for item in without_amount.unconfirmed_figures)


def test_flat_price_times_ratio_at_the_sources_precision_gives_the_printed_period_prices(tmp_path: Path) -> None:
    """Without the table's printed per-period prices, derivation gives the same bill: the energy
    price keeps its six published decimals (0.377716 × 1.7 = 0.642117), the other components the
    TOU rule's four. Rounding energy to four decimals would move the energy charge by ~0.5 元."""
    directory = tmp_path / "data"
    shutil.copytree(TARIFF_DIR, directory)
    path = directory / "agency_purchase" / "gd-agency-purchase@2026-05.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("      periods:\n")
    end = text.index('    "35kV"', start)
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    library = load_library(directory)
    assert library.in_force("gd-agency-purchase", EXAMPLE_DAY).data.prices["two_part"]["1-10kV"].periods == {}
    raw = _raw()
    raw["prices"] = {"market_allocation_amount": "952.35"}
    bill = compute_bill(BillRequest.model_validate(raw), library)
    _assert_reproduces_the_printed_bill(bill)
    kwh = {"peak": D("6910.35"), "flat": D("12890.64"), "valley": D("5780.29")}
    four = {"peak": D("0.6421"), "flat": D("0.3777"), "valley": D("0.1435")}
    rounded = sum((kwh[p] * four[p]).quantize(D("0.01"), rounding=ROUND_HALF_UP) for p in kwh)
    assert abs(rounded - PRINTED_GROUPS["energy"]) > D("0.4")



def test_allocation_as_price_and_as_amount_at_once_is_refused_naming_prices() -> None:
    raw = _raw()
    raw["prices"]["market_allocation_price"] = "0.0372"
    with pytest.raises(ValidationError) as caught:
        BillRequest.model_validate(raw)
    assert caught.value.errors()[0]["loc"] == ("prices",)


def test_explain_prints_the_bill_as_the_customer_reads_it() -> None:
    result = CliRunner().invoke(app, ["explain", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for title, amount in (("电能量电费", "10135.91"), ("输配电费", "1087.21"), ("上网环节线损费用", "424.24"),
                          ("系统运行费用", "1559.43"), ("市场化分摊费用", "952.35"), ("基本电费（按容量）", "14238.00"),
                          ("功率因数调整电费", "1561.84"), ("政府性基金及附加", "707.80"), ("合计", "30666.78")):
        line = next(row for row in text.splitlines() if row.startswith(title))
        assert line.split()[-2] == amount, line
    assert "峰段  6910.35 千瓦时 × 0.642117 元/千瓦时 = 4437.25 元" in text
    assert text.index("电能量电费") < text.index("市场化分摊费用") < text.index("基本电费") < text.index("政府性基金")
    assert "警告" not in result.stderr


def test_quote_warns_on_stderr_when_a_bill_uses_an_unconfirmed_figure() -> None:
    placeholder = EXAMPLE.with_name("two_part_ci.json")  # July 2026: placeholder agency prices
    result = CliRunner().invoke(app, ["quote", str(placeholder)])
    assert result.exit_code == 0, result.output
    assert "警告" in result.stderr and "gd-agency-purchase@2026-07 prices" in result.stderr
    bill = json.loads(result.stdout)  # stdout stays the bill's JSON
    assert bill["unconfirmed_figures"] and all("未经" in item for item in bill["unconfirmed_figures"])
    real = CliRunner().invoke(app, ["quote", str(EXAMPLE)])
    assert real.exit_code == 0 and "警告" not in real.stderr and json.loads(real.stdout)["total"] == "30666.78"


def test_an_agricultural_bill_names_its_placeholder_price_and_funds_rate() -> None:
    """No public figure exists in the reference for these: they stay `confirmed: false` and say so."""
    farm = BillRequest.model_validate({
        "attributes": {"category": "agricultural", "voltage_level": "<1kV"},
        "period_start": "2026-05-01", "period_end": "2026-05-31", "usage": {"total_kwh": "1200"},
    })
    figures = compute_bill(farm).unconfirmed_figures
    assert any(item.startswith("gd-agricultural@2017-07-01 prices.<1kV") for item in figures)
    assert any(item.startswith("gd-government-funds@2017-07-01 rates.agricultural") for item in figures)
