"""Transfer of a recorded schedule between GEMM shapes (small shapes, real Exo and simulator)."""
from __future__ import annotations

import pytest

from autocomp_exo.library import Library, Record, hardware_fingerprint
from autocomp_exo.transfer import adapt, similar_records, similarity, transfer
from autocomp_exo.workloads import GemmWorkload

HW = hardware_fingerprint()
MM = "do_matmul_acc_i8(_)"


def sig(M, N, K):
    return GemmWorkload(M, N, K).signature()


def test_similarity_rules():
    a = sig(512, 512, 512)
    assert similarity(a, sig(1024, 1024, 1024))[0] == 2          # same aspect ratio
    assert similarity(sig(12544, 128, 64), sig(12544, 256, 64))[0] == 1   # two shared dimensions
    assert similarity(a, sig(512, 512, 512)) == (0, 0.0)
    assert similarity(a, sig(512, 256, 128)) is None            # one shared, other ratio
    assert similarity(a, sig(64, 1024, 1024)) is None
    assert similarity(sig(32, 1024, 1024), sig(64, 2048, 2048))[0] == 2
    relu = dict(sig(1024, 1024, 1024), dtype="int16")
    assert similarity(a, relu) is None


def _rec(M, N, K, cycles=1000, steps=()):
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.schedule import Schedule

    w = GemmWorkload(M, N, K)
    return Record(w.signature(), HW, exo_unopt.schedule(w).extend(list(steps)), cycles, 2 * cycles, "exo-unopt",
                  None, 0, {"source": "test"})


def test_similar_records_order(tmp_path):
    lib = Library(tmp_path)
    for shape in [(1024, 1024, 1024), (256, 256, 256), (512, 256, 512), (512, 512, 128), (64, 64, 64),
                  (512, 512, 512)]:
        lib.add(_rec(*shape), verify=False)
    got = [r.name for r in similar_records(lib, GemmWorkload(512, 512, 512))]
    # two shared dims first (closest volume first), then same aspect ratio; the same shape excluded
    assert got == ["gemm_512x256x512", "gemm_512x512x128", "gemm_1024x1024x1024", "gemm_256x256x256",
                   "gemm_64x64x64"]
    assert [r.name for r in similar_records(lib, GemmWorkload(512, 512, 512), include_same=True)][0] == \
        "gemm_512x512x512"
    # records of another hardware configuration come after this hardware's (or not at all)
    assert similar_records(lib, GemmWorkload(512, 512, 512), config="0000000000000000", other_hardware=False) == []
    lib.add(_rec(512, 512, 256), verify=False)
    other = Record.from_dict({**_rec(512, 512, 64).to_dict(), "hardware": "0000000000000000"})
    lib.add(other, verify=False)
    got = [r.name for r in similar_records(lib, GemmWorkload(512, 512, 512))]
    assert "gemm_512x512x256" in got[:2] and got[-1] == "gemm_512x512x64"


# a small "found" schedule of moves: 64x64x64 with the i tiles split by 2 (tiling)
# and the compute loop unrolled (unroll)
STEPS = [
    {"op": "tile_loop", "args": ["i", 2], "menu": "tiling"},
    {"op": "unroll_calls", "args": ["compute", 1], "menu": "unroll"},
]


@pytest.fixture(scope="module")
def source():
    return _rec(64, 64, 64, steps=STEPS)


def test_adapt_to_a_bigger_shape(source):
    w = GemmWorkload(128, 64, 64)        # two shared dimensions
    ads = adapt(source, w, max_calls=20)
    by = {a.policy: a for a in ads}
    # keep: the factor 2 still tiles the 8 row tiles; scale: 2 * 8/4 = 4
    keep = [s for s in by["keep"].schedule.steps if s.op == "tile_loop"][0]
    scale = [s for s in by["scale"].schedule.steps if s.op == "tile_loop"][0]
    assert keep.args[1] == 2 and scale.args[1] == 4
    assert "step 70 tile_loop 'i': factor 2 -> 4 (extent 8)" in by["scale"].notes
    # the unroll fits (13 calls): kept as recorded
    assert all(not n.startswith("step 71") for n in by["keep"].notes)
    # menu labels are kept, and the prefix is Exo's mapping of the new shape
    from autocomp_exo.baselines import exo_unopt

    assert exo_unopt.schedule(w).is_prefix_of(by["keep"].schedule)
    assert [s.menu for s in by["keep"].schedule.steps[-2:]] == ["tiling", "unroll"]


def test_adapt_replays_primitive_steps_unchanged():
    """A primitive step's integers are not guessed: a divide_loop whose factor
    no longer divides the loop is dropped (noted), the rest replays as recorded."""
    steps = [{"op": "divide_loop", "args": ["i", 4, ["io", "ii"]], "kwargs": {"perfect": True}, "menu": "tiling"},
             {"op": "unroll_loop", "args": [{"parent": MM}], "menu": "unroll"}]
    rec = _rec(128, 64, 64, steps=steps)
    w = GemmWorkload(96, 64, 64)          # 6 row tiles
    ads = adapt(rec, w)
    assert len(ads) == 1                  # no tile_loop: keep and scale give the same schedule
    a = ads[0]
    assert [s.op for s in a.schedule.steps[-1:]] == ["unroll_loop"]
    assert not any(s.op == "divide_loop" and s.menu == "tiling" for s in a.schedule.steps)
    assert any(n.startswith("step 70 divide_loop: dropped (") for n in a.notes), a.notes


def test_transfer_small_pair(source, tmp_path):
    """Phase 1 (adapted replay), 2 (guided by the record's options) and 3 (search), in one process."""
    from autocomp_exo.evaluate import evaluate

    w = GemmWorkload(128, 64, 64)
    events = []
    r = transfer(source, w, budget=5, workers=0, beam=2, plans=1, impls=1, guided_budget=2,
                 progress=events.append)
    assert r.samples_used <= 5 and len(r.history) == r.samples_used
    assert r.phases["replay"]["samples"] == 2 and r.phases["guided"]["options"] == ["tiling", "unroll"]
    assert r.phases["guided"]["samples"] <= 2
    assert all(m.ok for _, m in r.adapted), [m.error for _, m in r.adapted]
    assert r.cycles < r.baseline_cycles and r.speedup > 1
    assert r.best_after(2) == min(m.cycles for _, m in r.adapted)
    assert {e["phase"] for e in events} >= {1}
    # the result is real: replaying its schedule gives its cycles
    m = evaluate(w, r.schedule)
    assert m.ok and m.cycles == r.cycles
    assert r.c_code and "gemm_128x64x64" in r.c_code


def test_transfer_spends_what_the_records_structure_cannot_use(source):
    """When the search from the adapted record runs out of proposals with
    budget left, the rest goes to a search from Exo's standard mapping
    (phase 'fresh'): its samples are counted, within the budget."""
    from autocomp_exo.agents.offline import OfflineAgent
    from autocomp_exo.baselines import exo_unopt

    w = GemmWorkload(128, 64, 64)
    start = exo_unopt.schedule(w).canonical()

    class OnlyFromTheStart(OfflineAgent):
        """Proposes only for Exo's standard mapping: nothing for the record's schedule."""

        def plan(self, candidate, menu, n, rng):
            return super().plan(candidate, menu, n, rng) if candidate.schedule.canonical() == start else []

    # the adapted record is the start of the guided phase whatever the timing model says of it
    # against Exo's mapping (a huge baseline_cycles: any correct adapted schedule beats it)
    r = transfer(source, w, budget=6, workers=0, beam=2, plans=1, impls=1, guided_budget=2,
                 agent=OnlyFromTheStart(), baseline_cycles=10**9)
    assert r.phases["guided"]["samples"] == 0 and r.phases["search"]["samples"] == 0
    assert r.phases["fresh"]["samples"] > 0
    assert r.samples_used == r.phases["replay"]["samples"] + r.phases["fresh"]["samples"] <= 6
    assert len(r.history) == r.samples_used
    assert any("ran out of proposals" in n for n in r.notes)
