"""Result shapes shared by every tool: each result has a `status` and a Chinese `message`.

A tool never raises at its caller for an expected outcome (not verified, bad input, nothing
found): it returns one of these, typed, so the agent (either brain) and the Rasa actions can
branch on `status` and quote `message` without inventing anything.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

VERIFY_METHODS_TEXT = "请提供户号，以及户号登记的手机号后4位或户主身份证号后4位"


class ToolResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str
    message: str


class NeedsVerification(ToolResult):
    """The tool needs a verified customer and this conversation has none."""

    status: Literal["needs_verification"] = "needs_verification"
    message: str = f"为保护您的用电信息，查询或办理前需要先核实身份：{VERIFY_METHODS_TEXT}。"


class InvalidInput(ToolResult):
    """An argument was refused; `field` names it (e.g. ``period``)."""

    status: Literal["invalid_input"] = "invalid_input"
    field: str


class NotFound(ToolResult):
    """Nothing matched for the verified account (e.g. no bill for that month)."""

    status: Literal["not_found"] = "not_found"


class ToolFailed(ToolResult):
    """The tool broke (database down...): the conversation should go to a person."""

    status: Literal["error"] = "error"
    message: str = "系统暂时无法办理，请稍后再试，或转人工客服处理。"
