"""proc_text: Exo's printer without yapf reads the same as str(proc)."""
from autocomp_exo.agents.proctext import parse
from autocomp_exo.baselines import exo_opt
from autocomp_exo.proc_text import proc_text
from autocomp_exo.workloads import GemmWorkload


def _facts(text):
    f = parse(text)
    return ([(n.kind, n.name, n.depth, n.lo, n.hi) for n in f.nodes if n.kind == "for"],
            [(a.name, a.dims, a.mem) for a in f.allocs()],
            [(n.name, n.depth) for n in f.nodes if n.kind == "call"])


def test_fast_text_parses_like_str():
    w = GemmWorkload(64, 128, 128)
    p = exo_opt.schedule(w).apply(w.proc)
    fast = proc_text(p)
    assert fast != str(p)                    # not yapf-formatted ...
    assert _facts(fast) == _facts(str(p))    # ... but the same loops, buffers and calls
    assert "a: i8[" in fast and "@ GEMM_SCRATCH" in fast
    assert fast.splitlines()[0].startswith(f"def {p.name()}(")
