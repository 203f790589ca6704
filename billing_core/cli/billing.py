"""`powerdesk billing ...`: the billing core's command line.

Other modules add commands to this same `app` (run-cycle, pay, reconcile, dun, kpi), so this
module holds only the app, the shared bad-input handling and the `quote` command.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError

from billing_core.errors import BillingError, TariffPeriodError

if TYPE_CHECKING:
    from billing_core.bill_types import ComputedBill

app = typer.Typer(
    name="billing",
    help="计费核心：电费试算、账期运行等。",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

BAD_INPUT_EXIT_CODE = 2


@app.callback()
def _billing() -> None:
    """Billing-core commands (a callback keeps `quote` a sub-command even when it is the only one)."""


def fail(message: str) -> NoReturn:
    """Print a bad-input message to stderr and exit with code 2, writing nothing else."""
    typer.echo(f"错误：{message}", err=True)
    raise typer.Exit(code=BAD_INPUT_EXIT_CODE)


_MESSAGES_CN = {
    "decimal_parsing": "不是有效的数字",
    "decimal_type": "不是有效的数字",
    "finite_number": "必须是有限的数字",
    "greater_than_equal": "不能小于 {ge}",
    "missing": "缺少必填字段",
    "extra_forbidden": "不认识的字段",
    "enum": "取值无效，可选：{expected}",
    "date_parsing": "不是有效日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "不是有效日期（YYYY-MM-DD）",
    "date_type": "不是有效日期（YYYY-MM-DD）",
    "string_type": "应为字符串",
    "bool_parsing": "应为 true 或 false",
    "model_type": "应为 JSON 对象",
}


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field path (e.g. ``usage.total_kwh``), in Chinese."""
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item.get("loc", ())) or "(request)"
        template = _MESSAGES_CN.get(item.get("type", ""))
        try:
            message = template.format(**item.get("ctx", {})) if template else str(item.get("msg", "invalid"))
        except (KeyError, IndexError):
            message = str(item.get("msg", "invalid"))
        if item.get("type") == "value_error":  # our own validators (e.g. period order)
            message = str(item.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "；".join(parts)


def _compute_request_file(request_file: Path) -> ComputedBill:
    """Read, validate and compute a request file; any refusal exits 2 naming the field."""
    from billing_core.bill_types import BillRequest
    from billing_core.tariffs.compute import compute_bill

    try:
        text = request_file.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"request_file: 无法读取 {request_file}（{exc.strerror or exc}）")
    try:
        raw = json.loads(text, parse_float=Decimal)  # exact decimals, no float noise
    except json.JSONDecodeError as exc:
        fail(f"request_file: JSON 格式错误，第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}")
    try:
        request = BillRequest.model_validate(raw)
    except ValidationError as exc:
        fail(describe_validation_error(exc))
    try:
        bill = compute_bill(request)
    except BillingError as exc:
        fail(str(exc))
    if bill.unconfirmed_figures:  # on stderr, so stdout stays the bill (JSON for quote)
        typer.echo("警告：本账单用到未经官方公告确认的电价数据，金额仅供核对演示：", err=True)
        for item in bill.unconfirmed_figures:
            typer.echo(f"  {item}", err=True)
    return bill


@app.command("quote")
def quote(
    request_file: Annotated[Path, typer.Argument(help="账单试算请求 JSON 文件（见 billing_core/schemas/bill_request.schema.json）")],
) -> None:
    """Compute a bill for REQUEST_FILE and print it as JSON (amounts as strings).

    A bill that uses a tariff figure marked unconfirmed gets a warning on stderr naming it."""
    bill = _compute_request_file(request_file)
    sys.stdout.write(bill.model_dump_json(indent=2) + "\n")


@app.command("explain")
def explain(
    request_file: Annotated[Path, typer.Argument(help="账单试算请求 JSON 文件（见 billing_core/schemas/bill_request.schema.json）")],
    why: Annotated[bool, typer.Option("--why", help="每行下附计算说明")] = False,
) -> None:
    """按客户看到的纸质账单逐行列出电费（分组小计、合计、说明），便于与实际账单核对。"""
    from billing_core.tariffs.printed_bill import printed_bill

    bill = _compute_request_file(request_file)
    typer.echo("\n".join(printed_bill(bill, why=why)))


# run-cycle, release, pay, reconcile, dun, kpi: the monthly operations (billing_core/cli/operations.py).
from billing_core.cli.operations import register as _register_operations  # noqa: E402

_register_operations(app)


@app.command("tariffs")
def tariffs(
    tariff_id: Annotated[str | None, typer.Argument(help="电价编号，如 gz-residential-tiers；省略则列出全部")] = None,
    on: Annotated[str | None, typer.Option(help="只显示该日（YYYY-MM-DD）执行的版本")] = None,
) -> None:
    """List tariff versions from the policy library (dates, sources, unconfirmed figures) as JSON."""
    from datetime import date

    from billing_core.tariffs.library import get_library

    library = get_library()
    day = None
    if on is not None:
        try:
            day = date.fromisoformat(on)
        except ValueError:
            fail(f"on: {on!r} 不是有效日期（YYYY-MM-DD）")
    try:
        ids = [tariff_id] if tariff_id else library.tariff_ids()
        versions = [library.in_force(t, day) for t in ids] if day else [v for t in ids for v in library.versions(t)]
    except TariffPeriodError as exc:
        fail(f"on: {exc.args[0]}")
    except BillingError as exc:
        fail(str(exc))
    rows = [
        {
            "key": v.key,
            "effective_from": v.effective_from.isoformat(),
            "effective_to": v.effective_to.isoformat() if v.effective_to else None,
            "region": v.region,
            "source": v.source,
            "confirmed": v.confirmed,
            "unconfirmed": [{"field": u.field, "note": u.note} for u in v.unconfirmed],
        }
        for v in versions
    ]
    sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    app()
