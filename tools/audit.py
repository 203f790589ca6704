"""Every tool call leaves an audit row: tool, conversation, channel, principal, arguments (secrets
redacted), result or error, duration. Written after the call, so a call that failed is still on
record. By default each row is its own transaction; a caller that records the whole turn (the
agent) sets `ctx.pending_audit` and writes the turn's rows with its turn record in one commit
(`flush_audit` writes them alone when the turn itself could not be recorded).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import insert
from sqlalchemy.orm import Session

from tools.context import ToolContext
from tools.models import AuditEvent
from tools.results import InvalidInput, ToolFailed, ToolResult

logger = logging.getLogger(__name__)
REDACTED = "***"


@functools.cache
def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields marked `json_schema_extra={"secret": True}` (phone tails, check answers); once per model."""
    return frozenset({
        name for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("secret")
    })


def redact(arguments: dict[str, Any], secrets: frozenset[str] | set[str]) -> dict[str, Any]:
    return {key: (REDACTED if key in secrets and value not in (None, "") else value)
            for key, value in arguments.items()}


def _jsonable(arguments: dict[str, Any]) -> dict[str, Any]:
    return {str(k): (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
            for k, v in arguments.items()}


def invalid_input(exc: ValidationError) -> InvalidInput:
    """The first validation error as a typed result naming its field."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "arguments"
    if first["type"] == "extra_forbidden":
        message = f"{field}: 不接受此参数（户号等身份信息只来自已核实的身份，不能在参数中指定）"
    else:
        message = f"{field}: {first['msg']}"
    return InvalidInput(field=field, message=message)


def audit_row(ctx: ToolContext, tool: str, arguments: dict[str, Any], result: ToolResult | None,
              error: str | None, duration_ms: int) -> dict[str, Any]:
    """The audit row's column values (principal as it is right after the call)."""
    principal = ctx.principal
    return dict(
        tool=tool,
        conversation_id=ctx.conversation_id,
        channel=ctx.channel,
        account_no=principal.account_no if principal else None,
        verified_by=principal.method.value if principal else None,
        arguments=_jsonable(arguments),
        status=result.status if result is not None else "error",
        result=result.model_dump(mode="json") if result is not None else None,
        error=error,
        duration_ms=duration_ms,
        created_at=ctx.now(),
    )


def write_audit(ctx: ToolContext, tool: str, arguments: dict[str, Any], result: ToolResult | None,
                error: str | None, duration_ms: int) -> None:
    row = audit_row(ctx, tool, arguments, result, error, duration_ms)
    if ctx.pending_audit is not None:
        ctx.pending_audit.append(row)
        return
    insert_audit_rows(ctx.session_factory, [row])


def insert_audit_rows(session_factory: Callable[[], Session], rows: list[dict[str, Any]],
                      session: Session | None = None) -> None:
    """Insert audit rows; in `session` (the caller commits) or in a transaction of their own."""
    if not rows:
        return
    if session is not None:
        session.execute(insert(AuditEvent.__table__), rows)
        return
    with session_factory() as own:
        own.execute(insert(AuditEvent.__table__), rows)
        own.commit()


def flush_audit(ctx: ToolContext) -> None:
    """Write the rows collected in `ctx.pending_audit` now (their own transaction) and clear it."""
    if ctx.pending_audit:
        rows, ctx.pending_audit[:] = list(ctx.pending_audit), []
        insert_audit_rows(ctx.session_factory, rows)


def audited_call(
    ctx: ToolContext,
    tool: str,
    input_model: type[BaseModel],
    func: Callable[[ToolContext, Any], ToolResult],
    arguments: dict[str, Any],
) -> ToolResult:
    """Validate `arguments`, run the tool for `ctx`, write the audit row, return the result."""
    started = time.perf_counter()
    logged = redact(dict(arguments), secret_fields(input_model))
    result: ToolResult
    error: str | None = None
    try:
        args = input_model.model_validate(arguments)
    except ValidationError as exc:
        result = invalid_input(exc)
    else:
        try:
            result = func(ctx, args)
        except Exception as exc:  # the caller gets a typed failure; the audit row keeps the cause
            logger.exception("tool %s failed", tool)
            error = f"{type(exc).__name__}: {exc}"
            result = ToolFailed()
    duration_ms = int((time.perf_counter() - started) * 1000)
    try:
        write_audit(ctx, tool, logged, result, error, duration_ms)
    except Exception:
        logger.exception("audit write failed for tool %s", tool)
        raise
    return result
