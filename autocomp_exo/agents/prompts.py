"""Prompt builders for the LLM agent (the Autocomp paper's plan and implement prompts).

Nothing here restates the hardware or the scheduling language: the ISA
summary is generated from `gemmini_isa` (`GemminiConfig.describe`,
`INSTRUCTIONS`, `SPELLINGS`, the local-address bits), the op reference from
the schedule whitelist (`schedule.describe_ops`, `schedule.INSTRUCTIONS`,
`MEMORIES`, `CONFIGS`), the menu from `autocomp_exo.menu`.

- `plan_messages(...)`: ISA summary, the proc (Exo's text), its Gemmini C in
  brief, hardware feedback from the timing model, the menu after dropout,
  rules, which iteration of how many; the answer names one menu option.
- `implement_messages(...)`: the plan, the proc, the op reference with
  examples, the macro moves of `autocomp_exo.moves` with the arguments valid
  on this proc and one worked example each applied to it
  (`llm_moves.Guide.text`), and the JSON format of steps; the answer is JSON.
  The plan prompt lists the same moves briefly (`llm_moves.brief`).
- `fix_messages(...)`: the implement conversation plus the failed answer and
  its error, asking for a corrected answer.
"""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence

__all__ = [
    "SYSTEM", "PLAN_MARK", "IMPLEMENT_MARK", "FIX_MARK", "isa_summary", "exo_instructions_in_c",
    "brief_c", "hardware_feedback", "phase_text", "op_reference", "names_reference",
    "plan_messages", "implement_messages", "fix_messages", "STEP_FORMAT", "PLAN_FORMAT", "allowed_ops",
    "MACRO_MARK",
]

# Markers that let tools (and the tests' scripted server) tell the prompts apart.
PLAN_MARK = "## Task: choose one optimization"
IMPLEMENT_MARK = "## Task: write the scheduling steps"
FIX_MARK = "## Your previous answer failed"

SYSTEM = ("You are an expert performance engineer for the Gemmini deep-learning accelerator and the Exo "
          "user-schedulable language. You optimize Exo procs for Gemmini by applying Exo scheduling "
          "primitives; every step is checked by Exo and every program is run on a bit-exact, "
          "cycle-approximate Gemmini simulator.")


# --------------------------------------------------------------------------- #
# Hardware
# --------------------------------------------------------------------------- #

def isa_summary(config: Any = None) -> str:
    """The Gemmini ISA, generated from gemmini_isa's tables and configuration."""
    from gemmini_isa import ACC_BIT, ACCUMULATE_BIT, GARBAGE_ADDR, INSTRUCTIONS, RAW_BIT, SPELLINGS
    from gemmini_isa.config import GemminiConfig, default

    cfg = config or default()
    lines = [
        f"Gemmini: a {cfg.dim}x{cfg.dim} systolic array (int8 inputs, int32 accumulation), "
        f"a scratchpad of {cfg.sp_rows} rows x {cfg.dim} int8 ({cfg.sp_banks} banks of {cfg.sp_bank_rows}) and an "
        f"accumulator of {cfg.acc_rows} rows x {cfg.dim} int32 ({cfg.acc_banks} banks of {cfg.acc_bank_rows}). "
        "A CPU issues commands to the load, execute and store units through a reservation station; the "
        "units run in parallel and wait for each other only on the local rows they share.",
        f"Local addresses: bit 31 (0x{ACC_BIT:08x}) selects the accumulator, bit 30 (0x{ACCUMULATE_BIT:08x}) "
        f"accumulates instead of overwriting, bit 29 (0x{RAW_BIT:08x}) reads raw int32; the row is in the low "
        f"bits; 0x{GARBAGE_ADDR:08x} means no operand.",
        "",
        "Instructions (unit; parameters; C names):",
    ]
    by_op: dict[str, list[str]] = {}
    for s in SPELLINGS:
        if s.dialect == "exo":
            by_op.setdefault(s.op, []).append(s.name)
    for ins in INSTRUCTIONS.values():
        if ins.unit in _NOT_PRODUCED:   # runtime calls, the LOOP_WS FSM: no scheduling op produces them
            continue
        params = ", ".join(p.name for p in ins.params)
        names = ", ".join(dict.fromkeys(by_op.get(ins.op, [])))
        lines.append(f"- {ins.op} [{ins.unit}]({params}): {ins.doc}" + (f" C: {names}" if names else ""))
        if ins.unit in ("load", "execute", "store"):
            for p in ins.params:
                lines.append(f"    {p.name}: {p.doc}")
    lines.append("")
    lines.append("Hardware parameters (name = value: meaning):")
    for name, _default, _source, doc in GemminiConfig.describe():
        if name.startswith(_NOT_PRODUCED_PARAMS):
            continue
        lines.append(f"- {name} = {getattr(cfg, name)}: {_public(doc)}")
    return "\n".join(lines)


_NOT_PRODUCED = ("runtime", "fsm")
_NOT_PRODUCED_PARAMS = ("fsm_",)
_INTERNAL = re.compile(r"(fitted|calibrat|benchmarks/|GEMMINI(_RTL)?\.md|measured against|see tests?/)", re.I)


def _public(doc: str) -> str:
    """A parameter's doc without the project's internal notes (calibration, sources):
    parentheticals that cite them are dropped, and everything from the first
    sentence that does."""
    out = re.sub(r"\s*\((?:[^()]|\([^()]*\))*\)", lambda m: "" if _INTERNAL.search(m.group(0)) else m.group(0),
                 doc.strip())
    keep = []
    for sent in re.split(r"(?<=\.)\s+(?=[A-Z])", out):
        if _INTERNAL.search(sent):
            break
        keep.append(sent)
    return " ".join(keep).strip() or out.split(".")[0]


_RELYING = re.compile(r'/\* relying on the following instruction\.\.\."\s*\n(.*?)\*/', re.S)


def exo_instructions_in_c(c_source: str) -> list[str]:
    """The Exo instruction procs a C file relies on and the C each lowers to
    (from the comments Exo writes), one line each."""
    out = []
    for block in _RELYING.findall(c_source or ""):
        parts = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        if parts:
            out.append(f"{parts[0]}  ->  {' '.join(parts[1:])}")
    return out


def brief_c(c_source: Optional[str], max_lines: int = 80) -> str:
    """The entry function's C without comments, includes and blank lines, cut to max_lines."""
    if not c_source:
        return "(not available)"
    src = re.sub(r"/\*.*?\*/", "", c_source, flags=re.S)
    lines = []
    for ln in src.splitlines():
        s = ln.rstrip()
        if not s.strip() or s.lstrip().startswith(("#include", "//")):
            continue
        lines.append(s)
    if len(lines) > max_lines:
        more = len(lines) - max_lines
        lines = lines[:max_lines] + [f"... ({more} more lines)"]
    return "\n".join(lines)


def _pct(x: float, total: float) -> str:
    return f"{100.0 * x / total:.1f}%" if total else "?"


def hardware_feedback(m: Any, config: Any = None, bottleneck: Optional[str] = None) -> str:
    """Cycles, utilization, per-unit busy and wait causes, local memory use, from a Measurement."""
    from gemmini_isa.config import default

    cfg = config or default()
    if m is None:
        return "(no measurement)"
    if not getattr(m, "ok", False):
        return f"the program failed at {m.stage}: {m.error}"
    cyc = float(m.cycles or 0)
    lines = []
    if m.macs:
        ideal = cfg.ideal_cycles(m.macs)
        lines.append(f"cycles: {m.cycles:,} (the array alone would need {ideal:,.0f}: utilization "
                     f"{100.0 * (m.utilization or ideal / cyc):.1f}%)")
    else:
        lines.append(f"cycles: {m.cycles:,}")
    if m.units:
        lines.append("units (busy cycles and their share of all cycles; then cycles by cause):")
        for unit, d in m.units.items():
            if not isinstance(d, dict):
                continue
            parts = []
            if "busy" in d:
                parts.append(f"busy {int(d['busy']):,} ({_pct(float(d['busy']), cyc)})")
            if "commands" in d:
                parts.append(f"{int(d['commands']):,} commands")
            for k, v in d.items():
                if k in ("busy", "idle", "commands"):
                    continue
                parts.append(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, (int, float)) else f"{k} {v}")
            lines.append(f"  {unit}: " + ", ".join(parts))
    if m.stalls:
        lines.append("stall cycles by cause: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in m.stalls.items()))
    if m.instructions:
        lines.append("instructions: " + ", ".join(f"{k} {v:,}" for k, v in m.instructions.items()))
    if m.sp_rows_used is not None:
        lines.append(f"scratchpad rows used: {m.sp_rows_used:,} of {cfg.sp_rows:,}")
    if m.acc_rows_used is not None:
        lines.append(f"accumulator rows used: {m.acc_rows_used:,} of {cfg.acc_rows:,}")
    if m.dram_bytes:
        lines.append("DRAM bytes: " + ", ".join(f"{k} {v:,}" for k, v in m.dram_bytes.items()))
    if bottleneck and bottleneck != "unknown":
        lines.append(f"what limits it most (from the figures above): {bottleneck}")
    return "\n".join(lines)


def phase_text(iteration: Optional[int], iterations: Optional[int]) -> str:
    if iteration is None:
        return "This is one step of an iterative search; later steps can build on this one."
    if iterations:
        return (f"This is iteration {iteration} of {iterations} of the search. Early iterations suit large "
                "structural changes (tiling, reuse, buffering); late ones fine-tuning (unrolling, hoisting).")
    return (f"This is iteration {iteration} of the search (it runs until its sample budget is used); later "
            "iterations can build on this one.")


# --------------------------------------------------------------------------- #
# Scheduling ops
# --------------------------------------------------------------------------- #

def _encoding_doc() -> str:
    """How Exo objects, cursors and gaps are written, from the schedule module's own doc."""
    from .. import schedule as S

    doc = S.__doc__ or ""
    m = re.search(r"(Exo objects are \*named\*.*?)(?:\n\s*\n\s*Applying never)", doc, re.S)
    if not m:
        return ""
    text = re.sub(r"\s*\(EXO\.md[^)]*\)", "", m.group(1).strip())
    return text.replace("``", "`")


def _nested_pair(facts: Any) -> Optional[str]:
    """'outer inner' of two directly nested loops of the proc (a `ProcFacts`;
    for the reorder example)."""
    if facts is None:
        return None
    for n in facts.loops():
        if len(n.body) == 1 and n.body[0].kind == "for":
            return f"{n.name} {n.body[0].name}"
    return None


def op_reference(ops: Optional[Sequence[str]] = None, facts: Any = None, skip: Sequence[str] = ()) -> str:
    """Every whitelisted op (but ``skip``: the macro moves when their own
    section describes them) with its signature, doc and an example that is
    valid as written (names from the current proc where one is needed); the
    argument kinds."""
    import json as _json
    from ..schedule import KINDS, OPS, WHITELIST

    examples = {
        # the table's "ko % 2" breaks the rule against % in indices; "ii j" is not a pair of every proc
        "expand_dim": {"op": "expand_dim", "args": ["a", 4, "ko"]},
    }
    pair = _nested_pair(facts)
    if pair:
        examples["reorder_loops"] = {"op": "reorder_loops", "args": [pair]}
    lines = []
    names = [n for n in (ops or WHITELIST) if n not in skip]
    for name in names:
        sp = OPS[name]
        unsafe = f"  (unsafe flags: {', '.join(sp.unsafe)})" if sp.unsafe else ""
        lines.append(f"- {sp.signature()}: {sp.doc}{unsafe}")
        lines.append(f"    e.g. {_json.dumps(examples.get(name, sp.example))}")
    kinds = sorted({p.kind for n in names for p in OPS[n].params})
    lines.append("Argument kinds:")
    for k in kinds:
        lines.append(f"  {k}: {KINDS[k].doc}")
    return "\n".join(lines)


def names_reference() -> str:
    from ..schedule import CONFIGS, INSTRUCTIONS, MEMORIES

    return "\n".join([
        f"memories ({{\"mem\": ...}}): {', '.join(MEMORIES)}",
        f"configs ({{\"config\": ...}}): {', '.join(CONFIGS)}",
        f"instructions ({{\"instr\": ...}}): {', '.join(INSTRUCTIONS)}",
    ])


MACRO_MARK = "## Macro moves on this proc"

STEP_FORMAT = """You may reason briefly first (which loops and buffers, in which order). End your answer with
one JSON object in a ```json fence; only the last one counts:
{"steps": [{"op": "<op name>", "args": [<positional arguments>], "kwargs": {<keyword arguments>}}, ...]}
The steps are applied in order to the proc shown, after everything already applied. Arguments are JSON
values only: strings for patterns and Exo expressions, integers, true/false, null, lists, and the tagged
objects above for memories, instructions, configs, cursors and gaps."""

PLAN_FORMAT = """You may reason briefly first. End your answer with these two lines:
OPTION: <the key of one option of the menu above, as written in its brackets>
PLAN: <what to change in the proc and why it is faster, in a few sentences>"""


# --------------------------------------------------------------------------- #
# Messages
# --------------------------------------------------------------------------- #

def _section(title: str, body: str) -> str:
    return f"## {title}\n{body.strip()}\n"


def allowed_ops(allow_unsafe: bool = False) -> list[str]:
    """The whitelisted ops offered to the model (without the unchecked ones unless allowed)."""
    from ..schedule import OPS, WHITELIST

    return [n for n in WHITELIST if allow_unsafe or "*" not in OPS[n].unsafe]


def plan_messages(*, proc_text: str, c_source: Optional[str], measurement: Any, menu: Sequence[Any],
                  iteration: Optional[int] = None, iterations: Optional[int] = None, config: Any = None,
                  bottleneck: Optional[str] = None, c_lines: int = 80, workload: Optional[str] = None,
                  allow_unsafe: bool = False, macros: Optional[str] = None) -> list[dict]:
    """``macros``: the short list of the macro moves that apply to this proc
    (`llm_moves.Guide.brief`), so a plan can name them."""
    from ..menu import describe

    parts = [
        _section("Gemmini", isa_summary(config)),
        _section("Current program: the Exo proc" + (f" for {workload}" if workload else ""), proc_text or "(not available)"),
    ]
    instrs = exo_instructions_in_c(c_source or "")
    if instrs:
        parts.append(_section("Exo instructions it uses and the Gemmini C they lower to", "\n".join(instrs)))
    parts.append(_section("Its Gemmini C (brief)", brief_c(c_source, c_lines)))
    parts.append(_section("Hardware feedback from the simulator", hardware_feedback(measurement, config, bottleneck)))
    if macros:
        parts.append(_section("Macro moves that apply to this proc (each is one scheduling step)", macros))
    parts.append(_section("Optimization menu (options available now)", describe(menu)))
    parts.append(_section("Rules", "\n".join([
        "- Choose exactly one option of the menu above and describe one transformation of this proc.",
        "- It must be expressible with Exo's scheduling ops: " + ", ".join(allowed_ops(allow_unsafe)) + ".",
        "- The program must stay correct (bit-exact output); Exo checks each step.",
        "- Local buffers must fit the scratchpad and accumulator sizes above.",
        "- Do not introduce % or / into buffer indices (Exo 1.0.0 prints them wrongly); split loops instead.",
        "- Name loops, buffers and calls as they appear in the proc.",
    ])))
    parts.append(_section(PLAN_MARK[3:], phase_text(iteration, iterations) + "\n" + PLAN_FORMAT))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def implement_messages(*, plan_option: str, plan_title: str, plan_text: str, proc_text: str,
                       ops: Optional[Sequence[str]] = None, allow_unsafe: bool = False,
                       workload: Optional[str] = None, facts: Any = None,
                       macros: Optional[str] = None) -> list[dict]:
    """``facts``: the `ProcFacts` of the proc (names for the examples), or None;
    ``macros``: the macro-move section for this proc (`llm_moves.Guide.text`:
    valid arguments and worked examples applied to it), or None."""
    from ..moves import MOVES

    rules = [
        "- Write the fewest steps that carry out the plan; each must apply to the proc as it is after the previous ones.",
        "- Loop names change when you split or rename loops: later steps must use the new names.",
        '- "name #n" picks the n-th match (0-based); use it when a pattern matches several statements.',
        "- Do not introduce % or / into buffer indices.",
    ]
    if not allow_unsafe:
        rules.append("- Do not use unsafe flags (unsafe_disable_check(s)) or add_unsafe_guard: they are rejected.")
    if macros:
        rules.insert(0, "- Prefer the macro moves: one step each, with the arguments listed for this proc; "
                        "a structural change (tiling, an operand resident, buffering) is one or a few moves.")
    enc = _encoding_doc()
    parts = [
        _section("Plan", f"option: {plan_option} ({plan_title})\n{plan_text or '(no details)'}"),
        _section("Current program: the Exo proc" + (f" for {workload}" if workload else ""), proc_text or "(not available)"),
    ]
    parts.append(_section("Scheduling ops you may use (nothing else is accepted)" + (": these primitives and the"
                          " macro moves below" if macros else ""),
                          op_reference(ops or allowed_ops(allow_unsafe), facts, skip=tuple(MOVES) if macros else ())))
    if macros:
        parts.append(_section(MACRO_MARK[3:] + " (the worked examples were applied to the proc above)", macros))
    if enc:
        parts.append(_section("How arguments are written", enc))
    parts.append(_section("Names you may use", names_reference()))
    parts.append(_section("Rules", "\n".join(rules)))
    parts.append(_section(IMPLEMENT_MARK[3:], STEP_FORMAT))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def fix_messages(messages: list[dict], answer: str, error: str, max_answer: int = 4000,
                 kind: str = "implement", options: Optional[Sequence[str]] = None) -> list[dict]:
    """The conversation plus the failed answer and its error, asking again in
    the form of its kind ("plan": the OPTION/PLAN lines; "implement": the JSON steps)."""
    ans = answer if len(answer) <= max_answer else answer[:max_answer] + "\n... (cut)"
    if kind == "plan":
        keys = f" (one of: {', '.join(options)})" if options else ""
        ask = ("Answer again for the same proc and menu. End with the line 'OPTION: <key>'" + keys
               + " and then 'PLAN: <what to do>'.")
    else:
        ask = ("Write a corrected answer for the same plan: the steps apply to the proc shown in the task "
               "(after the steps already applied there), ending with one ```json {\"steps\": [...]} fence.")
    return list(messages) + [
        {"role": "assistant", "content": ans},
        {"role": "user", "content": f"{FIX_MARK}\n{error.strip()}\n\n{ask}"},
    ]
