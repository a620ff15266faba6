"""The compiler's integer semantics against gcc itself.

Random C programs (typed locals, loops with counters, compound assignments,
every integer operator, casts between all widths) are compiled natively with
`gcc -fwrapv` (signed overflow wraps, as the simulator's model of RISC-V does)
and run; the simulator must produce the same values. Skipped without gcc.
"""
from __future__ import annotations

import random
import shutil
import subprocess

import numpy as np
import pytest

import sim

GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc not available")

TYPES = ["int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t", "uint64_t",
         "int_fast32_t"]
UNSIGNED = {"uint8_t", "uint16_t", "uint32_t", "uint64_t"}
BITS = {"int8_t": 8, "uint8_t": 8, "int16_t": 16, "uint16_t": 16, "int32_t": 32, "uint32_t": 32,
        "int64_t": 64, "uint64_t": 64, "int_fast32_t": 64}


class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.vars: dict[str, str] = {}

    def lit(self) -> str:
        r = self.r
        v = r.choice([0, 1, 2, 3, 7, 15, 16, 31, 64, 127, 128, 255, 1000, 65535, 0x7FFFFFFF, 0x80000000,
                      0xFFFFFFFF, r.randrange(1 << 12), r.randrange(1 << 31)])
        suffix = r.choice(["", "", "u", "ll", "ull"]) if v < (1 << 31) else r.choice(["u", "ull", ""])
        text = hex(v) if r.random() < 0.3 else str(v)
        return text + suffix

    def atom(self, loopvars: list[str]) -> str:
        r = self.r
        pool = list(self.vars) + loopvars
        if pool and r.random() < 0.7:
            return r.choice(pool)
        return self.lit()

    def expr(self, depth: int, loopvars: list[str]) -> str:
        r = self.r
        if depth <= 0 or r.random() < 0.2:
            return self.atom(loopvars)
        k = r.random()
        a = self.expr(depth - 1, loopvars)
        b = self.expr(depth - 1, loopvars)
        if k < 0.45:
            op = r.choice(["+", "-", "*", "&", "|", "^", "+", "-"])
            return f"({a} {op} {b})"
        if k < 0.55:
            op = r.choice(["/", "%"])
            return f"({a} {op} ((({b}) & 15) + 1))"  # positive divisor: no UB
        if k < 0.65:
            t = r.choice(["uint32_t", "uint64_t", "uint8_t", "uint16_t"])
            return f"((({t})({a})) {r.choice(['<<', '>>'])} (({b}) & 7))"
        if k < 0.75:
            t = r.choice(TYPES)
            return f"(({t})({a}))"
        if k < 0.82:
            return f"({r.choice(['-', '~', '!'])}{a})"
        if k < 0.9:
            op = r.choice(["<", "<=", ">", ">=", "==", "!=", "&&", "||"])
            return f"({a} {op} {b})"
        c = self.expr(depth - 1, loopvars)
        return f"({a} ? {b} : {c})"

    def program(self, n_out: int) -> str:
        r = self.r
        lines = []
        for i in range(6):
            t = r.choice(TYPES)
            name = f"x{i}"
            lines.append(f"  {t} {name} = {self.lit()};")
            self.vars[name] = t
        out = 0
        body = []
        while out < n_out:
            kind = r.random()
            if kind < 0.3:
                n = r.randrange(1, 5)
                inner = []
                lv = [f"i{out}"]
                for _ in range(3):
                    target = r.choice(list(self.vars))
                    op = r.choice(["=", "+=", "-=", "*=", "^=", "|=", "&="])
                    inner.append(f"    {target} {op} {self.expr(2, lv)};")
                if out < n_out:
                    inner.append(f"    out[{out}] = (int64_t)({self.expr(3, lv)});")
                    out += 1
                body.append(f"  for (int_fast32_t i{out - 1} = 0; i{out - 1} < {n}; i{out - 1}++) {{")
                body.extend(x.replace(f"i{out}", f"i{out - 1}") for x in inner)
                body.append("  }")
            else:
                body.append(f"  out[{out}] = (int64_t)({self.expr(4, [])});")
                out += 1
        return "\n".join(["#include <stdint.h>", "#include <stdbool.h>", "",
                          f"void f(int64_t out[{n_out}]) {{"] + lines + body + ["}"])


def native(c_src: str, n_out: int, tmp_path) -> list[int]:
    main = c_src + f"""
#include <stdio.h>
int main(void) {{
  int64_t out[{n_out}];
  f(out);
  for (int i = 0; i < {n_out}; i++) printf("%lld\\n", (long long)out[i]);
  return 0;
}}
"""
    src = tmp_path / "prog.c"
    exe = tmp_path / "prog"
    src.write_text(main)
    subprocess.run([GCC, "-O0", "-fwrapv", "-w", "-o", str(exe), str(src)], check=True)
    return [int(x) for x in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()]


@pytest.mark.parametrize("seed", range(12))
def test_random_integer_programs_match_gcc(seed, tmp_path):
    n_out = 40
    c_src = Gen(seed).program(n_out)
    want = native(c_src, n_out, tmp_path)
    out = np.zeros(n_out, np.int64)
    sim.run(c_src, "f", {"out": out}, filename=f"random{seed}.c")
    got = out.tolist()
    bad = [i for i in range(n_out) if got[i] != want[i]]
    assert not bad, f"out[{bad[0]}]: sim {got[bad[0]]}, gcc {want[bad[0]]}\n{c_src}"
