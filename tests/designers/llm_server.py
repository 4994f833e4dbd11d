"""A real HTTP server on 127.0.0.1 that answers LLM API calls from a script.

It speaks ``POST /v1/chat/completions`` (OpenAI: JSON, or server-sent ``chat.completion.chunk``
events ending with ``data: [DONE]``, usage in a last chunk) and ``POST /v1/messages``
(Anthropic: JSON, or ``message_start`` / ``content_block_*`` / ``message_delta`` (with usage) /
``message_stop`` events). Each request takes the next item of the script (`Reply`, `Failure`,
`Delay`, `SlowStream`) and is recorded (headers and raw body) so tests can check what was sent.
Started by uvicorn in a thread on port 0; the SDKs talk to it over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CHUNK_CHARS = 40


@dataclass(frozen=True)
class Reply:
    """A successful answer holding `text`."""

    text: str
    input_tokens: int = 1000
    output_tokens: int = 500
    model: str | None = None
    """The model the answer claims; None: the one requested."""
    finish_reason: str | None = None
    """None: ``stop`` (OpenAI) / ``end_turn`` (Anthropic)."""
    usage: bool = True
    """False: the answer carries no token counts."""


@dataclass(frozen=True)
class Failure:
    """An HTTP error answer."""

    status: int
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    """Wait `seconds` (or until the client hangs up) before sending `then`."""

    seconds: float
    then: Reply


@dataclass(frozen=True)
class SlowStream:
    """Stream `reply` in chunks with `chunk_delay` seconds between them (stream requests)."""

    reply: Reply
    chunk_delay: float


Scripted = Reply | Failure | Delay | SlowStream


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedLLMServer:
    """The server; use `running_server()` to start and stop it."""

    def __init__(self) -> None:
        self.script: deque[Scripted] = deque()
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
            ]
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def base_url(self, provider: str) -> str:
        """The base URL an SDK of `provider` is given."""
        return self.openai_base_url if provider == "openai" else self.url

    def enqueue(self, *items: Scripted) -> None:
        with self.lock:
            self.script.extend(items)

    def reset(self) -> None:
        with self.lock:
            self.script.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        with self.lock:
            return len(self.script)

    async def next_item(self, request: Request) -> tuple[Scripted | None, dict[str, Any]]:
        """Record the request; the next scripted item (None when the script is used up)."""
        body = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self.lock:
            self.requests.append(RecordedRequest(request.url.path, headers, body))
            item = self.script.popleft() if self.script else None
        return item, json.loads(body)

    # --- OpenAI ---------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        item, payload = await self.next_item(request)
        model = payload["model"]
        if item is None:
            return _exhausted()
        if isinstance(item, Failure):
            return _openai_failure(item)
        if isinstance(item, Delay):
            if not await _wait(request, item.seconds):
                return Response(status_code=499)
            item = item.then
        if payload.get("stream"):
            reply, delay = (
                (item.reply, item.chunk_delay)
                if isinstance(item, SlowStream)
                else (
                    item,
                    0.0,
                )
            )
            return _sse(_openai_events(reply, model, delay))
        assert isinstance(item, Reply)
        return JSONResponse(_openai_body(item, model))

    # --- Anthropic ------------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        item, payload = await self.next_item(request)
        model = payload["model"]
        if item is None:
            return _exhausted()
        if isinstance(item, Failure):
            return _anthropic_failure(item)
        if isinstance(item, Delay):
            if not await _wait(request, item.seconds):
                return Response(status_code=499)
            item = item.then
        if payload.get("stream"):
            reply, delay = (
                (item.reply, item.chunk_delay)
                if isinstance(item, SlowStream)
                else (
                    item,
                    0.0,
                )
            )
            return _sse(_anthropic_events(reply, model, delay))
        assert isinstance(item, Reply)
        return JSONResponse(_anthropic_body(item, model))


def _exhausted() -> Response:
    return JSONResponse(
        {"error": {"type": "invalid_request_error", "message": "test script exhausted"}},
        status_code=400,
        headers={"x-should-retry": "false"},
    )


async def _wait(request: Request, seconds: float) -> bool:
    """Sleep `seconds`; False as soon as the client hangs up."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await request.is_disconnected():
            return False
        await asyncio.sleep(0.02)
    return True


def _sse(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream")


def _chunks(text: str) -> list[str]:
    return [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]


def _openai_failure(item: Failure) -> Response:
    kind = "rate_limit_error" if item.status == 429 else "server_error"
    return JSONResponse(
        {"error": {"message": item.message, "type": kind, "code": None}},
        status_code=item.status,
        headers=item.headers,
    )


def _openai_usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _openai_body(reply: Reply, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": reply.model or model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish_reason or "stop",
            }
        ],
    }
    if reply.usage:
        body["usage"] = _openai_usage(reply)
    return body


async def _openai_events(reply: Reply, model: str, delay: float) -> AsyncIterator[str]:
    base = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": reply.model or model,
    }

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        return f"data: {json.dumps({**base, 'choices': choices, **extra})}\n\n"

    yield event(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    for piece in _chunks(reply.text):
        if delay:
            await asyncio.sleep(delay)
        yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason or "stop"}])
    if reply.usage:
        yield event([], usage=_openai_usage(reply))
    yield "data: [DONE]\n\n"


def _anthropic_failure(item: Failure) -> Response:
    kind = "rate_limit_error" if item.status == 429 else "api_error"
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": item.message}},
        status_code=item.status,
        headers=item.headers,
    )


def _anthropic_body(reply: Reply, model: str) -> dict[str, Any]:
    usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": reply.model or model,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": reply.finish_reason or "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


async def _anthropic_events(reply: Reply, model: str, delay: float) -> AsyncIterator[str]:
    def event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

    message: dict[str, Any] = {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": reply.model or model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
    }
    yield event("message_start", {"message": message})
    yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    for piece in _chunks(reply.text):
        if delay:
            await asyncio.sleep(delay)
        delta = {"type": "text_delta", "text": piece}
        yield event("content_block_delta", {"index": 0, "delta": delta})
    yield event("content_block_stop", {"index": 0})
    stop = {"stop_reason": reply.finish_reason or "end_turn", "stop_sequence": None}
    yield event("message_delta", {"delta": stop, "usage": {"output_tokens": reply.output_tokens}})
    yield event("message_stop", {})


@contextmanager
def running_server() -> Iterator[ScriptedLLMServer]:
    """A started `ScriptedLLMServer` on 127.0.0.1 (a free port), stopped on exit."""
    server = ScriptedLLMServer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server.port = sock.getsockname()[1]
    config = uvicorn.Config(
        server.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the scripted LLM server did not start within 10 s")
        time.sleep(0.01)
    try:
        yield server
    finally:
        runner.should_exit = True
        thread.join(timeout=10)
        sock.close()
