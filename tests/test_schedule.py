"""Schedules as data: JSON, validation, error paths, replay, the prefix cache."""
from __future__ import annotations

import json
import os
import time

import pytest

from autocomp_exo.baselines import exo_unopt
from autocomp_exo.exo_compile import to_c
from autocomp_exo.schedule import (
    OPS,
    WHITELIST,
    PrefixCache,
    Schedule,
    ScheduleError,
    Step,
    describe_ops,
)
from autocomp_exo.workloads import GemmWorkload, gemm

REQUIRED_OPS = """divide_loop reorder_loops fission autofission fuse unroll_loop lift_alloc
autolift_alloc sink_alloc stage_mem expand_dim set_memory set_precision replace call_eqv
inline inline_window lift_config delete_config simplify reorder_stmts specialize
eliminate_dead_code cut_loop shift_loop add_loop remove_loop lift_scope rename bind_expr
delete_pass""".split()

# The first steps of Exo's standard mapping: cheap (well under a second) and
# enough to exercise tiling, lifting, fission and reordering.
TILE = [
    {"op": "divide_loop", "args": ["i", 16, ["i", "i_in"]], "kwargs": {"perfect": True}},
    {"op": "reorder_loops", "args": ["i_in j"]},
    {"op": "divide_loop", "args": ["j", 16, ["j", "j_in"]], "kwargs": {"perfect": True}},
    {"op": "autolift_alloc", "args": ["res : _", 2, "row", None, True]},
    {"op": "autofission", "args": [{"gap": "after", "stmt": "res[_] = 0.0"}, 2]},
]


@pytest.fixture(scope="module")
def small():
    return gemm(32, 32, 32)


def test_whitelist_covers_the_required_ops():
    for op in REQUIRED_OPS:
        assert op in WHITELIST, op
        spec = OPS[op]
        assert spec.doc and spec.example["op"] == op
        Step.from_dict(spec.example)  # every example validates
    text = describe_ops()
    assert all(op in text for op in REQUIRED_OPS)
    assert '{"mem": one of' in text


def test_json_round_trip():
    s = exo_unopt.schedule(GemmWorkload(64, 64, 64))
    assert len(s) > 40
    text = s.to_json()
    back = Schedule.from_json(text)
    assert back == s and hash(back) == hash(s)
    assert back.to_json() == text
    assert Schedule.from_json(json.loads(text)) == s
    assert Schedule.from_json({"steps": json.loads(text)}) == s
    assert [st.menu for st in back] == ["exo-unopt"] * len(s)
    # tagged values survive
    assert {"instr": "ld_i8_block_id1"} in [a for st in back for a in st.args]


def test_extend_prefix_and_equality():
    base = Schedule(TILE[:2])
    child = base.extend(TILE[2])
    assert len(base) == 2 and len(child) == 3  # immutable: base unchanged
    assert child[:2] == base and child.prefix(2) == base
    assert base.is_prefix_of(child) and not child.is_prefix_of(base)
    assert base + Schedule(TILE[2:3]) == child
    assert Step("simplify") == Step.from_dict({"op": "simplify"})
    assert Step("simplify", menu="a") != Step("simplify", menu="b")
    assert Step("simplify", menu="a").program_key() == Step("simplify", menu="b").program_key()
    with pytest.raises(AttributeError):
        child.steps = ()


def test_unknown_op_is_rejected_with_index():
    with pytest.raises(ScheduleError) as e:
        Schedule([{"op": "simplify"}, {"op": "exec", "args": ["print(1)"]}])
    assert e.value.index == 1 and e.value.op == "exec"
    assert "step 1 (exec)" in str(e.value) and "unknown op" in str(e.value)


@pytest.mark.parametrize(
    "step, needle",
    [
        ({"op": "set_memory", "args": ["a", {"mem": "HBM"}]}, "mem 'HBM' is not whitelisted"),
        ({"op": "replace", "args": ["for i in _: _", {"instr": "os.system"}]}, "instr 'os.system' is not whitelisted"),
        ({"op": "write_config", "args": [{"gap": "after", "stmt": "x = _"}, {"config": "Evil"}, "f", 0]}, "config 'Evil' is not whitelisted"),
        ({"op": "set_memory", "args": ["a", "GEMM_SCRATCH"]}, '{"mem": <name>}'),
        ({"op": "fission", "args": [{"gap": "inside", "stmt": "x = _"}]}, "gap must be"),
        ({"op": "fission", "args": ["x = _"]}, "expected a gap"),
        ({"op": "unroll_loop", "args": [{"python": "i"}]}, "tagged"),
        ({"op": "divide_loop", "args": ["i", 0, ["a", "b"]]}, ">= 1"),
        ({"op": "divide_loop", "args": ["i", 4, ["a"]]}, "list of 2"),
        ({"op": "divide_loop", "args": ["i", 4, ["a", "b"]], "kwargs": {"tail": "wrap"}}, "tail"),
        ({"op": "divide_loop", "args": ["i", 4, ["a", "b"]], "kwargs": {"bogus": 1}}, "unknown keyword"),
        ({"op": "divide_loop", "args": ["i"]}, "missing argument"),
        ({"op": "simplify", "args": [1]}, "at most 0 positional"),
        ({"op": "rename", "args": ["not a name"]}, "identifier"),
        ({"op": "set_precision", "args": ["a", "int128"]}, "one of"),
        ({"op": "simplify", "frobnicate": 1}, "unexpected step keys"),
    ],
)
def test_bad_arguments_are_rejected(step, needle):
    with pytest.raises(ScheduleError) as e:
        Schedule([{"op": "simplify"}, {"op": "simplify"}, step])
    assert e.value.index == 2
    assert str(e.value).startswith("step 2")
    assert needle in str(e.value)


def test_non_json_arguments_rejected():
    with pytest.raises(ScheduleError, match="JSON"):
        Step("rename", [object()])
    with pytest.raises(ScheduleError, match="invalid JSON"):
        Schedule.from_json("[{")


def test_exo_failure_names_step_and_exo_message(small):
    s = Schedule(TILE[:2] + [{"op": "divide_loop", "args": ["nope", 4, ["a", "b"]]}])
    with pytest.raises(ScheduleError) as e:
        s.apply(small, cache=None)
    err = e.value
    assert err.index == 2 and err.op == "divide_loop"
    assert "step 2 (divide_loop)" in str(err)
    assert "nope" in err.message  # Exo's own message about the pattern
    # a non-dividing perfect split: Exo's SchedulingError
    s = Schedule([{"op": "divide_loop", "args": ["i", 5, ["io", "ii"]], "kwargs": {"perfect": True}}])
    with pytest.raises(ScheduleError) as e:
        s.apply(small, cache=None)
    assert e.value.index == 0 and e.value.kind == "SchedulingError"


def test_replace_failure_is_quiet(small, capsys):
    s = Schedule([{"op": "replace", "args": ["for k in _: _", {"instr": "ld_i8_block_id1"}]}])
    with pytest.raises(ScheduleError) as e:
        s.apply(small, cache=None)
    assert e.value.op == "replace" and e.value.index == 0
    out = capsys.readouterr()
    assert "Failed to unify" not in out.out


def test_lift_config_refuses_non_config(small):
    s = Schedule([{"op": "lift_config", "args": ["res = 0.0"]}])
    with pytest.raises(ScheduleError, match="only lifts config"):
        s.apply(small, cache=None)


def test_text_is_never_evaluated_as_python(small, tmp_path):
    marker = tmp_path / "pwned"
    code = f"__import__('os').system('touch {marker}')"
    for step in (
        {"op": "cut_loop", "args": ["i", code]},
        {"op": "specialize", "args": ["for i in _: _", [code]]},
        {"op": "stage_mem", "args": ["for k in _: _", code, "x"]},
        {"op": "divide_loop", "args": [code, 2, ["a", "b"]]},
    ):
        with pytest.raises(ScheduleError):
            Schedule([step]).apply(small, cache=None)
    assert not os.path.exists(marker)


def test_tagged_cursors(small):
    s = Schedule(
        TILE
        + [
            # the loop around the zeroing statement, by its parent
            {"op": "unroll_loop", "args": [{"parent": "res[_] = 0.0"}]},
            {"op": "reorder_stmts", "args": [{"block": {"stmt": "res[_] = 0.0 #1"}, "expand": [1, 0]}]},
        ]
    )
    p = s.apply(small, cache=None)
    text = str(p)
    # the i_in loop around the zeroing is gone: 16 unrolled statements, the
    # first two swapped by reorder_stmts
    assert "for i_in in seq(0, 16):\n                    res[j_in, i_in] = 0.0" not in text
    assert all(f"res[j_in, {n}] = 0.0" in text for n in range(16))
    assert text.index("res[j_in, 1] = 0.0") < text.index("res[j_in, 0] = 0.0")


def test_deterministic_replay(small):
    s = Schedule(TILE)
    c1, e1 = to_c(s.apply(small, cache=None))
    c2, e2 = to_c(s.apply(small, cache=None))
    assert c1 == c2 and e1 == e2 == "gemm_32x32x32"


def test_prefix_cache_reuses_the_parent():
    p = gemm(32, 32, 32)
    cache = PrefixCache(maxsize=8)
    parent = Schedule(TILE)
    t = time.perf_counter()
    q1, info1 = parent.apply_info(p, cache)
    cold = time.perf_counter() - t
    assert info1 == {"reused": 0, "applied": len(TILE), "seconds": info1["seconds"]}
    assert cache.misses == 1 and cache.hits == 0

    # the same schedule: a full hit, the very same proc
    q2, info2 = parent.apply_info(p, cache)
    assert q2 is q1 and info2["applied"] == 0 and cache.hits == 1

    # a one-step child only runs its new step
    child = parent.extend({"op": "simplify"})
    t = time.perf_counter()
    q3, info3 = child.apply_info(p, cache)
    warm = time.perf_counter() - t
    assert info3["reused"] == len(TILE) and info3["applied"] == 1
    assert cache.hits == 2
    assert warm * 3 < cold, (warm, cold)
    # and gives the same program as a cold replay
    assert to_c(q3)[0] == to_c(child.apply(p, cache=None))[0]

    # the menu label does not change the program key
    relabeled = Schedule([dict(st.to_dict(), menu="other") for st in parent])
    _, info4 = relabeled.apply_info(p, cache)
    assert info4["applied"] == 0

    # a different base proc never hits
    _, info5 = parent.apply_info(gemm(32, 32, 48), cache)
    assert info5["reused"] == 0


def test_prefix_cache_is_bounded():
    p = gemm(32, 32, 32)
    cache = PrefixCache(maxsize=2)
    for n in (16, 8, 4):
        Schedule([{"op": "divide_loop", "args": ["i", n, ["io", "ii"]]}]).apply(p, cache)
    assert len(cache) == 2
    assert cache.stats()["entries"] == 2
