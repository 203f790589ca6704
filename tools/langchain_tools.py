"""The tools as LangChain `StructuredTool`s bound to one conversation's `ToolContext`.

The model sees each tool's pydantic input schema; none but `verify_identity` has an account
number, so the model cannot choose whose data a tool reads — the bound context decides. A call
the schema refuses (an `account_no` slipped into `lookup_bill`) comes back to the model as a
typed `invalid_input` result and is audited like any other call. Each tool returns its result
as JSON content plus the typed result as the artifact (for the grounding guard).
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import ValidationError

from tools.audit import invalid_input, write_audit
from tools.context import ToolContext
from tools.registry import TOOLS, ToolSpec, call_tool
from tools.results import ToolResult


def _make(ctx: ToolContext, spec: ToolSpec) -> StructuredTool:
    def run(**kwargs: Any) -> tuple[str, ToolResult]:
        result = call_tool(ctx, spec.name, kwargs)
        return result.model_dump_json(), result

    def refused(exc: ValidationError) -> str:
        result = invalid_input(exc)
        offered = {".".join(str(p) for p in e["loc"]): e.get("input") for e in exc.errors()}
        write_audit(ctx, spec.name, offered, result, None, 0)
        return result.model_dump_json()

    return StructuredTool.from_function(
        func=run,
        name=spec.name,
        description=spec.description,
        args_schema=spec.input_model,
        response_format="content_and_artifact",
        handle_validation_error=refused,
        metadata={"writes": spec.writes, "confirms": spec.confirms, "needs_principal": spec.needs_principal},
    )


def make_langchain_tools(ctx: ToolContext, names: list[str] | None = None) -> list[StructuredTool]:
    """StructuredTools for `ctx` (all of them, or those named), in registry order."""
    wanted = set(names) if names is not None else None
    if wanted is not None:
        unknown = wanted - {spec.name for spec in TOOLS}
        if unknown:
            raise KeyError(f"names: unknown tools {sorted(unknown)}")
    return [_make(ctx, spec) for spec in TOOLS if wanted is None or spec.name in wanted]
