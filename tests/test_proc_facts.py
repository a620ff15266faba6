"""proc_facts: what a scheduled proc is made of, read through Exo's cursors."""
from __future__ import annotations

import json

import pytest

from gemmini_isa import GemminiConfig


@pytest.fixture(scope="module")
def mapped():
    """Exo's standard mapping of a 64x64x64 GEMM and its facts."""
    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.proc_facts import facts
    from autocomp_exo.workloads import GemmWorkload

    w = GemmWorkload(64, 64, 64)
    p = exo_unopt.schedule(w).apply(w.proc)
    return p, facts(p)


def _slots(call):
    return {o.slot: o.buffer for o in call.operands}


def test_call_roles_and_operands(mapped):
    _p, f = mapped
    assert [c.role for c in f.calls() if c.role != "config"] == ["zero", "load", "load", "compute", "store"]
    assert {c.role for c in f.calls()} == {"config", "zero", "load", "compute", "store"}
    assert _slots(f.first_call("zero")) == {"dst": "res"}
    loads = f.calls("load")
    assert [_slots(c)["src"] for c in loads] == ["A", "B"]
    assert [_slots(c)["dst"] for c in loads] == ["a", "b"]
    assert [c.dram_operand().buffer for c in loads] == ["A", "B"]
    assert all(c.local_operand().mem == "GEMM_SCRATCH" for c in loads)
    assert f.loads_of("A") == loads[:1] and f.loads_of("B") == loads[1:]
    comp = f.first_call("compute")
    assert comp.accumulate is True
    assert f.compute_operands() == {"moving": "a", "stationary": "b", "output": "res"}
    assert comp.operand("output").mem == "GEMM_ACCUM"
    st = f.first_call("store")
    assert _slots(st) == {"src": "res", "dst": "C"}
    assert st.operand("dst").mem == "DRAM"
    # the loop counters an operand's indices read
    assert set(loads[0].operand("src").vars) == {"i", "ko"}
    assert comp.mentions("k") and not st.mentions("k")
    assert f.n_calls() == len(f.calls()) == 10


def test_loops_and_allocations(mapped):
    _p, f = mapped
    assert {n.name: n.extent for n in f.loops()} == {"i": 4, "j": 1, "j_in_o": 4, "ko": 1, "k": 4}
    assert [n.extent for n in f.loops("k")] == [4, 4]
    assert f.loop("i").lo == 0 and f.loop("i").hi == 4
    comp = f.first_call("compute")
    assert [n.name for n in comp.loops()] == ["i", "j", "ko", "k", "j_in_o"]
    assert f.loop("i").count("call") == 5
    assert f.alloc("res").mem == "GEMM_ACCUM" and f.alloc("res").dims == (1, 4, 16, 16)
    assert f.alloc("a").mem == "GEMM_SCRATCH" and f.alloc("a").dims == (1, 4, 16, 16)
    assert f.alloc("b").mem == "GEMM_SCRATCH" and f.alloc("b").dims == (1, 4, 4, 16, 16)
    assert {a.name for a in f.allocs("GEMM_SCRATCH")} == {"a", "b"}
    assert f.rows(f.alloc("b")) == 256
    assert f.rows_used("GEMM_SCRATCH") == 64 + 256 and f.rows_used("GEMM_ACCUM") == 64
    assert [a["name"] for a in f.args] == ["scale", "act", "A", "B", "C"]
    assert f.args[2] == {"name": "A", "mem": "DRAM", "dims": [64, 64]}


def test_json_round_trip(mapped):
    from autocomp_exo.proc_facts import ProcFacts

    _p, f = mapped
    d = f.to_json()
    text = json.dumps(d)
    g = ProcFacts.from_json(json.loads(text))
    assert g.to_json() == d
    assert [n.describe() for n in g.nodes()] == [n.describe() for n in f.nodes()]
    assert g.first_call("compute").loops()[0].name == "i"
    with pytest.raises(ValueError):
        ProcFacts.from_json({"root": {}})


def test_cursor_at_finds_the_node(mapped):
    from autocomp_exo.proc_facts import cursor_at

    p, f = mapped
    for n in f.calls():
        assert cursor_at(p, n).subproc().name() == n.name
    for n in f.loops():
        assert cursor_at(p, n).name() == n.name
    k0 = f.loops("k")[0]
    assert cursor_at(p, k0) == p.find_loop("k")
    assert cursor_at(p, f.alloc("b")).name() == "b"


def test_over_capacity_reads_the_config(mapped):
    _p, f = mapped
    assert f.over_capacity() == ""
    assert f.over_capacity(GemminiConfig()) == ""
    small = GemminiConfig(sp_bank_rows=16)          # 4 banks of 16 rows: 64 rows < 320
    msg = f.over_capacity(small)
    assert "scratchpad" in msg and "320" in msg and "64" in msg
    msg = f.over_capacity(GemminiConfig(acc_bank_rows=8))
    assert "accumulator" in msg and "64" in msg


def test_transfer_overflow_check_uses_the_facts(mapped):
    import importlib

    from autocomp_exo.proc_facts import Node, ProcFacts

    T = importlib.import_module("autocomp_exo.transfer")
    _p, f = mapped
    raw = ProcFacts(Node("proc"))                     # no local buffer, no call
    assert f.n_calls() == 10 and raw.n_calls() == 0
    assert T._overflow(raw, f, None, 700) == ""
    assert "scratchpad" in T._overflow(raw, f, GemminiConfig(sp_bank_rows=16), 700)
    assert T._overflow(f, f, GemminiConfig(sp_bank_rows=16), 700) == ""   # not made so by the step
    assert T._overflow(raw, f, None, 5) == "10 calls > 5"
    assert T._overflow(f, f, None, 5) == ""


def test_shape_of_mapped_reads_the_arguments(mapped):
    from autocomp_exo.optimize import _shape_of_mapped

    p, _f = mapped
    assert _shape_of_mapped(p) == (64, 64, 64)


def test_user_names_and_relu():
    """A user's GEMM with other names (tensors first), mapped and renamed back;
    the ReLU GEMM has the same roles."""
    import sys
    from pathlib import Path

    from autocomp_exo.baselines import exo_unopt
    from autocomp_exo.proc_facts import facts
    from autocomp_exo.workloads import GemmWorkload, recognise

    sys.path.insert(0, str(Path(__file__).parent))
    from test_workloads import tensors_first

    rec = recognise(tensors_first.partial_eval(64, 64, 64))
    assert not rec.is_canonical and recognise(rec.workload.proc).is_canonical
    mine = rec.to_user(exo_unopt.schedule(rec.workload).apply(rec.workload.proc))
    f = facts(mine)
    assert [_slots(c)["src"] for c in f.calls("load")] == ["X", "Y"]
    assert _slots(f.first_call("store"))["dst"] == "Z"
    assert set(f.compute_operands()) == {"moving", "stationary", "output"}
    assert [a["name"] for a in f.args] == ["X", "Y", "Z", "sc", "use_relu"]
    assert "row" in f.loop_names()

    w = GemmWorkload(64, 64, 64, relu=True)
    g = facts(exo_unopt.schedule(w).apply(w.proc))
    assert [c.role for c in g.calls() if c.role != "config"] == ["zero", "load", "load", "compute", "store"]
    assert _slots(g.first_call("store")) == {"src": "res", "dst": "C"}


def test_candidate_facts():
    from autocomp_exo.agents.base import Candidate
    from autocomp_exo.schedule import Schedule

    c = Candidate(0, Schedule([]))
    assert c.facts is None and c.config is None and c.proc_facts() is None
    d = {"version": 1, "args": [], "root": {"kind": "proc", "name": "p",
                                            "body": [{"kind": "for", "path": [["body", 0]], "name": "i",
                                                      "lo": 0, "hi": 4}]}}
    c = Candidate(1, Schedule([]), None, "text", None, None, 0, None, facts=d)
    pf = c.proc_facts()
    assert pf.loop("i").extent == 4 and c.proc_facts() is pf
    c.facts = {"bad": 1}
    assert c.proc_facts() is None
