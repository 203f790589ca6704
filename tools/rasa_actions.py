"""The tools as a rasa-sdk action server: `action_lookup_bill` and friends answer Rasa's webhook.

Each action builds a `ToolContext` for the tracker's `sender_id` and restores the verified
principal from the server-side store (`verified_sessions`); slot values only carry what the
customer said (户号, 后4位, month...) and never authorize — an `account_no` slot is read by
`action_verify_identity` as a claim to check, and by no other action. The channel's own identity
comes from the message metadata the Rasa channel connector attaches (a WeChat `openid`, a
hotline `caller_number`), not from the text. Replies are the tools' Chinese messages plus the
typed result as `json_message`; slots `verified`, `tool_status`, `ticket_no`, `handoff_no` are
set when the domain declares them, and secrets (`last4`, `check_answer`) are cleared after use.

The app is rasa_sdk's own (`rasa_sdk.endpoint.create_app`): POST /webhook, GET /health,
GET /actions, 404 for an unknown action.

Who may call it: only the Rasa server. The tracker's metadata decides identity (a WeChat openid
verifies a bound customer), so an open /webhook would let anyone claim an openid and read that
customer's bills. Every request but GET /health must carry the shared token, the way Rasa sends
it when endpoints.yml says `action_endpoint: {url: …, token: …}` — the query parameter `token`
(rasa.utils.endpoints.EndpointConfig adds `?token=…` to each call) — or as
`Authorization: Bearer …`. The token is `POWERDESK_RASA_ACTION_TOKEN`, or, when that is unset, a
random one `powerdesk rasa-actions` writes to `$POWERDESK_VAR_DIR/secrets/rasa_action_token` (mode 0600)
on first start and reuses afterwards. Compared in constant time; 401 without a token, 403 with a
wrong one, and neither says anything else.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.endpoint import create_app
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import json as json_response
from sqlalchemy.orm import Session, sessionmaker

from billing_core.db.engine import make_engine
from billing_core.settings import generated_secret
from knowledge_base.retriever import KnowledgeRetriever
from tools.context import ToolContext
from tools.models import VerificationMethod
from tools.registry import call_tool
from tools.results import ToolResult

TOKEN_ENV = "POWERDESK_RASA_ACTION_TOKEN"
TOKEN_FILE = "rasa_action_token"
MIN_TOKEN_CHARS = 16
OPEN_PATHS = frozenset({"/health"})  # liveness probes carry no token and learn nothing
SECRET_SLOTS = ("last4", "check_answer")
IVR_CHANNELS = {"ivr", "hotline", "phone", "callback_ivr"}


def _slot(tracker: Tracker, name: str) -> Any:
    value = tracker.get_slot(name)
    return None if value in (None, "") else value


def _text(tracker: Tracker) -> str:
    return str((tracker.latest_message or {}).get("text") or "").strip()


def _verify_args(tracker: Tracker, ctx: ToolContext) -> dict[str, Any]:
    method = _slot(tracker, "verification_method")
    if method is None:
        if ctx.allows(VerificationMethod.WECHAT_OPENID) and _slot(tracker, "last4") is None:
            method = "wechat_openid"
        elif ctx.spec.allows(VerificationMethod.HOTLINE) and _slot(tracker, "check_answer") is not None:
            method = "hotline"
        else:
            method = "account_secret"
    args = {"method": method}
    for name in ("account_no", "last4", "check_answer"):
        if _slot(tracker, name) is not None:
            args[name] = str(_slot(tracker, name))
    return args


def _optional(tracker: Tracker, pairs: dict[str, str]) -> dict[str, Any]:
    return {arg: _slot(tracker, slot) for arg, slot in pairs.items() if _slot(tracker, slot) is not None}


def _lookup_args(tracker: Tracker, ctx: ToolContext) -> dict[str, Any]:
    args = _optional(tracker, {"period": "period"})
    if "period" not in args and _slot(tracker, "latest_n") is not None:
        args["latest"] = int(float(_slot(tracker, "latest_n")))
    return args


def _period_args(tracker: Tracker, ctx: ToolContext) -> dict[str, Any]:
    return _optional(tracker, {"period": "period"})


def _dispute_args(tracker: Tracker, ctx: ToolContext) -> dict[str, Any]:
    args = _optional(tracker, {"period": "period", "category": "dispute_category",
                               "reason": "dispute_reason"})
    args.setdefault("category", "other")
    return args


def _complaint_args(tracker: Tracker, ctx: ToolContext) -> dict[str, Any]:
    args = _optional(tracker, {"category": "complaint_category", "description": "complaint_description",
                               "contact": "contact_phone", "urgent": "urgent"})
    args.setdefault("category", "other")
    return args


def _transfer_args(tracker: Tracker, ctx: ToolContext) -> dict[str, Any]:
    return {"reason": _slot(tracker, "handoff_reason") or "customer_asked",
            "summary": _slot(tracker, "handoff_summary") or _text(tracker) or "客户要求转人工"}


def _search_args(tracker: Tracker, ctx: ToolContext) -> dict[str, Any]:
    return {"query": _slot(tracker, "kb_query") or _text(tracker)}


ACTIONS: dict[str, tuple[str, Callable[[Tracker, ToolContext], dict[str, Any]]]] = {
    "action_verify_identity": ("verify_identity", _verify_args),
    "action_lookup_bill": ("lookup_bill", _lookup_args),
    "action_explain_bill": ("explain_bill", _period_args),
    "action_payment_status": ("payment_status", _period_args),
    "action_open_dispute": ("open_dispute", _dispute_args),
    "action_intake_complaint": ("intake_complaint", _complaint_args),
    "action_transfer_to_human": ("transfer_to_human", _transfer_args),
    "action_search_knowledge_base": ("search_knowledge_base", _search_args),
}


class ToolAction(Action):
    """One Rasa action running one tool for the tracker's conversation."""

    def __init__(self, action_name: str, make_context: Callable[[Tracker], ToolContext]) -> None:
        self._name = action_name
        self._tool, self._arguments = ACTIONS[action_name]
        self._make_context = make_context

    def name(self) -> str:
        return self._name

    def _run(self, tracker: Tracker) -> tuple[ToolResult, ToolContext]:
        ctx = self._make_context(tracker)
        ctx.restore_principal()
        return call_tool(ctx, self._tool, self._arguments(tracker, ctx)), ctx

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        result, ctx = await asyncio.to_thread(self._run, tracker)
        dispatcher.utter_message(text=result.message,
                                 json_message={"tool": self._tool, "result": result.model_dump(mode="json")})
        declared = set((domain or {}).get("slots") or {})
        events = {
            "verified": ctx.verified() is not None,
            "tool_status": result.status,
            "ticket_no": getattr(result, "ticket_no", None) or getattr(result, "open_ticket_no", None),
            "handoff_no": getattr(result, "handoff_no", None),
        }
        out = [SlotSet(name, value) for name, value in events.items()
               if name in declared and (value is not None or name in ("verified", "tool_status"))]
        if self._tool == "verify_identity":
            out += [SlotSet(name, None) for name in SECRET_SLOTS if name in declared]
        return out


def context_factory(
    session_factory: Callable[[], Session], knowledge: Callable[[], KnowledgeRetriever] | None = None,
) -> Callable[[Tracker], ToolContext]:
    """Build a ToolContext from a tracker: conversation = sender_id, channel from the connector."""

    def make(tracker: Tracker) -> ToolContext:
        input_channel = (tracker.get_latest_input_channel() or "").lower()
        metadata = (tracker.latest_message or {}).get("metadata") or {}
        if input_channel == "wechat":
            channel, identity = "wechat", metadata.get("openid")
        elif input_channel in IVR_CHANNELS:
            channel, identity = "ivr", metadata.get("caller_number")
        else:
            channel, identity = "rasa", None
        return ToolContext(conversation_id=tracker.sender_id, channel=channel,
                           session_factory=session_factory,
                           channel_identity=str(identity) if identity else None, knowledge=knowledge)

    return make


def build_executor(session_factory: Callable[[], Session],
                   knowledge: Callable[[], KnowledgeRetriever] | None = None) -> ActionExecutor:
    """rasa_sdk's executor with every PowerDesk action registered (`knowledge`: default retriever)."""
    executor = ActionExecutor()
    make = context_factory(session_factory, knowledge)
    for action_name in ACTIONS:
        executor.register_action(ToolAction(action_name, make))
    return executor


def action_token(var_dir: Path | None = None) -> tuple[str, Path | None]:
    """The shared token and where it came from (None: `POWERDESK_RASA_ACTION_TOKEN`).

    Unset variable: this site's token in `var_dir/secrets/rasa_action_token` (generated like the
    channels' secrets, `billing_core.settings.generated_secret`), created on first use, so a restart keeps
    the value Rasa's endpoints.yml holds. A value shorter than 16 characters is refused
    (ValueError naming the variable or the file): a token must not be guessable.
    """
    configured = os.environ.get(TOKEN_ENV, "").strip()
    if configured:
        if len(configured) < MIN_TOKEN_CHARS:
            raise ValueError(f"{TOKEN_ENV}: at least {MIN_TOKEN_CHARS} characters")
        return configured, None
    path, _created = generated_secret(TOKEN_FILE, None if var_dir is None else var_dir / "secrets")
    token = path.read_text(encoding="ascii").strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"{path}: at least {MIN_TOKEN_CHARS} characters (delete it to generate a new one)")
    return token, path


def _presented_token(request: Request) -> str | None:
    """The token as Rasa sends it (`?token=`), or a bearer token."""
    value = request.args.get("token")
    if value:
        return str(value)
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip() or None


def require_token(app: Sanic, token: str) -> None:
    """Refuse every request to `app` but GET /health without the shared `token` (401) or with another (403)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"token: at least {MIN_TOKEN_CHARS} characters")
    expected = token.encode()

    async def check(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
            return None
        presented = _presented_token(request)
        if presented is None:
            return json_response({"error": "需要动作服务器令牌（token）"}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="rasa-actions"'})
        if not hmac.compare_digest(presented.encode(), expected):
            return json_response({"error": "动作服务器令牌无效"}, status=403)
        return None

    app.register_middleware(check, "request")


def create_action_app(token: str, database_url: str | None = None) -> Sanic:
    """rasa_sdk's Sanic app serving the PowerDesk actions against `database_url`, for callers with `token`."""
    factory = sessionmaker(bind=make_engine(database_url), expire_on_commit=False)
    app = create_app(build_executor(factory), cors_origins=None)
    require_token(app, token)
    return app
