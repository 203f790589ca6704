"""Agricultural production bills: one catalog price per voltage level, PF from 100 kVA at 0.80, funds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing_core.bill_types import PurchaseMode
from billing_core.errors import InvalidRequestError, UnknownTariffError
from billing_core.number_text import decimals, price_text, quantity_text
from billing_core.tariffs.draft import (
    FUNDS,
    ZERO,
    BillDraft,
    Usage,
    back_charge_line,
    check_region,
    cut_segments,
    funds_lines,
    pf_line,
    split_note,
)
from billing_core.tariffs.library import Agricultural, TariffVersion
from billing_core.tariffs.power_factor import normalise_standard

AGRICULTURAL = "gd-agricultural"


def bill_agricultural(bill: BillDraft, usage: Usage) -> None:
    """Agricultural production: all kWh at one catalog price, PF from 100 kVA at 0.80, then funds."""
    request, library = bill.request, bill.library
    attrs = request.attributes
    for tariff_id in (AGRICULTURAL, FUNDS):
        check_region(library, tariff_id, attrs.region)
    if attrs.purchase_mode == PurchaseMode.MARKET:
        raise InvalidRequestError("农业生产用电执行目录电价，不参与市场化交易", "attributes.purchase_mode")
    if request.prices is not None:
        for name in ("energy_price", "market_allocation_price", "market_allocation_amount", "periods"):
            if getattr(request.prices, name) is not None:
                raise InvalidRequestError("农业生产用电执行目录电价，请求中不能另给价格", f"prices.{name}")
    if attrs.purchase_mode == PurchaseMode.AGENCY:
        bill.notes.append("农业生产用电由电网企业按目录电价保障供应，不执行代理购电价格，本账单按目录电价计费。")

    start, end = request.period_start, request.period_end
    reasons: dict[date, list[str]] = {}
    for tariff_id, why in ((AGRICULTURAL, "农业生产电价版本变更"), (FUNDS, "政府性基金标准变更")):
        for day in library.change_dates(tariff_id, start, end):
            reasons.setdefault(day, []).append(why)
    segments = cut_segments(request, usage, sorted(reasons), bill.period_days)
    bill.split = len(segments) > 1
    split_note(bill, segments, reasons, tiers=False)
    if usage.tou is not None:
        bill.notes.append("农业生产用电按单一目录电价计费，本系统未执行农业分时电价，各时段电量合并按同一电价计算。")

    base = ZERO  # the power-factor base: everything except government funds
    last: tuple[TariffVersion, Decimal] | None = None
    funds_key = "agricultural"
    for segment in segments:
        version = bill.version(AGRICULTURAL, segment.start)
        data = version.data
        assert isinstance(data, Agricultural)
        price = data.prices.get(attrs.voltage_level)
        if price is None:
            raise UnknownTariffError(
                f"{version.key} 没有电压等级 {attrs.voltage_level!r} 的农业生产电价（已有：{'、'.join(data.prices)}）",
                "attributes.voltage_level",
            )
        funds_key = data.funds_rate
        bill.uses(version, f"prices.{attrs.voltage_level}")
        places = decimals(price)
        base += bill.add(
            "agricultural_energy", "农业生产电费", segment.total, "kWh", price, version,
            f"{bill.part(segment)}农业生产用电{quantity_text(segment.total)}千瓦时按{attrs.voltage_level}目录电价"
            f"{price_text(price, places)}元/千瓦时计（单一制，不分时段，不含政府性基金及附加）。",
            segment,
            places=places,
        )
        last = (version, price)

    assert last is not None
    if request.back_charge_kwh:
        places = decimals(last[1])
        base += back_charge_line(
            bill, last[1], last[0], f"按本期农业生产目录电价{price_text(last[1], places)}元/千瓦时", places
        )
    if _agricultural_pf_assessed(bill, last[0]):
        pf_line(bill, usage, base)
    funds_lines(bill, segments, funds_key)


def _agricultural_pf_assessed(bill: BillDraft, version: TariffVersion) -> bool:
    """Agricultural users are assessed only from the tariff's capacity up, and only at its standard.

    A record without a standard is not assessed (the engine never invents an assessment), but
    the bill says so when the capacity calls for one, so the record can be corrected.
    """
    data = version.data
    assert isinstance(data, Agricultural)
    rule = data.power_factor
    attrs = bill.request.attributes
    standard, capacity = attrs.pf_standard, attrs.capacity_kva
    if standard is not None and normalise_standard(standard) != normalise_standard(rule.standard):
        raise InvalidRequestError(
            f"农业生产用电功率因数考核标准为 {rule.standard}，不能为 {standard}", "attributes.pf_standard"
        )
    large = capacity is not None and capacity >= rule.min_capacity_kva
    minimum = quantity_text(rule.min_capacity_kva)
    if standard is None:
        if large:
            bill.notes.append(
                f"用电容量{quantity_text(capacity)}千伏安已达{minimum}千伏安，按规定应执行功率因数{rule.standard}考核，"  # type: ignore[arg-type]
                "但客户档案未设考核标准，本期未计功率因数调整电费，请核对档案。"
            )
        return False
    if not large:
        held = "未登记用电容量" if capacity is None else f"用电容量{quantity_text(capacity)}千伏安不足{minimum}千伏安"
        bill.notes.append(f"农业生产用电{held}，不执行功率因数考核，本期不计功率因数调整电费。")
        return False
    return True
