"""One iteration's proposals from a concurrent agent, streamed and still deterministic.

An LLM agent answers slowly (seconds a request) but many at once. Waiting
for a whole round (every plan, then every implementation) leaves the models
idle behind the slowest answer, so here each request goes out as soon as
what it needs is known:

- every slot's plan request at once;
- a slot's K implement requests as soon as *its* plan is back;
- a duplicate's re-ask as soon as the duplicate is decided;
- an answer's schedule to the worker pool (``submit``) as soon as it
  arrives, if it was not seen before, so evaluation runs while requests
  are outstanding (the first answer with a new schedule becomes its child
  in any order, and results are kept by schedule key: nothing is decided
  by who came first).

Decisions are made by a cursor that walks the answers in a fixed order
(round, then slot), waiting for the one it needs; a child's fate (new,
duplicate, refused) depends only on the answers before it in that order,
never on arrival times. It is the round-by-round rule: in round ``r`` slot
``x`` is a duplicate iff its schedule was seen in an earlier iteration, or
is a new child of an earlier round, or of an earlier slot of round ``r``.
The search then numbers the events in this order, so the same seed and
cache give the same trace with 1 or 8 requests in flight.

Agents provide the requests through a *session* (``plan``, ``implement``,
``result``, ``close``): the LLM agent's ``requests()`` sends each request
from its own thread; `BatchRequests` turns the batch calls every agent has
(``plan_many``, ``implement_many``) into one, sending what is queued when
the cursor waits (a round at a time, as before).
"""
from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from .runs import schedule_key

__all__ = ["Slot", "Event", "Proposals", "BatchRequests", "PoolTasks", "session_of", "stream_proposals",
           "submit_task"]

#: an implement slot whose plan request gave no plan: nothing to ask
NO_PLAN = object()


@dataclass
class Slot:
    """One plan request of an iteration: beam entry ``bi``, plan index ``pi``."""

    bi: int
    pi: int
    parent: Any
    menu: list
    rng: Any


@dataclass
class Event:
    """What the search records, in order: a refused answer, or a new child.

    ``where`` names the request (for the run database key of a refusal)."""

    kind: str                 # "reject" or "child"
    parent: Any
    plan: Any = None
    where: tuple = ()
    stage: str = ""
    reason: str = ""
    steps: Any = None
    schedule: Any = None
    key: str = ""
    slot: int = -1            # the implement slot of a child (the proposals' order)
    candidate: Any = None     # the search's Candidate of a child, once numbered


@dataclass
class Proposals:
    events: list = field(default_factory=list)    # in the deterministic order
    children: list = field(default_factory=list)  # the "child" events, by slot
    exhausted_bi: set = field(default_factory=set)  # beam entries with no new child


def _chain(src: Future, dst: Future, before: Optional[Callable[[Any], None]] = None) -> None:
    """dst gets src's result (or exception) when src finishes, after
    ``before(result)`` (whose errors are ignored) has run."""
    def copy(f: Future) -> None:
        e = f.exception()
        if e is not None:
            dst.set_exception(e)
            return
        if before is not None:
            try:
                before(f.result())
            except Exception:  # noqa: BLE001 - a head start, never a failure
                pass
        dst.set_result(f.result())
    src.add_done_callback(copy)


class BatchRequests:
    """A session over an agent's batch calls: requests are queued and sent
    with one ``plan_many`` / ``implement_many`` when the cursor waits.

    Each Future gives ``(values, rejections)``: the agent's answer for that
    request and the refusals it logged for it (its ``rejections`` records
    with that ``request`` index)."""

    def __init__(self, agent: Any):
        self.agent = agent
        self.plans: list = []   # (future, (candidate, menu, 1, rng))
        self.impls: list = []
        self._seen = len(self._rejections())

    def _rejections(self) -> list:
        r = getattr(self.agent, "rejections", None)
        return r if isinstance(r, list) else []

    def plan(self, slot: int, candidate: Any, menu: list, rng: Any) -> Future:
        f: Future = Future()
        self.plans.append((f, (candidate, menu, 1, rng)))
        return f

    def implement(self, slot: int, candidate: Any, plan: Any, rng: Any) -> Future:
        f: Future = Future()
        self.impls.append((f, (candidate, plan, 1, rng)))
        return f

    def _send(self, queued: list, call: Callable) -> None:
        futs = [f for f, _r in queued]
        try:
            outs = call([r for _f, r in queued])
        except Exception as e:  # an agent bug is a lost round, not a lost search
            for f in futs:
                f.set_exception(e)
            return
        rej = self._rejections()
        new, self._seen = rej[self._seen:], len(rej)
        per: list[list] = [[] for _ in futs]
        for r in new:
            q = r.get("request")
            per[q if isinstance(q, int) and 0 <= q < len(futs) else 0].append(r)
        for n, f in enumerate(futs):
            f.set_result((outs[n] if n < len(outs) else [], per[n]))

    def flush(self) -> bool:
        """Send what is queued (plans first); False when nothing was."""
        if self.plans:
            queued, self.plans = self.plans, []
            self._send(queued, self.agent.plan_many)
            return True
        if self.impls:
            queued, self.impls = self.impls, []
            self._send(queued, self.agent.implement_many)
            return True
        return False

    def result(self, f: Future) -> Any:
        while not f.done():
            if not self.flush():
                raise RuntimeError("waiting for a request that was never queued")
        return f.result()

    def close(self) -> None:
        self.plans.clear()
        self.impls.clear()


def session_of(agent: Any, run_task: Optional[Callable] = None) -> Any:
    """The agent's own request session (``agent.requests(run_task)``), else
    `BatchRequests`. ``run_task``: a `PoolTasks` (None: the search has no
    worker processes)."""
    fn = getattr(agent, "requests", None)
    return fn(run_task) if callable(fn) else BatchRequests(agent)


class PoolTasks:
    """The search's worker pool as a session sees it: ``tasks(kind, schedule,
    **fields)`` runs a `workers.TASK_KINDS` task on a candidate (a Future of
    its result); ``free()`` says whether a worker is idle now (the agent then
    sends work there that it would otherwise do itself). ``evaluate`` is the
    search's own submission, counted the same way."""

    def __init__(self, pool: Any, task_of: Callable[[Any], dict]):
        self.pool, self.task_of = pool, task_of
        self.workers = max(1, int(getattr(pool, "workers", 1) or 1))
        self._out = 0
        self._lock = threading.Lock()

    def _run(self, task: dict) -> Future:
        with self._lock:
            self._out += 1
        f = submit_task(self.pool, task)

        def done(_f: Future) -> None:
            with self._lock:
                self._out -= 1
        f.add_done_callback(done)
        return f

    def __call__(self, kind: str, schedule: Any, **fields) -> Future:
        return self._run({**self.task_of(schedule), **fields, "kind": kind})

    def evaluate(self, schedule: Any) -> Future:
        return self._run(self.task_of(schedule))

    def free(self) -> bool:
        with self._lock:
            return self._out < self.workers


def submit_task(pool: Any, task: dict) -> Future:
    """Start a task in ``pool`` (its ``submit``; else one thread calling ``run``)."""
    if callable(getattr(pool, "submit", None)):
        return pool.submit(task)
    f: Future = Future()

    def go():
        try:
            f.set_result(pool.run([task])[0])
        except Exception as e:  # noqa: BLE001
            f.set_exception(e)

    threading.Thread(target=go, name="autocomp-eval", daemon=True).start()
    return f


def stream_proposals(session: Any, slots: Sequence[Slot], impls: int, seen: set, *,
                     impl_rng: Callable[[int, int, int, int], Any], room: int,
                     submit: Optional[Callable[[str, Any], None]] = None, rounds: int = 3) -> Proposals:
    """The iteration's events: every slot's plan, ``impls`` implementations a
    plan, up to ``rounds - 1`` re-asks of a duplicate (see the module doc).

    ``impl_rng(bi, pi, ki, round)`` is the rng of an implement request;
    ``submit(key, schedule)`` starts evaluating a schedule as its answer
    arrives (once per key; from the request threads; only for slots below
    ``room``, so a child past the sample budget is not started)."""
    K = max(0, int(impls))
    lock = threading.Lock()
    waiting: dict[tuple[int, int], Future] = {}

    def slot_future(r: int, x: int) -> Future:
        with lock:
            f = waiting.get((r, x))
            if f is None:
                f = waiting[(r, x)] = Future()
            return f

    started: set[str] = set()          # keys handed to ``submit``
    holders: dict[str, set] = {}         # key -> the (round, slot) answers that arrived with it
    asked: set[tuple[int, int]] = set()  # (round, slot) requests sent
    plan_of: dict[int, Any] = {}

    def ask(r: int, x: int) -> None:
        """Send request (r, x) once (the plan of its slot is known)."""
        with lock:
            if r >= rounds or (r, x) in asked:
                return
            asked.add((r, x))
        s = slots[x // K]
        try:
            inner = session.implement(r * len(slots) * K + x, s.parent, plan_of[x // K],
                                      impl_rng(s.bi, s.pi, x % K, r))
        except Exception as e:  # noqa: BLE001
            slot_future(r, x).set_exception(e)
            return
        _chain(inner, slot_future(r, x), lambda got: arrived(r, x, got))

    def arrived(r: int, x: int, got: Any) -> None:
        """An answer is in (before the cursor reaches it). Its schedule, if not
        seen before, is evaluated now: the first answer in order with a schedule
        becomes its child whatever the arrival order, and results are kept by
        schedule key. A re-ask goes out now when the answer is certainly a
        duplicate: its schedule was seen, or an answer before it in (round,
        slot) order has arrived with it (that one's own re-ask too, if it came
        later in the order)."""
        suffixes, _rej = got
        if not suffixes:
            return
        sched = slots[x // K].parent.schedule.extend(suffixes[0])
        key = schedule_key(sched)
        me = (r, x)
        with lock:
            others = holders.setdefault(key, set())
            dups = [h for h in others if h > me]
            if key in seen or any(h < me for h in others):
                dups.append(me)
            others.add(me)
            start = submit is not None and x < room and key not in seen and key not in started
            if start:
                started.add(key)
                submit(key, sched)
        for hr, hx in dups:
            ask(hr + 1, hx)


    def on_plan(q: int, f: Future) -> None:
        plan = None
        if f.exception() is None:
            plans, _rej = f.result()
            plan = plans[0] if plans else None
        plan_of[q] = plan
        for ki in range(K):
            if plan is None:
                slot_future(0, q * K + ki).set_result(NO_PLAN)
            else:
                ask(0, q * K + ki)

    plan_futs = [session.plan(q, s.parent, s.menu, s.rng) for q, s in enumerate(slots)]
    for q, f in enumerate(plan_futs):
        f.add_done_callback(lambda f, q=q: on_plan(q, f))

    out = Proposals()
    impl_events: list[Event] = []
    pending: set[str] = set()
    live = list(range(len(slots) * K))
    for r in range(rounds):
        nxt = []
        for x in live:
            s = slots[x // K]
            f = slot_future(r, x)
            try:
                got = session.result(f)
            except Exception as e:  # noqa: BLE001 - an agent bug is a lost request, not a lost search
                impl_events.append(Event("reject", s.parent, plan_of.get(x // K), (s.bi, s.pi, x % K, r),
                                         "agent", f"{type(e).__name__}: {e}"))
                continue
            if got is NO_PLAN:
                continue
            plan = plan_of.get(x // K)
            suffixes, rejs = got
            for n, rej in enumerate(rejs):
                impl_events.append(Event("reject", s.parent, plan, (s.bi, s.pi, x % K, r, n),
                                         str(rej.get("stage") or "agent"), str(rej.get("reason") or ""),
                                         rej.get("steps")))
            if not suffixes:
                continue
            try:
                sched = s.parent.schedule.extend(suffixes[0])
            except Exception as e:  # noqa: BLE001
                impl_events.append(Event("reject", s.parent, plan, (s.bi, s.pi, x % K, r), "schedule", str(e),
                                         suffixes[0]))
                continue
            key = schedule_key(sched)
            if key in seen or key in pending:
                if r + 1 < rounds:   # identical schedule: evaluated once; another sample (asked already
                    ask(r + 1, x)    # when the duplicate was certain on arrival)
                    nxt.append(x)
                continue
            pending.add(key)
            ev = Event("child", s.parent, plan, schedule=sched, key=key, slot=x)
            impl_events.append(ev)
            out.children.append(ev)
        live = nxt
    for q, (s, f) in enumerate(zip(slots, plan_futs)):   # the plan refusals, in slot order, come first
        try:
            _plans, rejs = session.result(f)
        except Exception as e:  # noqa: BLE001
            out.events.append(Event("reject", s.parent, None, (s.bi, s.pi, "plan"), "agent",
                                    f"{type(e).__name__}: {e}"))
            continue
        for n, rej in enumerate(rejs):
            out.events.append(Event("reject", s.parent, None, (s.bi, s.pi, "plan", n),
                                    str(rej.get("stage") or "agent"), str(rej.get("reason") or ""),
                                    rej.get("steps")))
    out.events.extend(impl_events)
    out.children.sort(key=lambda e: e.slot)
    have = {slots[e.slot // K].bi for e in out.children}
    out.exhausted_bi = {s.bi for s in slots} - have
    return out
