"""Commercial and industrial bills (single and two-part): agency-purchase or market energy,
per-period components after the TOU ratios, critical peak, market allocation, basic charge, PF, funds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from billing_core.bill_types import BasicChargeMode, BillRequest, CustomerCategory, PeriodPrices, PurchaseMode, TouPeriod
from billing_core.errors import InvalidRequestError, UnknownTariffError
from billing_core.number_text import decimals, price_text, quantity_text, tidy_price
from billing_core.tariffs.draft import (
    FUNDS,
    ONE,
    PERIOD_CN,
    PERIODS,
    QTY_STEP,
    ZERO,
    BillDraft,
    Segment,
    Usage,
    back_charge_line,
    check_region,
    cut_segments,
    funds_lines,
    month_starts,
    pf_line,
    split_note,
)
from billing_core.tariffs.library import AgencyPurchase, CiTou, HotDays, TariffLibrary, TariffVersion

CI_AGENCY = "gd-agency-purchase"
CI_TOU = "gd-ci-tou"
DEMAND_EXCESS_THRESHOLD = Decimal("1.05")  # 发改办价格〔2016〕1583号
COMPONENT_CN = {
    "energy": "电能量电费",
    "transmission": "输配电费",
    "line_loss": "上网环节线损费用",
    "system_operation": "系统运行费用",
}
COMPONENT_SHORT_CN = {"energy": "电能量", "transmission": "输配电", "line_loss": "线损", "system_operation": "系统运行"}
COMPONENTS = ("energy", "transmission", "line_loss", "system_operation")



@dataclass(frozen=True, slots=True)
class _CiPrices:
    """Per TOU period and component, 元/kWh after the ratios and rounding; plus what they came from.

    `places` is each component's precision: the TOU rule's (0.01 分 = 4 decimals) or the published
    flat price's if finer (energy 0.377716 → 6), so a price is never rounded below its source.
    `printed` names the (period, component) prices taken as printed — from the month's table or
    the request — rather than derived as flat × ratio.
    """

    by_period: dict[str, dict[str, Decimal]]
    ratios: dict[str, Decimal]
    flat: dict[str, Decimal]
    places: dict[str, int]
    printed: dict[tuple[str, str], str]  # (period, component) -> where the printed price comes from
    line_places: dict[str, dict[str, int]]  # period -> component -> decimals its price is written with
    paths: dict[str, str]  # component -> its figure in the month's table ("prices.two_part.1-10kV.energy")


def _line_places(by_period: dict[str, dict[str, Decimal]], places: dict[str, int]) -> dict[str, dict[str, int]]:
    return {p: {c: max(places[c], decimals(v)) for c, v in values.items()} for p, values in by_period.items()}


def _ci_prices(
    library: TariffLibrary, agency: TariffVersion, tou: TariffVersion, tariff_type: str, voltage: str,
    multiplier: Decimal, energy_override: Decimal | None,
) -> _CiPrices:
    """Derived TOU prices, computed once per (month, TOU version, customer type) and kept by the library."""
    key = ("ci_prices", agency.key, tou.key, tariff_type, voltage, multiplier, energy_override)
    cached = library.derived.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    agency_data, tou_data = agency.data, tou.data
    assert isinstance(agency_data, AgencyPurchase) and isinstance(tou_data, CiTou)
    row = agency_data.prices[tariff_type][voltage]  # type: ignore[index]
    rule_places = tou_data.price_rounding_places
    published = {
        "energy": energy_override if energy_override is not None else row.energy,
        "transmission": row.transmission,
        "line_loss": row.line_loss,
        "system_operation": row.system_operation,
    }
    places = {c: max(rule_places, decimals(published[c])) for c in COMPONENTS}
    flat = {  # written to the source's precision: 0.4105 × 1.000 is shown as 0.4105, not 0.4105000
        c: tidy_price(published[c] * multiplier if c == "energy" and energy_override is None else published[c], places[c])
        for c in COMPONENTS
    }
    ratios: dict[str, Decimal] = dict(tou_data.ratios)
    if tou_data.critical_peak is not None:
        ratios["critical_peak"] = ratios["peak"] * tou_data.critical_peak.multiplier_on_peak
    by_period = {
        period: {c: (flat[c] * ratio).quantize(Decimal(1).scaleb(-places[c]), rounding=ROUND_HALF_UP) for c in COMPONENTS}
        for period, ratio in ratios.items()
    }
    printed: dict[tuple[str, str], str] = {}
    for period, given in row.periods.items():
        for c in COMPONENTS:
            value = getattr(given, c)
            if value is None or (c == "energy" and (energy_override is not None or multiplier != ONE)):
                continue  # a contract price or a multiple of the agency price is not the printed figure
            by_period.setdefault(period, {})[c] = value
            printed[(period, c)] = f"{agency.key}所列{PERIOD_CN[period]}价格"
    paths = {c: f"prices.{tariff_type}.{voltage}.{c}" for c in COMPONENTS}
    prices = _CiPrices(by_period, ratios, flat, places, printed, _line_places(by_period, places), paths)
    if len(library.derived) < 100_000:  # bounded: market prices vary per customer
        library.derived[key] = prices
    return prices


def _with_request_prices(table: _CiPrices, periods: dict[TouPeriod, PeriodPrices] | None) -> _CiPrices:
    """The table with the request's per-period prices put in as given (a real bill's printed figures)."""
    if not periods:
        return table
    by_period = {period: dict(values) for period, values in table.by_period.items()}
    printed = dict(table.printed)
    for period, given in periods.items():
        for c in COMPONENTS:
            value = getattr(given, c)
            if value is not None:
                by_period.setdefault(str(period), {})[c] = value
                printed[(str(period), c)] = f"请求所给{PERIOD_CN[str(period)]}价格"
    return _CiPrices(by_period, table.ratios, table.flat, table.places, printed, _line_places(by_period, table.places),
                     table.paths)


def bill_ci(bill: BillDraft, usage: Usage) -> None:
    request, library = bill.request, bill.library
    attrs = request.attributes
    two_part = attrs.category == CustomerCategory.CI_TWO_PART
    tariff_type = "two_part" if two_part else "single"
    for tariff_id in (CI_AGENCY, CI_TOU, FUNDS):
        check_region(library, tariff_id, attrs.region)
    prices_in = request.prices
    energy_override = prices_in.energy_price if prices_in is not None else None
    allocation_amount = prices_in.market_allocation_amount if prices_in is not None else None
    if attrs.purchase_mode == PurchaseMode.MARKET and energy_override is None:
        raise InvalidRequestError("市场化交易用户需在请求中给出合同电能量价格", "prices.energy_price")
    if attrs.purchase_mode == PurchaseMode.CATALOG:
        bill.notes.append("工商业用户已无目录电价，按电网企业代理购电价格计费。")
    if two_part:
        _check_basic_inputs(request)
        if bill.months > 1:
            bill.notes.append(f"本账期共{bill.period_days}天，基本电费按{bill.months}个月计收。")

    start, end = request.period_start, request.period_end
    reasons: dict[date, list[str]] = {}
    for day in month_starts(start, end):
        reasons.setdefault(day, []).append("月度代理购电价格更替")
    for tariff_id, why in ((CI_TOU, "分时电价版本变更"), (FUNDS, "政府性基金标准变更")):
        for day in library.change_dates(tariff_id, start, end):
            reasons.setdefault(day, []).append(why)
    for day in library.change_dates(CI_AGENCY, start, end):
        reasons.setdefault(day, [])
    segments = cut_segments(request, usage, sorted(reasons), bill.period_days)
    bill.split = len(segments) > 1
    split_note(bill, segments, reasons, tiers=False)
    if usage.tou is None:
        bill.notes.append("未提供分时电量，全部电量按平段电价计费。")

    base = ZERO  # the power-factor base: everything except government funds
    flat_all_in = ZERO
    last_agency: TariffVersion | None = None
    last_places = 0
    for segment in segments:
        agency = bill.version(CI_AGENCY, segment.start)
        bill.version(CI_AGENCY, segment.end)
        tou_version = bill.version(CI_TOU, segment.start)
        agency_data, tou_data = agency.data, tou_version.data
        assert isinstance(agency_data, AgencyPurchase) and isinstance(tou_data, CiTou)
        row = agency_data.prices[tariff_type].get(attrs.voltage_level)  # type: ignore[index]
        if row is None:
            known = "、".join(agency_data.prices[tariff_type])  # type: ignore[index]
            kind_cn = "两部制" if two_part else "单一制"
            raise UnknownTariffError(
                f"{agency.key} 没有{kind_cn}电压等级 {attrs.voltage_level!r} 的价格（已有：{known}）",
                "attributes.voltage_level",
            )
        table = _with_request_prices(
            _ci_prices(library, agency, tou_version, tariff_type, attrs.voltage_level, attrs.agency_price_multiplier,
                       energy_override),
            prices_in.periods if prices_in is not None else None,
        )
        registers = _registers(bill, segment, tou_data)
        for period in PERIODS:
            qty = registers[period]
            if qty == 0:
                continue
            prices = table.by_period.get(period)
            if prices is None or len(prices) < len(COMPONENTS):
                raise UnknownTariffError(f"{tou_version.key} 没有{PERIOD_CN[period]}比价，请求中需给出该时段各项价格",
                                         f"prices.periods.{period}")
            ratio = table.ratios.get(period, ONE)
            ratio_text = f"比价{quantity_text(ratio)}"
            if period == "critical_peak" and tou_data.critical_peak is not None:
                ratio_text = (
                    f"峰段比价{quantity_text(tou_data.ratios['peak'])}"  # type: ignore[index]
                    f"×尖峰上浮{quantity_text(tou_data.critical_peak.multiplier_on_peak)}"
                )
            qty_text = quantity_text(qty)
            line_places = table.line_places[period]
            for component in COMPONENTS:
                price = prices[component]
                places = line_places[component]
                source = None
                energy_text = ""
                printed = table.printed.get((period, component)) if table.printed else None
                if printed is not None and printed.startswith("请求"):  # the request's own figure
                    source = f"请求所给价格（当月账单/代理购电公告）；{agency.source_text}"
                elif component == "energy" and energy_override is not None:
                    source = f"用户市场化交易合同电价；{tou_version.source_text}"
                    energy_text = "（合同电价）"
                elif component == "energy" and attrs.agency_price_multiplier != ONE:
                    energy_text = f"（代理购电价格×{quantity_text(attrs.agency_price_multiplier)}）"
                from_request = printed is not None and printed.startswith("请求")
                if not from_request and not (component == "energy" and energy_override is not None):
                    bill.uses(agency, table.paths[component])  # a figure of the month's table
                how = (
                    f"（{printed}）" if printed is not None
                    else f"（平段{price_text(table.flat[component], table.places[component])}元{energy_text}×{ratio_text}，"
                         f"按{tou_version.key}）"
                )
                base += bill.add(
                    f"{component}_{period}", f"{PERIOD_CN[period]}{COMPONENT_CN[component]}", qty, "kWh", price,
                    agency if source is None or printed is not None else tou_version,
                    f"{bill.part(segment)}{PERIOD_CN[period]}电量{qty_text}千瓦时×{COMPONENT_SHORT_CN[component]}单价"
                    f"{price_text(price, places)}元/千瓦时{how}。",
                    segment,
                    source=source if source else f"{agency.source_text}；{tou_version.source_text}",
                    places=places,
                )
        places = tou_data.price_rounding_places
        if allocation_amount is not None:
            allocation = ZERO  # billed once for the whole period below
        else:
            allocation = (
                prices_in.market_allocation_price
                if prices_in is not None and prices_in.market_allocation_price is not None
                else row.market_allocation
            )
            if prices_in is None or prices_in.market_allocation_price is None:
                bill.uses(agency, f"prices.{tariff_type}.{attrs.voltage_level}.market_allocation")
            if segment.total:
                alloc_places = max(places, decimals(allocation))
                base += bill.add(
                    "market_allocation", "市场化分摊费用", segment.total, "kWh", allocation, agency,
                    f"{bill.part(segment)}全部电量{quantity_text(segment.total)}千瓦时按市场化分摊标准"
                    f"{price_text(allocation, alloc_places)}元/千瓦时计（不分时段）。",
                    segment,
                    places=alloc_places,
                )
        if two_part:
            base += _basic_charge(bill, segment, agency, agency_data)
        flat_all_in = sum((table.by_period["flat"][c] for c in COMPONENTS), ZERO) + allocation
        last_agency = agency
        last_places = max(places, *(decimals(table.by_period["flat"][c]) for c in COMPONENTS))

    if allocation_amount is not None and last_agency is not None:
        base += bill.add(
            "market_allocation", "市场化分摊费用", ONE, "项", allocation_amount, last_agency,
            f"本期市场化分摊费用{price_text(allocation_amount, 2)}元，按当月代理购电公告给出的金额计收（不按电量折算，不分时段）。",
            source=f"请求所给市场化分摊金额（当月代理购电公告）；{last_agency.source_text}",
            places=max(2, decimals(allocation_amount)),
        )

    if request.back_charge_kwh:
        assert last_agency is not None
        base += back_charge_line(
            bill, flat_all_in, last_agency,
            f"按本期平段电价合计{price_text(flat_all_in, last_places)}元/千瓦时（电能量、输配电、线损、系统运行及市场化分摊）",
            last_places,
        )
    if attrs.pf_standard is not None:
        pf_line(bill, usage, base)
    funds_lines(bill, segments)


def _check_basic_inputs(request: BillRequest) -> None:
    attrs = request.attributes
    if attrs.basic_charge_mode is None:
        raise InvalidRequestError("两部制用户需指定基本电费计收方式 capacity 或 demand", "attributes.basic_charge_mode")
    if attrs.basic_charge_mode == BasicChargeMode.CAPACITY and attrs.capacity_kva is None:
        raise InvalidRequestError("按容量计收基本电费需提供变压器容量", "attributes.capacity_kva")
    if attrs.basic_charge_mode == BasicChargeMode.DEMAND:
        if attrs.contracted_demand_kw is None:
            raise InvalidRequestError("按需量计收基本电费需提供合同最大需量", "attributes.contracted_demand_kw")
        if request.usage.max_demand_kw is None:
            raise InvalidRequestError("按需量计收基本电费需提供本期实际最大需量", "usage.max_demand_kw")


def _registers(bill: BillDraft, segment: Segment, tou: CiTou) -> dict[str, Decimal]:
    """kWh per period to bill: critical-peak kWh count as critical only on critical-peak days."""
    if segment.tou is None:
        return {"critical_peak": ZERO, "peak": ZERO, "flat": segment.total, "valley": ZERO}
    registers = dict(segment.tou)
    critical = registers["critical_peak"]
    if not critical:
        return registers
    rule = tou.critical_peak
    part = bill.part(segment)
    if rule is None:
        registers["peak"] += critical
        registers["critical_peak"] = ZERO
        bill.notes.append(f"{part}执行的分时电价版本不设尖峰，尖峰时段电量{quantity_text(critical)}千瓦时按峰段计费（尖峰调整电量）。")
        return registers
    if segment.start.month in rule.months:
        return registers
    hot_days = bill.version(rule.hot_days_tariff, segment.start)
    bill.uses(hot_days, "days")
    hot_data = hot_days.data
    assert isinstance(hot_data, HotDays)
    hot = hot_data.dates
    if segment.daily_tou is not None:
        on_hot_days = sum((day_tou["critical_peak"] for day, day_tou in segment.daily_tou if day in hot), ZERO)
        moved = critical - on_hot_days
        registers["critical_peak"] = on_hot_days
        registers["peak"] += moved
        if on_hot_days:
            days = "、".join(str(day) for day, t in segment.daily_tou if day in hot and t["critical_peak"])
            bill.notes.append(f"{days}日最高气温达到35℃，当日尖峰时段电量{quantity_text(on_hot_days)}千瓦时按尖峰电价计费。")
        if moved:
            bill.notes.append(f"{part}非尖峰月份（7—9月）且非高温日，尖峰时段电量{quantity_text(moved)}千瓦时按峰段计费（尖峰调整电量）。")
        return registers
    registers["peak"] += critical
    registers["critical_peak"] = ZERO
    if any(segment.start <= day <= segment.end for day in hot):
        bill.notes.append(
            f"{part}含高温日，但未提供逐日分时电量，无法确认高温日尖峰电量，尖峰时段电量{quantity_text(critical)}千瓦时暂按峰段计费。"
        )
    else:
        bill.notes.append(f"{part}非尖峰月份（7—9月）且无高温日，尖峰时段电量{quantity_text(critical)}千瓦时按峰段计费（尖峰调整电量）。")
    return registers


def _basic_charge(bill: BillDraft, segment: Segment, agency: TariffVersion, data: AgencyPurchase) -> Decimal:
    """Capacity or demand charge for a part of the period; demand above 105 % of contract pays double."""
    attrs = bill.request.attributes
    rates = data.basic_charges.get(attrs.voltage_level)
    if rates is None:
        raise UnknownTariffError(f"{agency.key} 没有电压等级 {attrs.voltage_level!r} 的基本电价", "attributes.voltage_level")
    bill.uses(agency, f"basic_charges.{attrs.voltage_level}.{'capacity' if attrs.basic_charge_mode == BasicChargeMode.CAPACITY else 'demand'}")
    factor = bill.month_factor(segment)
    prorated = f"，按{segment.days}天折算{quantity_text(factor.quantize(QTY_STEP, rounding=ROUND_HALF_UP))}个月" if factor != ONE else ""
    part = bill.part(segment)
    if attrs.basic_charge_mode == BasicChargeMode.CAPACITY:
        qty = _month_qty(attrs.capacity_kva, factor)  # type: ignore[arg-type]
        return bill.add(
            "basic_capacity", "基本电费（按容量）", qty, "kVA·月", rates.capacity, agency,
            f"{part}按变压器容量{quantity_text(attrs.capacity_kva)}千伏安×{price_text(rates.capacity, decimals(rates.capacity))}"  # type: ignore[arg-type]
            f"元/千伏安·月计收基本电费{prorated}。",
            segment,
            places=decimals(rates.capacity),
        )
    contract = attrs.contracted_demand_kw
    actual = bill.request.usage.max_demand_kw
    assert contract is not None and actual is not None
    threshold = contract * DEMAND_EXCESS_THRESHOLD
    places = decimals(rates.demand)
    rate_text, actual_text, contract_text = price_text(rates.demand, places), quantity_text(actual), quantity_text(contract)
    if actual <= threshold:
        qty = _month_qty(contract, factor)
        return bill.add(
            "basic_demand", "基本电费（按需量）", qty, "kW·月", rates.demand, agency,
            f"{part}实际最大需量{actual_text}千瓦未超过合同需量{contract_text}千瓦的105%，按合同需量×{rate_text}元/千瓦·月计收{prorated}。",
            segment,
            places=places,
        )
    amount = bill.add(
        "basic_demand", "基本电费（按需量）", _month_qty(threshold, factor), "kW·月", rates.demand, agency,
        f"{part}实际最大需量{actual_text}千瓦超过合同需量{contract_text}千瓦的105%（{quantity_text(threshold)}千瓦），"
        f"105%以内按{rate_text}元/千瓦·月计收{prorated}。",
        segment,
        places=places,
    )
    excess = actual - threshold
    double = rates.demand * 2
    amount += bill.add(
        "basic_demand_excess", "基本电费（超合同需量105%部分加倍）", _month_qty(excess, factor), "kW·月", double, agency,
        f"{part}超出合同需量105%的{quantity_text(excess)}千瓦按基本电价加一倍即{price_text(double, places)}元/千瓦·月计收"
        f"（发改办价格〔2016〕1583号）{prorated}。",
        segment,
        source=f"{agency.source_text}；发改办价格〔2016〕1583号",
        places=places,
    )
    return amount


def _month_qty(value: Decimal, factor: Decimal) -> Decimal:
    return value if factor == ONE else (value * factor).quantize(QTY_STEP, rounding=ROUND_HALF_UP)
