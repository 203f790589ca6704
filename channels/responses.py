"""The error answers the routes really give, for the OpenAPI document.

Every error body is `{"detail": "<Chinese message naming the field>"}`; a 422 adds the offending
fields (`errors`, or `field` when the agent refused an input). Routers list the answers they can
give with these constants, so the spec and the service agree (tests/channels/test_openapi_contract.py
checks it with schemathesis).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str = Field(description="出错的字段，如 body.text")
    message: str


class ErrorOut(BaseModel):
    detail: str = Field(description="错误说明（中文，指明字段）")


class ValidationErrorOut(ErrorOut):
    errors: list[FieldError] = Field(default_factory=list)
    field: str | None = Field(default=None, description="智能客服拒绝的输入字段")


def error_response(description: str) -> dict[str, Any]:
    """An error answer: always JSON, also on routes whose own answer is text or XML."""
    return {"description": description, "content": {"application/json": {"schema": ErrorOut.model_json_schema()}}}


BAD_XML = {400: error_response("XML 格式错误、含 DOCTYPE/实体声明，或缺少微信消息字段")}
UNAUTHENTICATED = {401: error_response("缺少凭证或签名")}
FORBIDDEN = {403: error_response("凭证无效或签名校验失败")}
NOT_FOUND = {404: error_response("资源不存在")}
CONFLICT = {409: error_response("当前状态不允许此操作")}
TOO_LARGE = {413: error_response("请求体超过 POWERDESK_MAX_BODY_BYTES")}
RATE_LIMITED = {429: error_response("请求过于频繁（Retry-After 秒后重试）")}
BUSY = {503: error_response("会话正在处理上一条消息（Retry-After 秒后用同一消息编号重发）")}
STAFF_ONLY = {**UNAUTHENTICATED, **FORBIDDEN}


def use_error_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Make FastAPI's generated 422 answers describe the body `_validation_error` really sends."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["HTTPValidationError"] = ValidationErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schemas["HTTPValidationError"].pop("$defs", {})
    schemas.update(defs)
    return openapi
