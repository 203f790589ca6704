"""Stand-ins for an LLM endpoint: a scripted chat model, and an HTTP server replaying recorded
OpenAI chat-completion responses so the real `ChatOpenAI` client code path runs offline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedChatModel(BaseChatModel):
    """Replays scripted AIMessages (with tool_calls) in order and keeps what it was sent."""

    script: list[AIMessage]
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        if not self.script:
            raise RuntimeError("script exhausted")
        return ChatResult(generations=[ChatGeneration(message=self.script.pop(0))])


def completion(content: str | None = None,
               tool_calls: Sequence[tuple[str, dict[str, Any]]] = ()) -> dict[str, Any]:
    """An OpenAI chat-completion response body, as recorded from an OpenAI-compatible endpoint."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}
            for i, (name, args) in enumerate(tool_calls)]
    return {"id": "chatcmpl-rec", "object": "chat.completion", "created": 1763900000,
            "model": "deepseek-chat",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if tool_calls else "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


@dataclass
class Recorded:
    """One recorded response. Asked with `"stream": true`, a 200 body is replayed as SSE
    `chat.completion.chunk` events: its content cut into `pieces` (or into 4-character pieces),
    `chunk_delay` seconds apart, and a stall of `stall` seconds after chunk `stall_after`."""

    body: dict[str, Any] | None = None
    status: int = 200
    delay: float = 0.0
    pieces: Sequence[str] | None = None
    chunk_delay: float = 0.0
    stall_after: int | None = None
    stall: float = 0.0


def stream_chunks(body: dict[str, Any], pieces: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """A recorded completion as the chunks an OpenAI-compatible endpoint streams for it: a role
    chunk, the content piece by piece, each tool call (name, then its arguments in two halves),
    and a final chunk with the finish reason."""
    message = body["choices"][0]["message"]
    content = message.get("content") or ""
    if pieces is None:
        pieces = [content[i:i + 4] for i in range(0, len(content), 4)]
    assert "".join(pieces) == content, "pieces must spell the recorded content"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"],
                "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                                      "logprobs": None}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in pieces]
    for index, call in enumerate(message.get("tool_calls") or []):
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"],
                                                          "arguments": arguments[:half]}}]}))
        chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}))
    chunks.append(chunk({}, body["choices"][0]["finish_reason"]))
    return chunks


@dataclass
class ReplayServer:
    url: str
    queue: list[Recorded]
    requests: list[dict[str, Any]] = field(default_factory=list)
    streamed: int = 0  # streamed responses sent to the end
    closed_early: int = 0  # streamed responses the client hung up on
    first_content_at: list[float] = field(default_factory=list)  # perf_counter() of each stream's first words


@contextmanager
def replay_server(responses: list[Recorded]) -> Iterator[ReplayServer]:
    """A loopback HTTP server answering POST /v1/chat/completions from `responses`, in order."""
    state = ReplayServer(url="", queue=list(responses))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", 0))
            state.requests.append(json.loads(self.rfile.read(length) or b"{}"))
            exhausted = Recorded(status=500, body={"error": "exhausted"})
            recorded = state.queue.pop(0) if state.queue else exhausted
            if recorded.delay:
                time.sleep(recorded.delay)
            error = {"error": {"message": "upstream error", "type": "server_error"}}
            if state.requests[-1].get("stream") and recorded.status == 200 and recorded.body:
                self._stream(recorded)
                return
            payload = json.dumps(recorded.body or error)
            try:
                self.send_response(recorded.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload.encode())))
                self.end_headers()
                self.wfile.write(payload.encode())
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _stream(self, recorded: Recorded) -> None:
            assert recorded.body is not None
            first_words = False
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for i, item in enumerate(stream_chunks(recorded.body, recorded.pieces)):
                    if i and recorded.chunk_delay:
                        time.sleep(recorded.chunk_delay)
                    self.wfile.write(f"data: {json.dumps(item, ensure_ascii=False)}\n\n".encode())
                    self.wfile.flush()
                    if item["choices"][0]["delta"].get("content") and not first_words:
                        first_words = True
                        state.first_content_at.append(time.perf_counter())
                    if recorded.stall_after is not None and i == recorded.stall_after:
                        time.sleep(recorded.stall)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                state.streamed += 1
            except (BrokenPipeError, ConnectionResetError):
                state.closed_early += 1  # the client stopped reading (a held sentence)
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
