"""`powerdesk billing ...`: the billing core's command line.

Other modules add commands to this same `app` (run-cycle, pay, reconcile, dun, kpi), so this
module holds only the app, the shared bad-input handling and the `quote` command.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from billing_core.errors import BillingError

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


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field path (e.g. ``usage.total_kwh``)."""
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item.get("loc", ())) or "(request)"
        parts.append(f"{field}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


@app.command("quote")
def quote(
    request_file: Annotated[Path, typer.Argument(help="账单试算请求 JSON 文件（见 billing_core/schemas/bill_request.schema.json）")],
) -> None:
    """Compute a bill for REQUEST_FILE and print it as JSON (amounts as strings)."""
    from billing_core.bill_types import BillRequest
    from billing_core.compute import compute_bill

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
    sys.stdout.write(bill.model_dump_json(indent=2) + "\n")


if __name__ == "__main__":
    app()
