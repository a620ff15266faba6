"""proc_text: Exo's printer without yapf reads the same as str(proc)."""
from autocomp_exo.baselines import exo_opt
from autocomp_exo.proc_text import proc_text
from autocomp_exo.workloads import GemmWorkload


def test_fast_text_is_str_without_the_reformatting():
    w = GemmWorkload(64, 128, 128)
    p = exo_opt.schedule(w).apply(w.proc)
    fast = proc_text(p)
    assert fast != str(p)                                        # not yapf-formatted ...
    assert "".join(fast.split()) == "".join(str(p).split())      # ... but the same program text
    assert "a: i8[" in fast and "@ GEMM_SCRATCH" in fast
    assert fast.splitlines()[0].startswith(f"def {p.name()}(")
    # one statement per line, two spaces a level
    assert all((len(l) - len(l.lstrip(" "))) % 2 == 0 for l in fast.splitlines())
