"""The search: menu dropout, beam acceptance, dedup, determinism, failing workers, resume, optimize."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from search_stubs import StubAgent, fake_eval, run_stub_search, stub_cycles  # noqa: E402

from autocomp_exo.agents.base import Candidate  # noqa: E402
from autocomp_exo.measurement import Measurement  # noqa: E402
from autocomp_exo.menu import KEYS, MENU, dropout  # noqa: E402
from autocomp_exo.schedule import Schedule  # noqa: E402
from autocomp_exo.search import (SearchSettings, accept, beam_search, derive_rng, next_beam,  # noqa: E402
                                 refill_beam, structure_key)
from autocomp_exo.workers import WorkerPool  # noqa: E402
from autocomp_exo.workloads import GemmWorkload  # noqa: E402


# --------------------------------------------------------------------------- menu

def test_menu_has_the_papers_options():
    assert len(MENU) == 17 and len(set(KEYS)) == 17
    assert all(o.description for o in MENU)
    assert "double_buffer" in KEYS and "other" in KEYS


@pytest.mark.parametrize("p", [0.0, 0.5, 0.7, 0.99, 1.0])
def test_dropout_never_empties_the_menu(p):
    rng = random.Random(1)
    sizes = [len(dropout(MENU, p, rng)) for _ in range(2000)]
    assert min(sizes) >= 1
    if p == 0.0:
        assert set(sizes) == {len(MENU)}
    if p == 1.0:
        assert set(sizes) == {1}
    if p == 0.7:
        mean = sum(sizes) / len(sizes)
        assert 4.0 < mean < 6.5  # ~0.3 * 17 kept, plus the never-empty rule
    # a one-option menu survives any dropout
    assert dropout(MENU[:1], 1.0, rng) == [MENU[0]]


def test_dropout_rejects_bad_arguments():
    with pytest.raises(ValueError):
        dropout([], 0.5, random.Random(0))
    with pytest.raises(ValueError):
        dropout(MENU, 1.5, random.Random(0))


# --------------------------------------------------------------------------- acceptance

def _cand(cid, cycles, ok=True, parent=None, steps=None):
    m = Measurement(ok=ok, cycles=cycles if ok else None, stage=None if ok else "mismatch")
    # a distinct structure per candidate unless steps are given
    steps = [{"op": "tile_loop", "args": ["i", cid + 1]}] if steps is None else steps
    return Candidate(cid, Schedule(steps), m, "", parent)


def test_accept_only_correct_and_faster_than_parent():
    parent = _cand(1, 1000)
    assert accept(_cand(2, 999, parent=1), parent)
    assert not accept(_cand(3, 1000, parent=1), parent)       # equal is not faster
    assert not accept(_cand(4, 1200, parent=1), parent)       # slower
    assert not accept(_cand(5, 10, ok=False, parent=1), parent)  # incorrect, however fast


def test_next_beam_is_best_b_of_beam_plus_accepted():
    beam = [_cand(1, 500), _cand(2, 800), _cand(3, 900)]
    acc = [_cand(4, 700), _cand(5, 850), _cand(6, 500)]
    nb = next_beam(beam, acc, 3)
    assert [c.id for c in nb] == [1, 6, 4]   # ties broken by id
    assert [c.id for c in next_beam(beam, [], 5)] == [1, 2, 3]


def test_the_beam_keeps_one_candidate_per_structure():
    """Candidates that differ only in unrolling are one structure: the beam
    keeps the fastest of them and fills up with other structures."""
    tiled = [{"op": "tile_loop", "args": ["i", 2]}]
    unrolled = tiled + [{"op": "unroll_calls", "args": ["compute", 2]}]
    deeper = tiled + [{"op": "unroll_calls", "args": ["compute", 3]}]
    hoisted = [{"op": "hoist_load", "args": ["B", 1]}]
    beam = [_cand(1, 500, steps=unrolled), _cand(2, 510, steps=deeper), _cand(3, 520, steps=tiled)]
    acc = [_cand(4, 900, steps=hoisted)]
    assert [c.id for c in next_beam(beam, acc, 3)] == [1, 4]
    assert structure_key(beam[0]) == structure_key(beam[2]) != structure_key(acc[0])
    assert [c.id for c in refill_beam(beam + acc, {1}, 3)] == [2, 4]


def test_search_beam_only_holds_accepted_children():
    r = run_stub_search(workers=0, budget=60, special=("bad",))
    by_id = {c.id: c for c in r.candidates}
    by_id[0] = r.baseline
    beam_ids = {i for _, ids in r.trace for i in ids}
    for i in beam_ids - {0}:
        c = by_id[i]
        p = by_id[c.parent]
        assert c.ok and c.cycles < p.cycles, (c.id, c.cycles, p.cycles)
    # some children were slower or incorrect and never entered the beam
    rejected = [c for c in r.candidates if not c.ok or c.cycles >= by_id[c.parent].cycles]
    assert rejected and all(c.id not in beam_ids for c in rejected)
    assert any(not c.ok for c in r.candidates)
    # the best is the fastest correct candidate that was accepted
    assert r.best.cycles == min(by_id[i].cycles for i in beam_ids)
    assert r.samples_used == len(r.candidates) <= 60


# --------------------------------------------------------------------------- dedup

def test_identical_schedules_are_evaluated_once(tmp_path):
    calls = []

    def counting(task):
        calls.append(json.dumps(task["schedule"]))
        return fake_eval(task)

    w = GemmWorkload(64, 64, 64)
    s = SearchSettings(beam=2, plans=3, impls=2, budget=50, seed=0, iterations=1)
    pool = WorkerPool(0, fn=counting)
    r = beam_search(w, Schedule([]), StubAgent(same=True), s, pool=pool)
    # all 3 x 2 proposals of the iteration are the same child: one evaluation
    assert len(calls) == 1 + 1  # baseline + the one child
    assert r.samples_used == 1
    s = SearchSettings(beam=2, plans=3, impls=2, budget=50, seed=0, iterations=4)
    # dedup ignores menu labels: same steps, other label = same program
    calls.clear()
    r = beam_search(w, Schedule([]), StubAgent(width=2), s, pool=pool)
    keys = [json.dumps([[x["op"], x["args"]] for x in json.loads(c)]) for c in calls]
    assert len(keys) == len(set(keys))


# --------------------------------------------------------------------------- determinism

def test_same_seed_same_trace_regardless_of_completion_order():
    a = run_stub_search(workers=2, budget=36, seed=7, jitter=0.01)
    b = run_stub_search(workers=0, budget=36, seed=7)
    assert a.trace_key() == b.trace_key()
    assert a.trace == b.trace and a.best.id == b.best.id
    c = run_stub_search(workers=0, budget=36, seed=8)
    assert c.trace_key() != a.trace_key()


def test_rngs_are_derived_from_their_coordinates():
    assert derive_rng(0, 1, 2, 3).random() == derive_rng(0, 1, 2, 3).random()
    assert derive_rng(0, 1, 2, 3).random() != derive_rng(0, 1, 2, 4).random()


# --------------------------------------------------------------------------- failing workers

def test_crashing_and_hanging_workers_do_not_stop_the_search():
    r = run_stub_search(workers=2, budget=30, special=("crash", "hang"), timeout=2.0)
    stages = {c.measurement.stage for c in r.candidates if not c.ok}
    assert "worker" in stages and "timeout" in stages
    assert r.samples_used == 30
    assert any(c.ok for c in r.candidates)
    assert r.best.cycles <= r.baseline.cycles


def test_worker_pool_turns_exceptions_into_failed_candidates():
    def boom(task):
        raise RuntimeError("agent wrote nonsense")

    res = WorkerPool(0, fn=boom).run([{"M": 16, "N": 16, "K": 16, "schedule": []}])
    assert res[0]["measurement"]["ok"] is False and "nonsense" in res[0]["measurement"]["error"]


# --------------------------------------------------------------------------- resume

def _stub_cmd(run_dir, log, budget=40, sleep=0.15):
    return [sys.executable, str(HERE / "search_stubs.py"), str(run_dir), str(budget), str(sleep), str(log)]


def test_resume_after_kill_gives_the_uninterrupted_result(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    full = subprocess.run(_stub_cmd(tmp_path / "full", tmp_path / "full.log"), env=env,
                          capture_output=True, text=True, timeout=120)
    assert full.returncode == 0, full.stderr
    want = json.loads(full.stdout)

    run = tmp_path / "killed"
    log = tmp_path / "killed.log"
    p = subprocess.Popen(_stub_cmd(run, log), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    cand = run / "candidates.jsonl"
    t0 = time.time()
    while time.time() - t0 < 60:
        if cand.exists() and len(cand.read_text().splitlines()) >= 12:
            break
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)  # the search process and its workers (our own session)
    p.wait()
    finished = {json.dumps([[s["op"], s["args"]] for s in json.loads(l)["schedule"]])
                for l in cand.read_text().splitlines() if l.strip()}
    assert 12 <= len(finished) < want["samples"] + 1

    again = subprocess.run(_stub_cmd(run, log), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    got = json.loads(again.stdout)
    assert got == want
    # finished candidates were not evaluated again
    counts = {}
    for line in log.read_text().splitlines():
        counts[line] = counts.get(line, 0) + 1
    assert all(counts[k] == 1 for k in finished)
    best = json.loads((run / "best.json").read_text())
    assert best["final"] and best["cycles"] == want["cycles"]


def test_resume_refuses_other_settings(tmp_path):
    from autocomp_exo.runs import RunDir, SettingsMismatch

    r = RunDir(tmp_path)
    r.start({"seed": 0, "beam": 2})
    assert RunDir(tmp_path).start({"seed": 0, "beam": 2}) is True
    with pytest.raises(SettingsMismatch):
        RunDir(tmp_path).start({"seed": 1, "beam": 2})


def test_truncated_last_line_is_ignored(tmp_path):
    from autocomp_exo.runs import RunDir

    r = RunDir(tmp_path)
    r.append({"key": "a", "x": 1})
    with open(r.candidates_path, "a") as fh:
        fh.write('{"key": "b", "x"')
    r2 = RunDir(tmp_path)
    assert set(r2.records) == {"a"}
    r2.append({"key": "c"})
    assert set(RunDir(tmp_path).records) == {"a", "c"}


# --------------------------------------------------------------------------- the real thing

def test_optimize_small_gemm_finds_a_correct_faster_schedule(tmp_path):
    import autocomp_exo as ax

    r = ax.optimize(ax.gemm(64, 128, 64), budget=4, beam=1, plans=2, impls=2, workers=2,
                    run_dir=str(tmp_path / "run"), seed=0)
    assert r.cycles < r.baseline_cycles and r.speedup > 1.0
    assert r.samples_used <= 4
    # the best schedule is correct: evaluate it again independently
    m = ax.evaluate(ax.GemmWorkload(64, 128, 64), r.schedule)
    assert m.ok and m.cycles == r.cycles
    assert "gemmini_extended_preload" in r.c_code
    assert r.proc is not None and r.utilization > 0
    # every step the search added is labelled with a menu option
    from autocomp_exo.baselines import exo_unopt

    added = r.schedule.steps[len(exo_unopt.schedule(ax.GemmWorkload(64, 128, 64))):]
    assert added and all(s.menu in KEYS for s in added)
    lines = (tmp_path / "run" / "candidates.jsonl").read_text().splitlines()
    assert len(lines) == r.samples_used + 1


# --------------------------------------------------------------------------- backtracking

def test_an_exhausted_beam_entry_gives_its_slot_to_the_best_live_candidate():
    """One entry with nothing new to try is replaced by the best correct
    candidate not yet exhausted (an unrolled variant of it counts); the live
    entries stay; a beam with nothing exhausted is returned as it is."""
    from autocomp_exo.agents.base import Candidate
    from autocomp_exo.search import replace_exhausted

    def cand(i, cycles, steps, ok=True):
        m = Measurement(ok=ok, cycles=cycles if ok else None, stage=None if ok else "mismatch")
        sched = Schedule([{"op": "unroll_loop", "args": [f"l{x}"], "kwargs": {}} if x < 0 else
                          {"op": "reorder_loops", "args": [f"l{x} m"], "kwargs": {}} for x in steps])
        return Candidate(i, sched, m, None, None, None, 1, None)

    dead = cand(1, 500, [1])                  # the best, but exhausted
    live = cand(2, 900, [2])
    same = cand(3, 600, [1, -1])              # the dead one unrolled further
    wrong = cand(4, 100, [4], ok=False)       # incorrect
    other = cand(5, 700, [5])
    worse = cand(6, 950, [6])
    run = [dead, live, same, wrong, other, worse]
    beam = replace_exhausted([dead, live], run, {dead.id}, 2)
    assert [c.id for c in beam] == [same.id, live.id]
    beam = replace_exhausted([dead, live], run, {dead.id, same.id}, 2)
    assert [c.id for c in beam] == [other.id, live.id]
    assert replace_exhausted([dead, live], run, set(), 2) == [dead, live]
    assert [c.id for c in replace_exhausted([dead], run, {dead.id, same.id, other.id}, 1)] == [live.id]


def test_exhausted_beam_is_refilled_from_the_run():
    """A beam whose entries have nothing new to try continues from the best
    other correct candidates (here: the slower sibling b leads to c, the best)."""
    from autocomp_exo.agents.base import Agent, Plan
    from autocomp_exo.search import refill_beam

    table = {(): ["a", "b"], ("a",): [], ("b",): ["c"], ("b", "c"): []}
    cycles = {(): 10_000, ("a",): 9_000, ("b",): 9_500, ("b", "c"): 8_000}

    def names(sched):
        return tuple(s["args"][0] for s in sched)

    class Finite(Agent):
        name = "finite"

        def plan(self, candidate, menu, n, rng):
            return [Plan(menu[0].key, "rename")] * n

        def implement(self, candidate, plan, k, rng):
            opts = table[names(candidate.schedule.to_list())]
            return [[{"op": "rename", "args": [rng.choice(opts)], "kwargs": {}, "menu": plan.option}]] if opts else []

    def ev(task):
        c = cycles[names(task["schedule"])]
        return {"measurement": {"ok": True, "cycles": c, "M": 64, "N": 64, "K": 64, "utilization": 0.5},
                "proc_text": "p", "seconds": 0.0}

    w = GemmWorkload(64, 64, 64)
    s = SearchSettings(beam=1, plans=2, impls=2, budget=10, seed=0)
    r = beam_search(w, Schedule([]), Finite(), s, pool=WorkerPool(0, fn=ev))
    assert r.best.cycles == 8_000
    assert r.samples_used == 3            # a, b, then c: nothing evaluated twice
    assert [ids for _, ids in r.trace][1] == [next(c.id for c in r.candidates if c.cycles == 9_000)]
    # refill_beam: best correct candidates that are not exhausted
    cs = r.candidates
    ids = [c.id for c in refill_beam(cs, {c.id for c in cs if c.cycles == 8_000}, 2)]
    assert [next(c.cycles for c in cs if c.id == i) for i in ids] == [9_000, 9_500]
