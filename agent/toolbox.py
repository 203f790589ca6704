"""The tools of one conversation turn, bound to its `ToolContext`, with every call kept.

Both brains go through here: the local brain calls `ToolBox.call`, the LLM brain gets the same
calls as LangChain `StructuredTool`s. Each call is validated and audit-logged by the tools
layer (`tools.registry.call_tool`) and appended to `calls`, which is what the grounding guard
accepts as evidence and what the turn record stores.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel

from tools.context import ToolContext
from tools.registry import TOOLS, call_tool, get_tool


@dataclass
class ToolCallRecord:
    tool: str
    arguments: dict[str, Any]
    result: Any  # a ToolResult model, or decoded JSON for the knowledge base

    def as_dict(self) -> dict[str, Any]:
        result = self.result.model_dump(mode="json") if hasattr(self.result, "model_dump") else self.result
        return {"tool": self.tool, "arguments": self.arguments, "result": result}


@dataclass
class ToolBox:
    ctx: ToolContext
    calls: list[ToolCallRecord] = field(default_factory=list)

    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run tool `name` for this conversation's principal and keep the call."""
        spec = get_tool(name)
        result = call_tool(self.ctx, name, dict(arguments))
        self.calls.append(ToolCallRecord(tool=name, arguments=_public_arguments(spec.input_model, arguments),
                                         result=result))
        return result

    def search(self, query: str, k: int = 3) -> dict[str, Any]:
        """Knowledge-base passages with their citations, as plain data (empty when none match)."""
        result = self.call("search_knowledge_base", {"query": query[:500], "k": k})
        hits = [p.model_dump() for p in getattr(result, "passages", [])] if result.status == "ok" else []
        return {"status": result.status, "query": query, "results": hits}

    def langchain_tools(self, exclude: frozenset[str] = frozenset({"bind_wechat"})) -> list[BaseTool]:
        """The same tools as LangChain StructuredTools (for the LLM brain), recording into `calls`."""
        return [StructuredTool.from_function(func=_bound(self, spec.name), name=spec.name,
                                             description=spec.description, args_schema=spec.input_model)
                for spec in TOOLS if spec.name not in exclude]


def _bound(box: ToolBox, name: str) -> Callable[..., str]:
    def run(**arguments: Any) -> str:
        result = box.call(name, {k: v for k, v in arguments.items() if v is not None})
        if hasattr(result, "model_dump_json"):
            return str(result.model_dump_json())
        return json.dumps(result, default=str)

    return run


def _public_arguments(model: type[BaseModel], arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments as recorded: secret fields (phone tails, check answers) redacted."""
    from tools.audit import redact, secret_fields

    return redact({k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v))
                   for k, v in arguments.items()}, secret_fields(model))
