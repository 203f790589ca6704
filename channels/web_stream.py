"""The web chat's live stream for LLM-brain turns: each guarded sentence leaves as it is ready.

Events, in the format the page already reads (`channels/web/chat.js`):
- `delta` `{"text": …}` — a sentence of the reply that passed the grounding guard;
- `retract` `{"reason": "ungrounded" | "replaced" | "fallback"}` — what was shown is withdrawn:
  a later sentence carried a figure no tool returned (held, never sent; the reply was regenerated
  or replaced by the safe template), or the endpoint failed mid-stream and the local brain
  answered. The page clears the bubble; the final reply's `delta`s follow;
- `reply` — the final reply, exactly as the single-body path sends it; its text is what the
  deltas since the last `retract` add up to.

We retract rather than patch in place ("replace"): the guard holds a whole sentence, the
regenerated reply is a new text, and the customer must never keep reading a sentence that
belonged to a reply we did not stand behind; one event that clears, then the reply typed out
again, is also the simplest thing for every client to get right.

Local-brain turns never come here: their reply is complete before the first byte, so they keep
the single SSE body of `web_chat.send_message` (no `StreamingResponse` disconnect watcher per
turn). The turn itself runs in the agent's worker threads (`Services.turn`, same limiter,
metrics, locks, records); a customer who leaves mid-stream does not stop it: it is recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import Response, StreamingResponse

from agent.streaming import Final, Retract, Sentence, StreamEvent
from channels.agent_port import ReplyOut
from channels.deps import Services

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_running: set[asyncio.Task[ReplyOut]] = set()  # turns outliving a closed stream are kept until done


def streams_sentences(services: Services) -> bool:
    """Whether this app's turns are answered by the LLM brain (the only one that streams)."""
    return getattr(services.agent, "brain", "local") == "llm"


async def stream_turn(services: Services, conversation_id: str, text: str, message_id: str | None,
                      finish: Callable[[ReplyOut], Awaitable[ReplyOut]],
                      single_body: Callable[[ReplyOut], Response], source: str | None = None) -> Response:
    """Run the turn; answer with a live SSE stream once its first sentence is out.

    Until then nothing is sent, so bad input, a 404 or a busy agent still answer with their
    status code; a turn that ends with no sentence streamed (a local fallback, a stored reply, a
    held conversation) gets `single_body` — the same body the local brain's turns get.
    `finish` turns the final reply into what the page is sent (the staff-hold wording).
    """
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[StreamEvent | None] = asyncio.Queue()

    def on_event(event: StreamEvent) -> None:  # called in the turn's worker thread
        if not isinstance(event, Final):  # the Reply comes back from the task itself
            loop.call_soon_threadsafe(events.put_nowait, event)

    task = asyncio.ensure_future(services.turn(conversation_id, "web", text, message_id, on_event=on_event,
                                               source=source))
    _running.add(task)
    # Scheduled after the thread's own call_soon_threadsafe calls, so it is always the last event.
    task.add_done_callback(lambda done: (_running.discard(done), events.put_nowait(None)))
    first = await events.get()
    if first is None:
        return single_body(await finish(task.result()))  # raises the turn's error, as today

    async def body() -> AsyncIterator[str]:
        event: StreamEvent | None = first
        retracted = False
        while event is not None:
            if isinstance(event, Sentence):
                yield _sse("delta", {"text": event.text})
            elif isinstance(event, Retract):
                retracted = True
                yield _sse("retract", {"reason": event.reason})
            event = await events.get()
        try:
            reply = await finish(task.result())
        except Exception:  # headers are gone: the page sees no `reply`, says 连接中断 and resends
            log.exception("streamed turn failed", extra={"conversation_id": conversation_id})
            return
        if retracted:
            for piece in _chunks(reply.text):
                yield _sse("delta", {"text": piece})
        yield _sse("reply", reply.model_dump())

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
