"""Property tests over the OpenAPI document (schemathesis): no server errors, and every answer a
route gives — status, and body for the documented ones — is the one the spec documents.

The requests get what a legitimate client has, so that generated input reaches the code behind
the front door: a staff token for the staff routes, a conversation of its own with its token for
the web chat, a platform signature over the exact body for the hotline. Examples per operation
are bounded (`EXAMPLES`) to keep the suite fast; hypothesis shrinks any failure it finds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import positive_data_acceptance
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from channels.app import create_app
from channels.ivr_auth import signed_headers
from tests.channels.conftest import IVR_SECRET, STAFF_TOKEN, make_settings, new_web_conversation
from tests.channels.test_alipay import Keys, make_keys, signed_fields

EXAMPLES = 20
STAFF_PREFIXES = ("/api/assist", "/api/kpi")
WEB_CONVERSATION = "/api/chat/conversations/{conversation_id}"


def _send(client: TestClient, case: Any, alipay: Keys) -> Any:
    if case.operation.path.startswith(WEB_CONVERSATION):
        case.path_parameters = {**(case.path_parameters or {}), "conversation_id": new_web_conversation(client)}
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != "x-conversation-token"}
    cookies = {k: v for k, v in (kwargs.get("cookies") or {}).items() if k != "powerdesk_conversation"}
    if case.operation.path == "/alipay":  # signed by Alipay's key, whatever the fields say
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        fields = kwargs.get("data") if isinstance(kwargs.get("data"), dict) else {}
        content = signed_fields(alipay, {str(k): str(v) for k, v in fields.items()})
    elif "json" in kwargs:
        content = json.dumps(kwargs["json"], ensure_ascii=False).encode()
    else:
        raw = kwargs.get("data") or b""
        content = raw.encode() if isinstance(raw, str) else raw
    if case.operation.path.startswith(STAFF_PREFIXES):
        headers["Authorization"] = f"Bearer {STAFF_TOKEN}"
    if case.operation.path == "/ivr/turn":
        headers.update(signed_headers(IVR_SECRET, content))
    if cookies:
        client.cookies.update(cookies)
    return client.request(kwargs["method"], kwargs["url"], content=content, headers=headers,
                          params=kwargs.get("params"))


def test_every_operation_answers_as_documented(agent: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alipay = make_keys(tmp_path)
    for name, value in alipay.env.items():
        monkeypatch.setenv(name, value)
    app = create_app(make_settings(), agent)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    with TestClient(app) as client:
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1

            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                response = _send(client, case, alipay)
                assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
                # A schema cannot say "well-formed <XML> message": a signed Alipay form around a generated
                # biz_content is rightly 400, so only that one check is left out for /alipay.
                skipped = [positive_data_acceptance] if case.operation.path == "/alipay" else None
                case.validate_response(response, excluded_checks=skipped)

            try:
                check()
            except (AssertionError, Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect all
                details = " | ".join(str(sub)[:400] for sub in getattr(exc, "exceptions", [])) or str(exc)[:800]
                failures.append(f"{operation.method.upper()} {operation.path}: {details}")
    assert operations >= 15  # every channel's routes are in the document
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("path", ["/api/chat/conversations", "/ivr/turn", "/api/assist/queue"])
def test_the_spec_names_the_answers_routes_give(agent: Any, path: str) -> None:
    with TestClient(create_app(make_settings(), agent)) as client:
        spec = client.get("/openapi.json").json()
    answers = {code for operation in spec["paths"][path].values() for code in operation["responses"]}
    expected = {"/api/chat/conversations": {"201", "413", "429", "503"},
                "/ivr/turn": {"200", "401", "403", "413", "422", "429", "503"},
                "/api/assist/queue": {"200", "401", "403"}}[path]
    assert expected <= answers, answers
    error = spec["components"]["schemas"]["HTTPValidationError"]
    assert error["properties"]["detail"]["type"] == "string"  # what the 422 handler really sends
