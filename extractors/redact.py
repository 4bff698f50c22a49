"""The one place secrets are taken out of text that leaves the process: logs, error messages, stored run stats.

Upstream error bodies (an LLM endpoint that echoes the request), database errors and URLs can carry an API
key, a bearer token, the configured LLM key, a webhook secret or ``user:password@`` credentials. Every sink
calls :func:`redact` (or :func:`redact_any` for JSON-like data); :func:`install_log_redaction` makes every
log record pass through it. Secrets the process knows (the configured LLM key) are registered with
:func:`register_secret` and replaced wherever they appear. Only the standard library is imported.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"\bht_[0-9a-f]{8}_[A-Za-z0-9_-]{16,}"), f"ht_{MASK}"),  # our API keys
    (re.compile(r"\bsk-[A-Za-z0-9_-]{12,}"), f"sk-{MASK}"),  # OpenAI-style keys
    (re.compile(r"(?i)\b((?:api[_-]?key|apikey|secret|password|passwd|access[_-]?token|x-api-key)"
                r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]{4,}"), rf"\1{MASK}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@"), rf"\1{MASK}@"),  # URL credentials
    (re.compile(r"(hooks\.slack\.com/services/)[^\s\"'<>]+"), rf"\1{MASK}"),
]
_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret the process holds (e.g. ``HEALTHTRACE_LLM_API_KEY``) so it is masked verbatim."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret and every credential-looking token replaced by ``***``."""
    if not text:
        return text
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_any(value: object) -> object:
    """:func:`redact` through dicts, lists and tuples (run stats, reports)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_any(v) for v in value)
    return value


_installed = False


def install_log_redaction() -> None:
    """Every log record, from any logger and to any handler, is redacted when it is created (message and the
    formatted traceback), so no handler configuration can bypass it."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    base = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string stays the logging module's problem
            return record
        if redact(message) != message:
            # redact the parts, keeping the record's shape: formatters such as uvicorn's access log read
            # ``record.args`` as a tuple of fields
            if isinstance(record.msg, str):
                record.msg = redact(record.msg)
            if isinstance(record.args, tuple):
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
            elif isinstance(record.args, dict):
                record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
            if redact(record.getMessage()) != record.getMessage():  # a secret split across parts: flatten
                record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
