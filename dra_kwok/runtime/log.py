"""Kubernetes structured logging (klog's text and JSON formats) on top of the standard `logging` module.

Why: operators grep dra-kwok's logs beside kube-scheduler's and Karpenter's, so messages follow the Kubernetes
structured-logging conventions: a fixed, capitalised, past-tense message with no trailing period, and the variable
parts as key=value pairs (`log.info("Created ResourceSlice", slice=name, node=node)`), with `-v` verbosity levels.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

_verbosity = 0


class Logger:
    """A thin structured wrapper: `info(msg, **kv)`, `error(msg, err=..., **kv)`, `v(2).info(...)`."""

    def __init__(self, name: str, level: int = 0) -> None:
        self._log = logging.getLogger(name)
        self._level = level

    def v(self, level: int) -> "Logger":
        return Logger(self._log.name, level)

    def enabled(self) -> bool:
        return self._level <= _verbosity

    def info(self, msg: str, **kv: Any) -> None:
        if self.enabled():
            self._log.info(msg, extra={"kv": kv, "v": self._level}, stacklevel=2)

    def warning(self, msg: str, **kv: Any) -> None:
        self._log.warning(msg, extra={"kv": kv, "v": 0}, stacklevel=2)

    def error(self, msg: str, err: BaseException | str | None = None, **kv: Any) -> None:
        if err is not None:
            kv = {"err": str(err), **kv}
        self._log.error(msg, extra={"kv": kv, "v": 0}, stacklevel=2)


def get_logger(name: str) -> Logger:
    return Logger(name)


def _fmt_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value) if (not value or any(c in value for c in ' "=\n\t')) else value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


class TextFormatter(logging.Formatter):
    """klog text: `I1126 15:04:05.123456   12345 file.py:42] "Message" key="value"`."""

    def format(self, record: logging.LogRecord) -> str:
        sev = record.levelname[0] if record.levelname[0] in "IWEF" else "I"
        t = time.localtime(record.created)
        ts = time.strftime("%m%d %H:%M:%S", t) + f".{int(record.msecs * 1000):06d}"
        kv = getattr(record, "kv", None) or {}
        if kv is None or not isinstance(kv, dict):
            kv = {}
        msg = record.getMessage()
        if record.exc_info and "err" not in kv:
            kv = {**kv, "err": self.formatException(record.exc_info).splitlines()[-1]}
        pairs = "".join(f" {k}={_fmt_value(v)}" for k, v in kv.items())
        return f"{sev}{ts} {os.getpid():7d} {record.filename}:{record.lineno}] {json.dumps(msg)}{pairs}"


class JSONFormatter(logging.Formatter):
    """klog JSON: `{"ts": <epoch seconds>, "caller": "file.py:42", "msg": "...", "v": 0, ...kv}`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "caller": f"{record.filename}:{record.lineno}",
            "msg": record.getMessage(),
        }
        if record.levelno >= logging.ERROR:
            out["level"] = "error"
        else:
            out["v"] = getattr(record, "v", 0)
        kv = getattr(record, "kv", None)
        if isinstance(kv, dict):
            out.update(kv)
        if record.exc_info and "err" not in out:
            out["err"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(out, default=str)


_lock = threading.Lock()


def setup(fmt: str = "text", verbosity: int = 0, stream=None) -> None:
    """Install the formatter on the root logger; third-party loggers stay at WARNING."""
    global _verbosity
    with _lock:
        _verbosity = verbosity
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        for noisy in ("urllib3", "kubernetes", "leaderelection"):
            logging.getLogger(noisy).setLevel(logging.WARNING if verbosity < 6 else logging.DEBUG)
