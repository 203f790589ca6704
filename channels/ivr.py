"""Hotline IVR turns: an ASR transcript in, a TTS-ready reply out.

The speech platform does recognition and synthesis; this endpoint decides what to say. Speech
is not text: a low-confidence transcript is read back for confirmation before the agent acts on
it, repeated failures (nothing heard, "不是" twice) go to a person, and replies are re-spelled
for the ear (`channels.spoken`).
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, Field

from channels.adapter import ChannelAdapter
from channels.agent_port import ReplyOut
from channels.deps import Services, ServicesDep, enforce_rate_limit
from channels.ivr_auth import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, IvrAuthError, check_signature
from channels.responses import BUSY, RATE_LIMITED, TOO_LARGE, error_response
from channels.spoken import to_speech
from tools.channels import channel_spec

log = logging.getLogger("powerdesk.channels")


async def signed_by_platform(
    request: Request,
    services: ServicesDep,
    timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER, max_length=12,
                                            description="Unix 秒时间戳")] = None,
    nonce: Annotated[str | None, Header(alias=NONCE_HEADER, max_length=64,
                                        description="每个请求不同的随机串（8–64 位字母数字）")] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER, max_length=80,
                                            description="sha256=HMAC-SHA256(密钥, 时间戳 + '.' + 请求体)")] = None,
) -> None:
    """Only the telephony platform may speak for a call (channels.ivr_auth); each signature once."""
    settings = services.settings
    try:
        body = await request.body()
        verified_nonce = check_signature(settings.ivr_secrets, timestamp, nonce, signature, body,
                                         settings.ivr_replay_window_seconds)
    except IvrAuthError as exc:
        log.warning("ivr request refused: %s", exc)
        raise HTTPException(exc.status, detail=str(exc),
                            headers={"WWW-Authenticate": "PowerDesk-HMAC"} if exc.status == 401 else None) from exc
    if not await services.blocking(services.once.claim, f"ivr:nonce:{verified_nonce}"):
        log.warning("ivr request refused: nonce replayed")
        raise HTTPException(401, detail=f"{NONCE_HEADER}: 该请求已处理过（重放），重试请重新签名",
                            headers={"WWW-Authenticate": "PowerDesk-HMAC"})


router = APIRouter(prefix="/ivr", tags=["热线 IVR"], dependencies=[Depends(signed_by_platform)],
                   responses={401: error_response("缺少平台签名、时间超出范围或重放"),
                              403: error_response("签名校验失败"),
                              **TOO_LARGE, **RATE_LIMITED, **BUSY})

HANDOFF_REQUEST = re.compile(r"(转|找|接|要)\s*(人工|客服|真人|坐席)|人工(服务|客服)")
YES = re.compile(r"^(是|是的|对|对的|没错|嗯|好|好的|正确|确认)[。！!.]?$")
NO = re.compile(r"^(不是|不对|错了|不|否|不正确)[。！!.]?$")
ASK_AGAIN = "抱歉，我没有听清。请您再说一遍。"
TRANSFER = "好的，正在为您转接人工客服，请稍候。"
HANDOFF_TEXT = "转人工"


class Alternative(BaseModel):
    text: str = Field(max_length=500)
    confidence: float = Field(ge=0, le=1)


class IvrTurnIn(BaseModel):
    call_id: str = Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="通话编号")
    transcript: str = Field(default="", max_length=500, description="ASR 识别文本（最佳结果）")
    confidence: float = Field(ge=0, le=1, description="ASR 置信度 0–1")
    nbest: list[Alternative] = Field(default_factory=list, max_length=10, description="候选识别结果（可选）")
    caller_number: str | None = Field(default=None, max_length=20, pattern=r"^\+?\d{3,20}$")


class IvrAction(StrEnum):
    CONTINUE = "continue"  # speak, then listen
    CONFIRM = "confirm"  # speak a yes/no question about what was heard
    HANDOFF = "handoff"  # speak, then transfer the call to a person


class IvrTurnOut(BaseModel):
    call_id: str
    sentences: list[str]  # one TTS prompt each
    speech: str  # the sentences joined, for engines that take one string
    action: IvrAction
    awaiting: str | None = None
    handoff: bool = False


class _CallState(BaseModel):
    """What the IVR remembers about a call between turns (in the shared store)."""

    failures: int = 0
    pending: str | None = None  # a low-confidence transcript waiting for 是/不是


def _best(turn: IvrTurnIn) -> tuple[str, float]:
    candidates = [(turn.transcript.strip(), turn.confidence)]
    candidates += [(a.text.strip(), a.confidence) for a in turn.nbest]
    candidates = [c for c in candidates if c[0]]
    if not candidates:
        return "", 0.0
    return max(candidates, key=lambda c: c[1])


def _state_key(call_id: str) -> str:
    return f"ivr:call:{call_id}"


def _out(call_id: str, text: str, action: IvrAction, awaiting: str | None = None) -> IvrTurnOut:
    sentences = to_speech(text)
    return IvrTurnOut(call_id=call_id, sentences=sentences, speech="".join(sentences), action=action,
                      awaiting=awaiting, handoff=action is IvrAction.HANDOFF)


async def _ask_agent(services: Services, turn: IvrTurnIn, text: str) -> ReplyOut:
    return await services.turn(f"ivr-{turn.call_id}", "ivr", text, None,
                               identity=ADAPTER.identity(turn.caller_number))


@router.post("/turn", response_model=IvrTurnOut, summary="热线一轮：识别文本 → 可播报的回复")
async def ivr_turn(turn: IvrTurnIn, services: ServicesDep) -> IvrTurnOut:
    enforce_rate_limit(services, "ivr", turn.call_id)
    key = _state_key(turn.call_id)
    raw = await services.blocking(services.once.result, key)
    state = _CallState.model_validate(raw) if raw else _CallState()
    text, confidence = _best(turn)
    settings = services.settings

    async def save() -> None:
        await services.blocking(services.once.record, key, state.model_dump())

    async def handoff() -> IvrTurnOut:
        reply = await _ask_agent(services, turn, HANDOFF_TEXT)
        state.pending = None
        await save()
        return _out(turn.call_id, reply.text if reply.handoff else TRANSFER, IvrAction.HANDOFF)

    if text and HANDOFF_REQUEST.search(text):
        return await handoff()

    if state.pending is not None:
        if text and YES.match(text):
            text, confidence = state.pending, 1.0
            state.pending = None
        elif text and NO.match(text):
            state.pending = None
            state.failures += 1
            if state.failures >= settings.ivr_max_failures:
                return await handoff()
            await save()
            return _out(turn.call_id, "好的，请您再说一遍您要办理的业务。", IvrAction.CONTINUE)
        else:
            state.pending = None  # the caller said something new: treat it as a new utterance

    if not text:
        state.failures += 1
        if state.failures >= settings.ivr_max_failures:
            return await handoff()
        await save()
        return _out(turn.call_id, ASK_AGAIN, IvrAction.CONTINUE)

    if confidence < settings.ivr_low_confidence:
        state.pending = text
        await save()
        return _out(turn.call_id, f"您是说「{text}」吗？请说是或者不是。", IvrAction.CONFIRM, "confirm")

    reply = await _ask_agent(services, turn, text)
    if reply.held_by_staff:  # a person holds the call: put it through to them
        return _out(turn.call_id, TRANSFER, IvrAction.HANDOFF)
    state.failures = 0
    await save()
    action = IvrAction.HANDOFF if reply.handoff else IvrAction.CONTINUE
    return _out(turn.call_id, reply.text, action, reply.awaiting)


# The platform asks and we answer within the call: nothing is pushed.
ADAPTER = ChannelAdapter(spec=channel_spec("ivr"), router=router)
