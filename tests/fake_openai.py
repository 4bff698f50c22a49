"""A loopback fake of an OpenAI-compatible chat endpoint, scripted per request (tests and benchmarks only).

Serves ``POST /v1/chat/completions`` (and ``GET /v1/models``) on 127.0.0.1 at a free port. A *responder*
receives the parsed request and returns a :class:`Reply`; the fake answers in the shape the request asked
for: ``tool_calls`` when the request has ``tools``, else ``message.content``. Replies can be HTTP errors
(with Retry-After), slow answers (to trigger client timeouts) or raw malformed text.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_DOC = re.compile(r'<doc id="(?P<id>[^"]+)" key="(?P<key>[^"]+)">\n(?P<text>.*?)\n</doc key="(?P=key)">', re.S)
MAX_REQUEST_BYTES = 20 * 1024 * 1024


@dataclass
class Reply:
    """What the fake sends back for one request."""

    content: str | None = None  # the answer; goes into content or tool-call arguments
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    error: str = "scripted failure"
    usage: tuple[int, int] | None = None  # (prompt, completion); computed when None


def answer(signals: list[dict[str, Any]] | dict[str, Any] | str, **kw: Any) -> Reply:
    if isinstance(signals, str):
        return Reply(content=signals, **kw)
    body = signals if isinstance(signals, dict) else {"signals": signals}
    return Reply(content=json.dumps(body), **kw)


def error(status: int, retry_after: float | None = None, **kw: Any) -> Reply:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Reply(status=status, headers=headers, **kw)


def pieces(request: dict[str, Any]) -> dict[str, str]:
    """The documents a request carries, id -> text (parsed from the last user message with documents)."""
    for m in reversed(request.get("messages", [])):
        if m.get("role") == "user" and isinstance(m.get("content"), str) and "<doc id=" in m["content"]:
            return {d.group("id"): d.group("text") for d in _DOC.finditer(m["content"])}
    return {}


def count_prompt_tokens(request: dict[str, Any]) -> int:
    """Roughly what OpenAI bills: message texts, 4 tokens per message, plus the schema or tools."""
    from extractors.tokens import count_tokens

    n = sum(count_tokens(str(m.get("content") or "")) + 4 for m in request.get("messages", []))
    extra = request.get("response_format") or request.get("tools")
    if extra and (request.get("response_format") or {}).get("type") != "json_object":
        if isinstance(extra, dict) and "json_schema" in extra:
            extra = extra["json_schema"].get("schema")
        elif isinstance(extra, list):
            extra = [t.get("function", {}).get("parameters") for t in extra]
        n += count_tokens(json.dumps(extra, separators=(",", ":")))
    return n


class FakeOpenAI:
    """``with FakeOpenAI(responder) as fake: ChatOpenAI(base_url=fake.base_url, ...)``."""

    def __init__(self, responder: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.responder = responder or (lambda req: answer([]))
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BYTES:
                    self._send(413, {"error": {"message": "request too large"}})
                    return
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    req = json.loads(raw)
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "invalid JSON body"}})
                    return
                with fake.lock:
                    fake.requests.append(req)
                reply = fake.responder(req)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    self._send(reply.status, {"error": {"message": reply.error, "type": "fake"}}, reply.headers)
                    return
                content = reply.content or ""
                message: dict[str, Any] = {"role": "assistant", "content": content}
                finish = "stop"
                if req.get("tools"):
                    name = req["tools"][0]["function"]["name"]
                    message = {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": name, "arguments": content}}]}
                    finish = "tool_calls"
                if reply.usage is not None:
                    prompt, completion = reply.usage
                else:
                    from extractors.tokens import count_tokens

                    prompt, completion = count_prompt_tokens(req), count_tokens(content)
                self._send(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": req.get("model", "fake-model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion},
                }, reply.headers)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def chat_model(fake: FakeOpenAI, *, timeout: float = 5.0, model: str = "gpt-4o-mini") -> Any:
    """A real ChatOpenAI pointed at the fake (client retries off: the extractor retries per chunk)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=fake.base_url, api_key="test-key", model=model, timeout=timeout, max_retries=0)


def finder(table: list[tuple[str, str]], confidence: float = 0.8) -> Callable[[dict[str, Any]], Reply]:
    """A responder that reports (type, quote) for every piece whose text contains the quote."""

    def respond(req: dict[str, Any]) -> Reply:
        out = [{"piece": pid, "type": t, "quote": q, "confidence": confidence}
               for pid, text in pieces(req).items() for t, q in table if q in text]
        return answer(out)

    return respond
