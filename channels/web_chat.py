"""Web chat API: start a conversation, send a message (reply streamed as SSE), read it back, rate it.

The server picks the conversation id and binds it to the browser that asked for it with a signed
token (`channels.conversation_tokens`): an HttpOnly cookie scoped to the conversation's path, or
the `X-Conversation-Token` header for API clients. The page keeps only the id (localStorage);
everything else is server-side, so a reload or a dropped connection resumes the same conversation
on any app process. Without the token, a conversation — of this or any other channel — answers
404 exactly like one that never existed.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Header, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from channels.adapter import ChannelAdapter
from channels.agent_port import ReplyOut
from channels.conversation_tokens import new_web_conversation_id
from channels.deps import Services, ServicesDep, enforce_rate_limit
from channels.responses import BUSY, RATE_LIMITED, TOO_LARGE, error_response
from agent.agent import AgentInputError
from channels.transcripts import Transcript, load_transcript
from channels.web_stream import stream_turn, streams_sentences
from tools.channels import channel_spec

COOKIE = "powerdesk_conversation"
TOKEN_HEADER = "X-Conversation-Token"
NOT_FOUND = "会话不存在"

router = APIRouter(prefix="/api/chat", tags=["网页客服"], responses={**TOO_LARGE, **RATE_LIMITED, **BUSY})


def owned_conversation(
    services: ServicesDep,
    conversation_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="会话编号")],
    cookie: Annotated[str | None, Cookie(alias=COOKIE, description="创建会话时下发的 HttpOnly 凭证")] = None,
    header: Annotated[str | None, Header(alias=TOKEN_HEADER, max_length=128,
                                         description="会话凭证（非浏览器客户端）")] = None,
) -> str:
    """The conversation id, when the caller holds its token; else 404 as for an unknown id."""
    token = header or cookie
    if not services.conversation_tokens.check(conversation_id, token):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    return conversation_id


ConversationId = Annotated[str, Depends(owned_conversation)]
NOT_FOUND_RESPONSE = {404: error_response("会话不存在，或请求未携带该会话的凭证（两者无法区分）")}

HELD_TEXT = "人工客服正在为您处理，请稍候，客服回复会显示在这里。"
CSAT_LABELS = {5: "非常满意", 4: "满意", 3: "一般", 2: "不满意", 1: "非常不满意"}


class NewConversation(BaseModel):
    conversation_id: str
    greeting: str
    conversation_token: str = Field(description=f"会话凭证：浏览器已随 HttpOnly Cookie 收到；其他客户端在 "
                                                f"{TOKEN_HEADER} 请求头中回传")
    expires_in: int = Field(description="凭证有效期（秒）")


class ChatMessage(BaseModel):
    text: str = Field(min_length=1, max_length=500, description="客户输入的文字")
    message_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                   description="客户端生成的消息编号，重发时不重复处理")


class CsatIn(BaseModel):
    score: int = Field(ge=1, le=5, description="满意度 1–5（5 为非常满意）")


class CsatOut(BaseModel):
    conversation_id: str
    score: int
    label: str


GREETING = "您好，我是南网电费智能客服。可以帮您查电费、解释账单、查缴费状态、办理电费争议。请问有什么可以帮您？"


@router.post("/conversations", response_model=NewConversation, status_code=status.HTTP_201_CREATED,
             summary="开始新会话（服务器分配编号并下发凭证）")
def new_conversation(request: Request, services: ServicesDep) -> JSONResponse:
    conversation_id = new_web_conversation_id()
    tokens = services.conversation_tokens
    token = tokens.issue(conversation_id)
    body = NewConversation(conversation_id=conversation_id, greeting=GREETING, conversation_token=token,
                           expires_in=tokens.ttl_seconds)
    response = JSONResponse(body.model_dump(), status_code=status.HTTP_201_CREATED)
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(COOKIE, token, max_age=tokens.ttl_seconds, path=f"{router.prefix}/conversations/"
                        f"{conversation_id}", httponly=True, samesite="strict", secure=secure)
    return response


@router.get("/conversations/{conversation_id}", response_model=Transcript, summary="读取会话记录（断线重连）",
            responses=NOT_FOUND_RESPONSE)
def get_conversation(conversation_id: ConversationId) -> Transcript:
    transcript = load_transcript(conversation_id, channel="web")
    if transcript is None:  # issued to this browser, nothing said yet
        return Transcript(conversation_id=conversation_id, channel="web", account_no=None, outcome=None,
                          turn_count=0, csat_score=None, started_at=datetime.now(UTC), ended_at=None)
    return transcript


def client_source(request: Request) -> str | None:
    """The browser's address as this service knows it, the source its identity checks are counted
    under (`tools.verify_identity`: one address trying many 户号 is locked). Behind nginx it is the
    X-Forwarded-For client: uvicorn trusts that header from `FORWARDED_ALLOW_IPS` (default
    127.0.0.1, the local proxy). An IPv6 client is its /64, which one household or phone holds whole."""
    host = request.client.host if request.client else None
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:203.0.113.7 is an IPv4 client
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@router.post("/conversations/{conversation_id}/messages", summary="发送消息，回复以 SSE 流式返回", response_model=None,
             responses={200: {"content": {"text/event-stream": {}}}, **NOT_FOUND_RESPONSE})
async def send_message(conversation_id: ConversationId, message: ChatMessage, services: ServicesDep,
                       request: Request, stream: bool = True) -> Response | ReplyOut:
    enforce_rate_limit(services, "web", conversation_id)
    shown = partial(_as_shown, services, conversation_id, message.text)
    source = client_source(request)
    if stream and streams_sentences(services):
        # The LLM brain: a live stream, each sentence sent once the guard passed it (channels/web_stream.py).
        return await stream_turn(services, conversation_id, message.text, message.message_id, shown,
                                 _single_body, source=source)
    reply = await shown(await services.turn(conversation_id, "web", message.text, message.message_id,
                                            source=source))
    if not stream:
        return reply
    return _single_body(reply)


async def _as_shown(services: Services, conversation_id: str, text: str, reply: ReplyOut) -> ReplyOut:
    """The reply the page gets: while a person holds the conversation, the message is recorded for
    them and the page says so."""
    if reply.held_by_staff:
        await services.record_held(conversation_id, "web", text)
        return ReplyOut(conversation_id=conversation_id, text=HELD_TEXT, held_by_staff=True)
    return reply


def _single_body(reply: ReplyOut) -> Response:
    # The reply is complete before the first byte goes out, so its delta events and the final reply
    # event leave as one SSE body: the page still reads and types out the deltas one by one, and the
    # server skips StreamingResponse's per-request disconnect watcher (a task group per turn).
    events = "".join([*(_sse("delta", {"text": piece}) for piece in _chunks(reply.text)),
                      _sse("reply", reply.model_dump())])
    return Response(events, media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/conversations/{conversation_id}/csat", response_model=CsatOut, summary="会话满意度评价",
             responses=NOT_FOUND_RESPONSE)
async def rate_conversation(conversation_id: ConversationId, rating: CsatIn,
                            services: ServicesDep) -> CsatOut:
    enforce_rate_limit(services, "web", conversation_id)
    label = CSAT_LABELS[rating.score]
    try:
        await services.blocking(services.agent.rate, conversation_id, rating.score, "web")
    except AgentInputError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="会话不存在，无法评价") from exc
    return CsatOut(conversation_id=conversation_id, score=rating.score, label=label)


# The page reads staff replies from the transcript: nothing is pushed.
ADAPTER = ChannelAdapter(spec=channel_spec("web"), router=router)
