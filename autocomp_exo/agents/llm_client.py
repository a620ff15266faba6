"""Calling OpenAI-compatible chat endpoints: retries, backoff, dropping, cache, accounting.

Models are named like

- ``gpt-4o``: OpenAI's API (or whatever ``OPENAI_BASE_URL`` points at) with
  the key in ``OPENAI_API_KEY``;
- ``http://host:port/v1::model-name``: any OpenAI-compatible server (vLLM,
  Ollama, llama.cpp server, LM Studio). The key, if the server wants one, is
  read from ``AUTOCOMP_EXO_LLM_API_KEY`` (``OPENAI_API_KEY`` is never sent to
  a server named by URL).

Every request goes through the real ``openai`` client (its own retries
switched off: this module retries, so that it can count and drop).
Timeouts, connection errors, 408/409/429 and 5xx are retried with exponential
backoff (a ``Retry-After`` header is honoured up to ``backoff_max``). A call
whose attempts are all used up, or that gets another 4xx, fails; after
``drop_after`` failed calls in a row a model is dropped for the rest of the
run with a warning (401/403/404 drop it at once: a wrong key or model name
does not heal). `LLMClient.alive` says which models are left.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from .accounting import Accounting
from .llm_cache import ResponseCache, cache_key

__all__ = ["ModelSpec", "Reply", "LLMClient", "LLMConfigError", "LOCAL_KEY_ENV"]

LOCAL_KEY_ENV = "AUTOCOMP_EXO_LLM_API_KEY"


class LLMConfigError(ValueError):
    """A model that cannot be used as given (bad name, missing key)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str                 # what the user wrote; used in logs and accounting
    model: str                # the model name sent to the server
    base_url: Optional[str]   # None: OpenAI's client default (OPENAI_BASE_URL or api.openai.com)
    key_env: str              # environment variable holding the key

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        if not isinstance(text, str) or not text.strip():
            raise LLMConfigError(f"a model is a non-empty string, got {text!r}")
        text = text.strip()
        if "::" in text:
            url, _, model = text.partition("::")
            if not url.startswith(("http://", "https://")) or not model:
                raise LLMConfigError(f"expected http(s)://host:port/v1::model-name, got {text!r}")
            return cls(text, model, url.rstrip("/"), LOCAL_KEY_ENV)
        if text.startswith(("http://", "https://")):
            raise LLMConfigError(f"name the model after the URL: {text}::model-name")
        return cls(text, text, None, "OPENAI_API_KEY")

    def identity(self) -> str:
        """Endpoint and model (the cache key part; never the key)."""
        base = self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        return f"{base.rstrip('/')}::{self.model}"


@dataclass
class Reply:
    text: str
    model: str                # ModelSpec.name
    tokens_in: int = 0
    tokens_out: int = 0
    estimated: bool = False   # no usage fields: tokens estimated from the text
    latency: float = 0.0
    cached: bool = False
    finish_reason: Optional[str] = None
    sample: int = 0

    def to_dict(self) -> dict:
        return {"text": self.text, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "estimated": self.estimated, "finish_reason": self.finish_reason}


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


@dataclass
class _State:
    spec: ModelSpec
    client: object
    fails_in_row: int = 0
    dropped: bool = False
    reason: str = ""
    calls: int = 0
    # request parameters a server refused (reasoning models want max_completion_tokens, no temperature)
    token_param: str = "max_tokens"
    omit: set = field(default_factory=set)


def _default_warn(msg: str) -> None:
    print(f"autocomp-exo: warning: {msg}", file=sys.stderr, flush=True)


class LLMClient:
    """An ensemble of chat endpoints with retries, dropping, a response cache and accounting."""

    def __init__(self, models: Sequence[str | ModelSpec], *, timeout: float = 120.0, attempts: int = 4,
                 backoff: float = 1.0, backoff_max: float = 30.0, drop_after: int = 2,
                 cache: Optional[ResponseCache] = None, accounting: Optional[Accounting] = None,
                 warn: Optional[Callable[[str], None]] = None, sleep: Callable[[float], None] = time.sleep,
                 send_seed: bool = True):
        import openai

        if isinstance(models, (str, ModelSpec)):
            models = [models]
        specs = [m if isinstance(m, ModelSpec) else ModelSpec.parse(m) for m in models]
        if not specs:
            raise LLMConfigError("no model given")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise LLMConfigError(f"a model is named twice: {names}")
        self.timeout = float(timeout)
        self.attempts = max(1, int(attempts))
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.drop_after = max(1, int(drop_after))
        self.cache = cache
        self.accounting = accounting or Accounting()
        self.warn = warn or _default_warn
        self.sleep = sleep
        self.send_seed = send_seed
        self._lock = threading.Lock()
        self.states: list[_State] = []
        for s in specs:
            key = os.environ.get(s.key_env)
            if s.base_url is None and not key:
                raise LLMConfigError(f"model {s.name!r} needs an API key in {s.key_env} "
                                     f"(or name a local server: http://host:port/v1::model-name)")
            client = openai.OpenAI(api_key=key or "none", base_url=s.base_url, timeout=self.timeout,
                                   max_retries=0)
            self.states.append(_State(s, client))

    # -- state --------------------------------------------------------------
    @property
    def specs(self) -> list[ModelSpec]:
        return [st.spec for st in self.states]

    @property
    def alive(self) -> list[int]:
        return [i for i, st in enumerate(self.states) if not st.dropped]

    def dropped(self) -> dict[str, str]:
        return {st.spec.name: st.reason for st in self.states if st.dropped}

    def _drop(self, i: int, reason: str) -> None:
        st = self.states[i]
        with self._lock:
            if st.dropped:
                return
            st.dropped = True
            st.reason = reason
        left = [self.states[j].spec.name for j in self.alive]
        self.warn(f"dropping model {st.spec.name} for the rest of the run: {reason}; "
                  + (f"going on with {', '.join(left)}" if left else "no model is left"))

    # -- one completion -------------------------------------------------------
    def settings(self, temperature: float, max_tokens: int, top_p: Optional[float]) -> dict:
        s = {"temperature": temperature, "max_tokens": max_tokens}
        if top_p is not None:
            s["top_p"] = top_p
        return s

    def complete(self, i: int, messages: list[dict], *, phase: str, sample: int, temperature: float = 0.7,
                 max_tokens: int = 2048, top_p: Optional[float] = None) -> Optional[Reply]:
        """One sample from model ``i`` (None when the call failed or the model is dropped)."""
        st = self.states[i]
        if st.dropped:
            return None
        settings = self.settings(temperature, max_tokens, top_p)
        key = None
        if self.cache is not None:
            key = cache_key(st.spec.identity(), messages, settings, sample)
            hit = self.cache.get(key)
            if hit is not None:
                r = Reply(str(hit.get("text") or ""), st.spec.name, int(hit.get("tokens_in") or 0),
                          int(hit.get("tokens_out") or 0), bool(hit.get("estimated")), 0.0, True,
                          hit.get("finish_reason"), sample)
                self.accounting.record(st.spec.name, phase, tokens_in=r.tokens_in, tokens_out=r.tokens_out,
                                       cached=True, extra={"sample": sample})
                return r
        last_err = ""
        for attempt in range(self.attempts):
            t0 = time.perf_counter()
            try:
                r = self._request(st, messages, settings, sample)
            except _Retryable as e:
                dt = time.perf_counter() - t0
                last_err = e.message
                self.accounting.record(st.spec.name, phase, latency=dt, ok=False, error=e.message,
                                       extra={"sample": sample, "attempt": attempt})
                if attempt + 1 < self.attempts:
                    delay = min(self.backoff_max, self.backoff * (2 ** attempt))
                    if e.retry_after is not None:
                        delay = min(self.backoff_max, max(delay, e.retry_after))
                    self.sleep(delay)
                continue
            except _Fatal as e:
                dt = time.perf_counter() - t0
                self.accounting.record(st.spec.name, phase, latency=dt, ok=False, error=e.message,
                                       extra={"sample": sample, "attempt": attempt})
                if e.drop:
                    self._drop(i, e.message)
                else:
                    self._failed(i, e.message)
                return None
            dt = time.perf_counter() - t0
            r.latency, r.sample = dt, sample
            self.accounting.record(st.spec.name, phase, tokens_in=r.tokens_in, tokens_out=r.tokens_out,
                                   latency=dt, estimated=r.estimated, extra={"sample": sample, "attempt": attempt})
            with self._lock:
                st.fails_in_row = 0
                st.calls += 1
            if self.cache is not None and key is not None:
                self.cache.put(key, r.to_dict(), {"model": st.spec.name, "phase": phase, "sample": sample})
            return r
        self._failed(i, f"{self.attempts} attempt(s) failed, last: {last_err}")
        return None

    def _failed(self, i: int, message: str) -> None:
        st = self.states[i]
        with self._lock:
            st.fails_in_row += 1
            n = st.fails_in_row
        if n >= self.drop_after:
            self._drop(i, f"{n} failed call(s) in a row ({message})")
        else:
            self.warn(f"model {st.spec.name}: call failed ({message})")

    def _request(self, st: _State, messages: list[dict], settings: dict, sample: int) -> Reply:
        import openai

        kw = dict(model=st.spec.model, messages=messages, **settings)
        if self.send_seed:
            kw["seed"] = int(sample)
        if st.token_param != "max_tokens" and "max_tokens" in kw:
            kw[st.token_param] = kw.pop("max_tokens")
        for k in st.omit:
            kw.pop(k, None)
        try:
            resp = st.client.chat.completions.create(**kw)
        except openai.APITimeoutError as e:
            raise _Retryable(f"timeout after {self.timeout:g} s") from e
        except openai.APIConnectionError as e:
            raise _Retryable(f"connection error: {e}") from e
        except openai.APIStatusError as e:
            code = e.status_code
            msg = f"HTTP {code}: {_short(e)}"
            if code in (408, 409, 429) or code >= 500:
                raise _Retryable(msg, _retry_after(e)) from e
            if code == 400 and self._adapt(st, str(e)):
                raise _Retryable(f"{msg} (request adapted)", 0.0) from e
            raise _Fatal(msg, drop=code in (401, 403, 404)) from e
        except openai.OpenAIError as e:  # malformed responses and the like
            raise _Retryable(f"{type(e).__name__}: {_short(e)}") from e
        except Exception as e:  # noqa: BLE001 - a broken server must not crash the search
            raise _Retryable(f"{type(e).__name__}: {_short(e)}") from e
        try:
            choice = resp.choices[0]
            text = choice.message.content or ""
            finish = getattr(choice, "finish_reason", None)
        except Exception as e:  # noqa: BLE001
            raise _Retryable(f"malformed response: {type(e).__name__}: {_short(e)}") from e
        if not isinstance(text, str):
            text = str(text)
        usage = getattr(resp, "usage", None)
        tin = getattr(usage, "prompt_tokens", None) if usage is not None else None
        tout = getattr(usage, "completion_tokens", None) if usage is not None else None
        estimated = not isinstance(tin, int) or not isinstance(tout, int)
        if estimated:
            tin = sum(_estimate_tokens(str(m.get("content", ""))) for m in messages)
            tout = _estimate_tokens(text)
        return Reply(text, st.spec.name, int(tin), int(tout), estimated, finish_reason=finish)


    @staticmethod
    def _adapt(st: _State, message: str) -> bool:
        """Adapt to a server that refuses a parameter (True if something changed)."""
        m = message.lower()
        with_ = "unsupported" in m or "not supported" in m or "unrecognized" in m or "unknown" in m
        if "max_tokens" in m and "max_completion_tokens" in m and st.token_param == "max_tokens":
            st.token_param = "max_completion_tokens"
            return True
        for param in ("temperature", "top_p", "seed"):
            if with_ and f"'{param}'" in m or (with_ and f'"{param}"' in m):
                if param not in st.omit:
                    st.omit.add(param)
                    return True
        return False


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: Optional[float] = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class _Fatal(Exception):
    def __init__(self, message: str, drop: bool = False):
        super().__init__(message)
        self.message = message
        self.drop = drop


def _short(e: BaseException, n: int = 300) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def _retry_after(e) -> Optional[float]:
    try:
        v = e.response.headers.get("retry-after")
        return max(0.0, float(v)) if v is not None else None
    except Exception:  # noqa: BLE001
        return None
