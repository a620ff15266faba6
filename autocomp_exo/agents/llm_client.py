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

Rate limits and outages: timeouts, connection errors, 408/409/429 and 5xx
are retried with jittered exponential backoff (``backoff`` doubling up to
``backoff_max``, each delay drawn in [50%, 100%] of it); a ``Retry-After``
header and the ``x-ratelimit-reset-requests`` / ``-tokens`` headers are
honoured (up to ``outage``). A call keeps retrying until it succeeds, uses
``attempts`` (None: no count limit) or its model has failed continuously for
``outage`` seconds; then the model is *suspended* for ``cooldown`` seconds
and comes back (a request waiting for a model waits for it). Only 401/403/404
(a wrong key or model name does not heal), or ``max_suspensions`` outages in
a row, drop a model for the rest of the run. `LLMClient.alive` says which
models can be asked now.

Throughput: at most ``max_in_flight`` requests per model at once (a
`llm_gate.Gate`: waiting requests go by priority, then arrival; the agent
sends many at a time) and, when given,
``tokens_per_minute`` per model (prompt estimate plus completion budget over
a sliding minute). Budgets: ``max_calls`` HTTP requests and ``max_cost``
dollars (needs prices) over the run; past either, no request is sent.

Reasoning models (``o1``, ``o3``, ``o4``, ``gpt-5`` names, or a server that
refuses ``max_tokens``) get ``max_completion_tokens`` (``reasoning_tokens``,
default 16384) and no temperature; an answer cut by the token limit
(``finish_reason == "length"``) with nothing usable is retried with twice the
limit (up to 4x), see `LLMClient.complete` ``grow``.
"""
from __future__ import annotations

import os
import random
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from .accounting import Accounting
from .llm_gate import Gate
from .llm_cache import ResponseCache, cache_key

__all__ = ["ModelSpec", "Reply", "LLMClient", "LLMConfigError", "LOCAL_KEY_ENV", "is_reasoning_model"]

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


_REASONING = re.compile(r"(^|[/:])(o1|o3|o4|gpt-5)([-.:_]|$)", re.I)


def is_reasoning_model(model: str) -> bool:
    """OpenAI's reasoning models (o1, o3, o4-mini, gpt-5...): max_completion_tokens, no temperature."""
    return bool(_REASONING.search(model or ""))


@dataclass
class _State:
    spec: ModelSpec
    client: object
    max_in_flight: int = 8
    fails_in_row: int = 0
    fail_since: Optional[float] = None   # monotonic time of the first failure of the current streak
    dropped: bool = False                # for good (401/403/404, or outages in a row)
    suspended_until: float = 0.0         # an outage: not asked until then
    probation: bool = False              # back from a suspension: one failure suspends again
    suspensions: int = 0                 # outages in a row
    reason: str = ""
    calls: int = 0
    in_flight: int = 0
    max_seen_in_flight: int = 0
    reasoning: bool = False
    # request parameters a server refused (reasoning models want max_completion_tokens, no temperature)
    token_param: str = "max_tokens"
    omit: set = field(default_factory=set)
    sem: Gate = None  # type: ignore[assignment]
    window: deque = field(default_factory=deque)   # (time, tokens) of the last minute

    def __post_init__(self):
        self.sem = Gate(self.max_in_flight)
        if self.reasoning:
            self.token_param = "max_completion_tokens"
            self.omit |= {"temperature", "top_p"}


def _default_warn(msg: str) -> None:
    print(f"autocomp-exo: warning: {msg}", file=sys.stderr, flush=True)


class LLMClient:
    """An ensemble of chat endpoints with retries, outages, limits, a response cache and accounting."""

    def __init__(self, models: Sequence[str | ModelSpec], *, timeout: float = 120.0,
                 attempts: Optional[int] = None, backoff: float = 1.0, backoff_max: float = 120.0,
                 outage: float = 600.0, cooldown: float = 300.0, max_suspensions: int = 3,
                 max_in_flight: int = 8, tokens_per_minute: Optional[int] = None,
                 max_calls: Optional[int] = None, max_cost: Optional[float] = None,
                 reasoning_tokens: int = 16384, reasoning: Optional[bool] = None,
                 cache: Optional[ResponseCache] = None, accounting: Optional[Accounting] = None,
                 warn: Optional[Callable[[str], None]] = None, sleep: Callable[[float], None] = time.sleep,
                 send_seed: bool = True, jitter_seed: Optional[int] = None):
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
        self.attempts = None if attempts is None else max(1, int(attempts))
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.outage = float(outage)
        self.cooldown = float(cooldown)
        self.max_suspensions = max(1, int(max_suspensions))
        self.tokens_per_minute = tokens_per_minute
        self.max_calls = max_calls
        self.max_cost = max_cost
        self.reasoning_tokens = int(reasoning_tokens)
        self.cache = cache
        self.accounting = accounting or Accounting()
        self.warn = warn or _default_warn
        self.sleep = sleep
        self.send_seed = send_seed
        self._jitter = random.Random(jitter_seed)   # backoff jitter only: never the search's rng
        self._lock = threading.Lock()
        self.requests_sent = 0
        self.budget_reason: Optional[str] = None
        self.states: list[_State] = []
        for s in specs:
            key = os.environ.get(s.key_env)
            if s.base_url is None and not key:
                raise LLMConfigError(f"model {s.name!r} needs an API key in {s.key_env} "
                                     f"(or name a local server: http://host:port/v1::model-name)")
            client = openai.OpenAI(api_key=key or "none", base_url=s.base_url, timeout=self.timeout,
                                   max_retries=0)
            r = is_reasoning_model(s.model) if reasoning is None else bool(reasoning)
            self.states.append(_State(s, client, max_in_flight=max_in_flight, reasoning=r))

    # -- state --------------------------------------------------------------
    @property
    def specs(self) -> list[ModelSpec]:
        return [st.spec for st in self.states]

    def _usable(self, st: _State, now: Optional[float] = None) -> bool:
        if st.dropped or self.budget_reason:
            return False
        now = time.monotonic() if now is None else now
        if st.suspended_until and now < st.suspended_until:
            return False
        if st.suspended_until and now >= st.suspended_until:
            with self._lock:
                if st.suspended_until and now >= st.suspended_until:
                    st.suspended_until = 0.0
                    st.probation = True
                    self.warn(f"model {st.spec.name} is back after its cool-down")
        return True

    @property
    def alive(self) -> list[int]:
        """Models that can be asked now (not dropped, not suspended, budget left)."""
        now = time.monotonic()
        return [i for i, st in enumerate(self.states) if self._usable(st, now)]

    def next_return(self) -> Optional[float]:
        """Seconds until the first suspended model comes back (None: none will)."""
        if self.budget_reason:
            return None
        now = time.monotonic()
        waits = [st.suspended_until - now for st in self.states if not st.dropped and st.suspended_until]
        return max(0.0, min(waits)) if waits else None

    def dropped(self) -> dict[str, str]:
        return {st.spec.name: st.reason for st in self.states if st.dropped}

    def in_flight_peak(self) -> dict[str, int]:
        return {st.spec.name: st.max_seen_in_flight for st in self.states}

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

    def _suspend(self, i: int, reason: str) -> None:
        st = self.states[i]
        with self._lock:
            if st.dropped or (st.suspended_until and time.monotonic() < st.suspended_until):
                return
            st.suspensions += 1
            n = st.suspensions
            if n < self.max_suspensions:
                st.suspended_until = time.monotonic() + self.cooldown
                st.fail_since = None
                st.probation = False
        if n >= self.max_suspensions:
            self._drop(i, f"{n} outages in a row ({reason})")
        else:
            self.warn(f"model {st.spec.name} is failing ({reason}); not asked for {self.cooldown:g} s "
                      f"(outage {n} of at most {self.max_suspensions - 1})")

    # -- limits ---------------------------------------------------------------
    def _budget_left(self) -> bool:
        if self.budget_reason:
            return False
        why = None
        if self.max_calls is not None and self.requests_sent >= self.max_calls:
            why = f"the budget of {self.max_calls} LLM requests is used up"
        elif self.max_cost is not None:
            cost = self.accounting.totals()["total"]["cost_usd"]
            if cost is not None and cost >= self.max_cost:
                why = f"the budget of ${self.max_cost:g} is used up (${cost:.4f} spent, estimated)"
        if why:
            with self._lock:
                if not self.budget_reason:
                    self.budget_reason = why
                    self.warn(why + "; no more LLM requests are sent")
            return False
        return True

    def _throttle(self, st: _State, tokens: int) -> None:
        """Wait until the model's tokens of the last minute leave room for ``tokens``."""
        tpm = self.tokens_per_minute
        if not tpm:
            return
        tokens = min(int(tokens), int(tpm))
        while True:
            with self._lock:
                now = time.monotonic()
                while st.window and now - st.window[0][0] >= 60.0:
                    st.window.popleft()
                used = sum(t for _, t in st.window)
                if used + tokens <= tpm or not st.window:
                    st.window.append((now, tokens))
                    return
                wait = 60.0 - (now - st.window[0][0])
            time.sleep(min(max(wait, 0.01), 1.0))

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Jittered exponential backoff for the ``attempt``-th retry (0-based), at
        least ``retry_after`` (a server's Retry-After or reset header)."""
        base = min(self.backoff_max, self.backoff * (2 ** min(attempt, 30)))
        d = base * (0.5 + 0.5 * self._jitter.random())
        if retry_after is not None:
            d = max(d, min(float(retry_after), self.outage))
        return d

    # -- one completion -------------------------------------------------------
    def settings(self, temperature: float, max_tokens: int, top_p: Optional[float],
                 st: Optional[_State] = None, scale: int = 1) -> dict:
        if st is not None and st.reasoning:
            return {"max_completion_tokens": max(int(max_tokens), self.reasoning_tokens) * int(scale)}
        s = {"temperature": temperature, "max_tokens": int(max_tokens) * int(scale)}
        if top_p is not None:
            s["top_p"] = top_p
        return s

    def complete(self, i: int, messages: list[dict], *, phase: str, sample: int, temperature: float = 0.7,
                 max_tokens: int = 2048, top_p: Optional[float] = None, scale: int = 1,
                 priority: int = 1) -> Optional[Reply]:
        """One sample from model ``i`` (None when the call failed or the model cannot be asked).

        ``scale`` multiplies the completion-token limit (a truncated answer is asked again larger);
        ``priority``: among requests waiting for one of the model's slots, lower goes first
        (`llm_gate.Gate`; the agent gives plans 0)."""
        st = self.states[i]
        if not self._usable(st):
            return None
        settings = self.settings(temperature, max_tokens, top_p, st, scale)
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
        est = sum(_estimate_tokens(str(m.get("content", ""))) for m in messages) + \
            int(settings.get("max_tokens") or settings.get("max_completion_tokens") or 0)
        attempt = 0
        while True:
            if not self._usable(st) or not self._budget_left():
                return None
            self._throttle(st, est)
            t0 = time.perf_counter()
            try:
                with st.sem.hold(priority):
                    with self._lock:
                        st.in_flight += 1
                        st.max_seen_in_flight = max(st.max_seen_in_flight, st.in_flight)
                        self.requests_sent += 1
                    try:
                        r = self._request(st, messages, settings, sample)
                    finally:
                        with self._lock:
                            st.in_flight -= 1
            except _Retryable as e:
                dt = time.perf_counter() - t0
                self.accounting.record(st.spec.name, phase, latency=dt, ok=False, error=e.message,
                                       extra={"sample": sample, "attempt": attempt})
                if e.adapted:     # the request changed (a parameter the server refused): no backoff
                    continue
                now = time.monotonic()
                with self._lock:
                    if st.fail_since is None:
                        st.fail_since = now
                    streak = now - st.fail_since
                    probation = st.probation
                attempt += 1
                if probation:
                    self._suspend(i, f"still failing after the cool-down: {e.message}")
                    return None
                if streak >= self.outage:
                    self._suspend(i, f"failing for {streak:.0f} s, last: {e.message}")
                    return None
                if self.attempts is not None and attempt >= self.attempts:
                    self._failed(i, f"{self.attempts} attempt(s) failed, last: {e.message}")
                    return None
                self.sleep(self.delay(attempt - 1, e.retry_after))
                continue
            except _Fatal as e:
                dt = time.perf_counter() - t0
                self.accounting.record(st.spec.name, phase, latency=dt, ok=False, error=e.message,
                                       extra={"sample": sample, "attempt": attempt})
                if e.drop:
                    self._drop(i, e.message)
                else:
                    self.warn(f"model {st.spec.name}: request refused ({e.message})")
                return None
            dt = time.perf_counter() - t0
            r.latency, r.sample = dt, sample
            self.accounting.record(st.spec.name, phase, tokens_in=r.tokens_in, tokens_out=r.tokens_out,
                                   latency=dt, estimated=r.estimated, extra={"sample": sample, "attempt": attempt})
            with self._lock:
                st.fails_in_row = 0
                st.fail_since = None
                st.probation = False
                st.suspensions = 0
                st.calls += 1
            if self.cache is not None and key is not None:
                self.cache.put(key, r.to_dict(), {"model": st.spec.name, "phase": phase, "sample": sample})
            return r

    def _failed(self, i: int, message: str) -> None:
        """A call whose attempts are used up (the model is not dropped: an outage suspends it)."""
        st = self.states[i]
        with self._lock:
            st.fails_in_row += 1
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
                raise _Retryable(f"{msg} (request adapted)", 0.0, adapted=True) from e
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
    def __init__(self, message: str, retry_after: Optional[float] = None, adapted: bool = False):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.adapted = adapted


class _Fatal(Exception):
    def __init__(self, message: str, drop: bool = False):
        super().__init__(message)
        self.message = message
        self.drop = drop


def _short(e: BaseException, n: int = 300) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def _duration(v: str) -> Optional[float]:
    """'1s', '6m0s', '20ms', '1h2m', '0.5' -> seconds."""
    v = str(v).strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    parts = _DURATION.findall(v)
    if not parts:
        return None
    mult = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * mult[u] for n, u in parts)


def _retry_after(e) -> Optional[float]:
    """Seconds the server asks us to wait: Retry-After, retry-after-ms, or the
    x-ratelimit-reset-requests/-tokens headers (the largest)."""
    try:
        h = e.response.headers
    except Exception:  # noqa: BLE001
        return None
    waits = []
    for name in ("retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        try:
            v = h.get(name)
        except Exception:  # noqa: BLE001
            v = None
        if v is not None:
            d = _duration(v)
            if d is not None:
                waits.append(d)
    try:
        ms = h.get("retry-after-ms")
        if ms is not None:
            waits.append(max(0.0, float(ms) / 1000.0))
    except Exception:  # noqa: BLE001
        pass
    return max(waits) if waits else None
