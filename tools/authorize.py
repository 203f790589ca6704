"""The one authorisation step of the account tools: verified → customer → the tool.

An account tool (`ToolSpec.needs_principal`) is written as `(ctx, session, customer, args)`: it
is handed the conversation's verified customer and cannot be run for anyone else, because there
is no other way to call it than through `for_verified_customer` (which `tools.registry.call_tool`
applies). Without a valid principal the answer is `needs_verification` and the tool body never
runs; the customer row is read from the principal's account only, never from the arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from tools.account_view import CustomerView, customer_of
from tools.context import ToolContext
from tools.results import NeedsVerification, ToolResult

PlainTool = Callable[[ToolContext, Any], ToolResult]
AccountTool = Callable[[ToolContext, Session, CustomerView, Any], ToolResult]


def for_verified_customer(tool: AccountTool) -> PlainTool:
    """`tool` as a `(ctx, args)` call that runs only for the conversation's verified customer.

    The session is open for the whole call (a writing tool commits it). An account closed after
    verification raises `LookupError` in `customer_of`: the caller's audit wrapper turns it into
    a typed `error` result with the cause on record.
    """

    def run(ctx: ToolContext, args: Any) -> ToolResult:
        principal = ctx.verified()
        if principal is None:
            return NeedsVerification()
        with ctx.session_factory() as session:
            return tool(ctx, session, customer_of(session, principal), args)

    run.__name__ = run.__qualname__ = getattr(tool, "__name__", "account_tool")
    run.__doc__ = tool.__doc__
    return run
