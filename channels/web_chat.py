"""Web chat API: start a conversation, send a message (reply streamed as SSE), read it back, rate it.

The page keeps only the conversation id (localStorage); everything else is server-side, so a
reload or a dropped connection resumes the same conversation on any app process.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from channels.agent_port import ReplyOut
from channels.assist import held_by_staff, record_held_turn
from channels.deps import ServicesDep, enforce_rate_limit
from agent.agent import AgentInputError
from channels.transcripts import Transcript, load_transcript

router = APIRouter(prefix="/api/chat", tags=["网页客服"])

ConversationId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="会话编号")]

HELD_TEXT = "人工客服正在为您处理，请稍候，客服回复会显示在这里。"
CSAT_LABELS = {5: "非常满意", 4: "满意", 3: "一般", 2: "不满意", 1: "非常不满意"}


class NewConversation(BaseModel):
    conversation_id: str
    greeting: str


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
             summary="开始新会话")
def new_conversation() -> NewConversation:
    return NewConversation(conversation_id="web-" + uuid.uuid4().hex, greeting=GREETING)


@router.get("/conversations/{conversation_id}", response_model=Transcript, summary="读取会话记录（断线重连）")
def get_conversation(conversation_id: ConversationId) -> Transcript:
    transcript = load_transcript(conversation_id)
    if transcript is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="会话不存在")
    return transcript


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@router.post("/conversations/{conversation_id}/messages", summary="发送消息，回复以 SSE 流式返回", response_model=None,
             responses={200: {"content": {"text/event-stream": {}}}})
async def send_message(conversation_id: ConversationId, message: ChatMessage, services: ServicesDep,
                       stream: bool = True) -> Response | ReplyOut:
    enforce_rate_limit(services, "web", conversation_id)
    if await services.blocking(held_by_staff, conversation_id, services):
        await services.blocking(record_held_turn, services, conversation_id, message.text, "")
        reply = ReplyOut(conversation_id=conversation_id, text=HELD_TEXT, held_by_staff=True)
    else:
        reply = await services.turn(conversation_id, "web", message.text, message.message_id)
    if not stream:
        return reply

    # The reply is complete before the first byte goes out, so its delta events and the final reply
    # event leave as one SSE body: the page still reads and types out the deltas one by one, and the
    # server skips StreamingResponse's per-request disconnect watcher (a task group per turn).
    events = "".join([*(_sse("delta", {"text": piece}) for piece in _chunks(reply.text)),
                      _sse("reply", reply.model_dump())])
    return Response(events, media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/conversations/{conversation_id}/csat", response_model=CsatOut, summary="会话满意度评价")
async def rate_conversation(conversation_id: ConversationId, rating: CsatIn,
                            services: ServicesDep) -> CsatOut:
    enforce_rate_limit(services, "web", conversation_id)
    label = CSAT_LABELS[rating.score]
    try:
        await services.blocking(services.agent.rate, conversation_id, rating.score)
    except AgentInputError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="会话不存在，无法评价") from exc
    return CsatOut(conversation_id=conversation_id, score=rating.score, label=label)
