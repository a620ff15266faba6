"""The RISC-V reference for the simulator's CPU estimate.

``count(c_source, entry)`` compiles a Gemmini C kernel (either dialect the
simulator reads) with Debian's ``riscv64-linux-gnu-gcc -O2`` (freestanding,
static, no libc, ``-march=rv64imafd``: every instruction is 4 bytes), with each
Gemmini command replaced by one stand-in custom-0 RoCC instruction whose two
operands are packed as gemmini.h packs them (``benchmarks/riscv_gemmini.h``),
then runs the entry function in unicorn's RISC-V emulator and counts the
instructions that really execute between the call and its return (callees
included) with a basic-block hook. The stand-in instructions are patched to
``nop`` before running (same count). Arrays hold zeros: the control flow of
these kernels does not depend on data.

Returns a :class:`Count`: executed instructions, RoCC commands among them,
static size of the entry function and of all code, per-function counts.

Needs ``riscv64-linux-gnu-gcc`` (apt: gcc-riscv64-linux-gnu), ``unicorn`` and
``pyelftools``; :func:`missing` says which are absent. Nothing here is needed
at search time.

    python benchmarks/riscv_reference.py kernel.c [entry] [--asm]
"""
from __future__ import annotations

import bisect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "riscv_gemmini.h")
GCC = "riscv64-linux-gnu-gcc"
OBJDUMP = "riscv64-linux-gnu-objdump"
CFLAGS = ["-O2", "-march=rv64imafd", "-mabi=lp64d", "-mcmodel=medany", "-ffreestanding", "-fno-pic",
          "-nostdlib", "-static", "-fno-stack-protector", "-fno-asynchronous-unwind-tables"]
CUSTOM0 = 0x0B
NOP = 0x00000013
TEXT_BASE = 0x10000
DATA_BASE = 0x4000_0000      # argument buffers
BUF_BYTES = 1 << 20
STACK_TOP = 0x7FF0_0000
STACK_BYTES = 1 << 20
SENTINEL = 0x0F00_0000       # return address: emulation stops here

__all__ = ["Count", "count", "compile_elf", "missing", "prepare_source"]


def missing() -> Optional[str]:
    """Why the reference cannot run here (None when it can)."""
    if shutil.which(GCC) is None:
        return f"{GCC} not found (apt-get install gcc-riscv64-linux-gnu)"
    try:
        import unicorn  # noqa: F401
    except ImportError:
        return "the unicorn emulator is not installed (pip install unicorn)"
    try:
        import elftools  # noqa: F401
    except ImportError:
        return "pyelftools is not installed (pip install pyelftools)"
    return None


@dataclass
class Count:
    entry: str
    instructions: int            # executed, entry call to return, callees included
    rocc: int                    # executed RoCC commands (each one instruction)
    static_bytes: int            # size of the entry function
    text_bytes: int              # all code in the binary
    per_function: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(entry=self.entry, instructions=self.instructions, rocc=self.rocc,
                    static_bytes=self.static_bytes, text_bytes=self.text_bytes, per_function=dict(self.per_function))


_INCLUDE = re.compile(r"^\s*#\s*include\b.*$", re.M)
_CTX_NAME = re.compile(r"\b(\w+_Context)\b")
_CTX_FIELD = re.compile(r"ctxt->(\w+)\.(\w+)")


def _context_struct(src: str) -> str:
    """A stand-in for Exo's context struct when its header is not given."""
    names = sorted(set(_CTX_NAME.findall(src)))
    if not names:
        return ""
    groups: dict[str, list[str]] = {}
    for g, f in _CTX_FIELD.findall(src):
        groups.setdefault(g, [])
        if f not in groups[g]:
            groups[g].append(f)
    body = "".join(
        f"  struct {{ {' '.join(('float ' if f == 'scale' else 'bool ' if f in ('act', 'done') else 'int_fast32_t ') + f + ';' for f in fs)} }} {g};\n"
        for g, fs in groups.items()) or "  int unused;\n"
    return "".join(f"typedef struct {n} {{\n{body}}} {n};\n" for n in names)


def prepare_source(c_source: str, header: Optional[str] = None) -> str:
    """The kernel with its #includes replaced by riscv_gemmini.h (and Exo's header, if given)."""
    parts = ['#include "riscv_gemmini.h"\n']
    if header is not None:
        parts.append(_INCLUDE.sub("", header))
    else:
        parts.append(_context_struct(c_source))
    parts.append("#line 1 \"kernel.c\"\n")
    parts.append(_INCLUDE.sub("", c_source))
    return "\n".join(parts)


_RUNTIME = '#define RG_DEFINE_RUNTIME\n#include "riscv_gemmini.h"\n' + r"""
void *memset(void *d, int c, size_t n) { unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }
void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *p = d; const unsigned char *q = s; while (n--) *p++ = *q++; return d; }
"""


def compile_elf(c_source: str, entry: str, workdir: str, header: Optional[str] = None,
                extra_flags: tuple = ()) -> str:
    """Build a static freestanding ELF whose entry point is `entry`; returns its path."""
    ksrc = os.path.join(workdir, "kernel.c")
    rsrc = os.path.join(workdir, "runtime.c")
    out = os.path.join(workdir, "kernel.elf")
    with open(ksrc, "w") as f:
        f.write(prepare_source(c_source, header))
    with open(rsrc, "w") as f:
        f.write(_RUNTIME)
    cmd = [GCC, *CFLAGS, *extra_flags, "-I", HERE, f"-Wl,-e,{entry}", "-Wl,--build-id=none",
           "-w", ksrc, rsrc, "-o", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{GCC} failed on {entry}:\n{p.stderr[-4000:]}")
    return out


_SIG = re.compile(r"\b(?:void|int)\s+(\w+)\s*\(([^)]*)\)\s*\{")


def _params(c_source: str, entry: str) -> list[str]:
    """'ptr', 'int' or 'float' for each parameter of `entry`."""
    for m in _SIG.finditer(c_source):
        if m.group(1) != entry:
            continue
        plist = m.group(2).strip()
        if plist in ("", "void"):
            return []
        kinds = []
        for p in plist.split(","):
            p = p.strip()
            if "*" in p or "[" in p:
                kinds.append("ptr")
            elif re.search(r"\b(float|double)\b", p):
                kinds.append("float")
            else:
                kinds.append("int")
        return kinds
    raise ValueError(f"no definition of '{entry}' found")


def count(c_source: str, entry: str, header: Optional[str] = None, keep: Optional[str] = None) -> Count:
    """Compile `c_source` and count what `entry` executes (see the module doc)."""
    why = missing()
    if why:
        raise RuntimeError(why)
    with tempfile.TemporaryDirectory(prefix="rvref_") as tmp:
        elf = compile_elf(c_source, entry, tmp, header)
        if keep:
            shutil.copy(elf, keep)
        return _run(elf, entry, _params(c_source, entry))


def _run(elf_path: str, entry: str, kinds: list[str]) -> Count:
    import unicorn as uc
    from unicorn import riscv_const as rv
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        segs = [(s["p_vaddr"], s["p_memsz"], s.data(), bool(s["p_flags"] & 1))
                for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        syms = {}
        funcs = []
        gp = 0
        for sec in elf.iter_sections():
            if sec.name == ".symtab":
                for s in sec.iter_symbols():
                    if s.name == "__global_pointer$":
                        gp = s["st_value"]
                    if s["st_info"]["type"] == "STT_FUNC" and s["st_size"]:
                        syms[s.name] = (s["st_value"], s["st_size"])
                        funcs.append((s["st_value"], s["st_size"], s.name))
        text_bytes = sum(sec["sh_size"] for sec in elf.iter_sections() if sec.name.startswith(".text"))
    if entry not in syms:
        raise RuntimeError(f"entry '{entry}' not in the binary")
    mu = uc.Uc(uc.UC_ARCH_RISCV, uc.UC_MODE_RISCV64)
    page = 0x1000
    rocc_addrs = []
    for vaddr, memsz, data, exe in segs:
        lo, hi = vaddr & ~(page - 1), (vaddr + memsz + page - 1) & ~(page - 1)
        mu.mem_map(lo, hi - lo)
        data = bytearray(data)
        if exe:
            for off in range(0, len(data) - 3, 4):
                w = int.from_bytes(data[off:off + 4], "little")
                if (w & 0x7F) == CUSTOM0:
                    data[off:off + 4] = NOP.to_bytes(4, "little")
                    rocc_addrs.append(vaddr + off)
        mu.mem_write(vaddr, bytes(data))
    mu.mem_map(SENTINEL, page)
    mu.mem_write(SENTINEL, (0x0000006F).to_bytes(4, "little"))  # j . (never reached)
    mu.mem_map(STACK_TOP - STACK_BYTES, STACK_BYTES)
    ints = [getattr(rv, f"UC_RISCV_REG_A{i}") for i in range(8)]
    flts = [getattr(rv, f"UC_RISCV_REG_FA{i}") for i in range(8)]
    ni = nf = 0
    for k, kind in enumerate(kinds):
        if kind == "float":
            mu.reg_write(flts[nf], 0)
            nf += 1
            continue
        val = 0
        if kind == "ptr":
            val = DATA_BASE + k * BUF_BYTES
            mu.mem_map(val, BUF_BYTES)
        if ni >= 8:
            raise RuntimeError("more than 8 integer arguments")
        mu.reg_write(ints[ni], val)
        ni += 1
    mu.reg_write(rv.UC_RISCV_REG_SP, STACK_TOP - 64)
    mu.reg_write(rv.UC_RISCV_REG_RA, SENTINEL)
    mu.reg_write(rv.UC_RISCV_REG_GP, gp)  # linker relaxation addresses small data from gp
    try:  # enable the FPU (mstatus.FS = dirty)
        mu.reg_write(rv.UC_RISCV_REG_MSTATUS, mu.reg_read(rv.UC_RISCV_REG_MSTATUS) | (3 << 13))
    except Exception:
        pass

    rocc_addrs.sort()
    funcs.sort()
    starts = [f[0] for f in funcs]
    blocks: dict[int, list] = {}   # block start -> [executions, size]

    def on_block(mu_, addr, size, _):
        b = blocks.get(addr)
        if b is None:
            blocks[addr] = [1, size]
        else:
            b[0] += 1

    mu.hook_add(uc.UC_HOOK_BLOCK, on_block)
    mu.emu_start(syms[entry][0], SENTINEL)
    total = rocc = 0
    per_fn: dict[str, int] = {}
    for addr, (n, size) in blocks.items():
        ins = n * (size // 4)
        total += ins
        lo = bisect.bisect_left(rocc_addrs, addr)
        hi = bisect.bisect_left(rocc_addrs, addr + size)
        rocc += n * (hi - lo)
        i = bisect.bisect_right(starts, addr) - 1
        name = funcs[i][2] if i >= 0 and addr < funcs[i][0] + funcs[i][1] else "?"
        per_fn[name] = per_fn.get(name, 0) + ins
    return Count(entry, total, rocc, syms[entry][1], text_bytes, per_fn)


def disassemble(c_source: str, entry: str, header: Optional[str] = None) -> str:
    with tempfile.TemporaryDirectory(prefix="rvref_") as tmp:
        elf = compile_elf(c_source, entry, tmp, header)
        return subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", elf], capture_output=True, text=True).stdout


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("entry", nargs="?")
    ap.add_argument("--header")
    ap.add_argument("--asm", action="store_true", help="print the disassembly too")
    args = ap.parse_args(argv)
    src = open(args.file).read()
    header = open(args.header).read() if args.header else None
    entry = args.entry
    if entry is None:
        names = [m.group(1) for m in _SIG.finditer(src)]
        entry = names[-1]
    if args.asm:
        print(disassemble(src, entry, header))
    c = count(src, entry, header)
    print(f"{entry}: {c.instructions} instructions executed ({c.rocc} RoCC), entry {c.static_bytes} B, "
          f"text {c.text_bytes} B, per function {c.per_function}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
