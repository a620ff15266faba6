"""Parse Gemmini C with the LALR grammar in gemmini_c.lark.

Preprocessor lines are blanked out before parsing (so line numbers stay
true); simple object-like ``#define NAME value`` macros are kept and handed
to the compiler as constants.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import CParseError

_GRAMMAR = Path(__file__).with_name("gemmini_c.lark")
_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)\s+(.+?)\s*$")
_NUMBER = re.compile(r"^\(?\s*(-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?))[uUlLfF]*\s*\)?$")

#: Friendly names for the grammar's terminals in "expected ..." messages.
_TOKEN_NAMES = {
    "SEMICOLON": "';'", "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'",
    "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "IDENT": "an identifier",
    "INT_LIT": "an integer", "FLOAT_LIT": "a number", "TYPENAME": "a type name",
    "ASSIGN_OP": "an assignment operator", "EQUAL": "'='", "STAR": "'*'",
    "$END": "end of file",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    # cache=True keeps the LALR tables in the temp directory between processes
    return Lark(_GRAMMAR.read_text(), parser="lalr", propagate_positions=False,
                maybe_placeholders=True, start="start", cache=True)


#: precedence (higher binds tighter) and the node each binary operator becomes
_BINARY = {
    "*": (10, "arith"), "/": (10, "arith"), "%": (10, "arith"),
    "+": (9, "arith"), "-": (9, "arith"),
    "<<": (8, "shift_op"), ">>": (8, "shift_op"),
    "<": (7, "compare"), "<=": (7, "compare"), ">": (7, "compare"), ">=": (7, "compare"),
    "==": (6, "compare"), "!=": (6, "compare"),
    "&": (5, "band"), "^": (4, "bxor"), "|": (3, "bor"), "&&": (2, "log_and"), "||": (1, "log_or"),
}
_KEEPS_OP = {"arith", "shift_op", "compare"}


def _nest(items: list) -> Tree:
    """Left-associative precedence climbing over [operand, op, operand, ...]."""
    pos = 0

    def climb(min_prec: int) -> Any:
        nonlocal pos
        lhs = items[pos]
        pos += 1
        while pos < len(items):
            op = items[pos]
            prec, kind = _BINARY[str(op)]
            if prec < min_prec:
                break
            pos += 1
            rhs = climb(prec + 1)
            lhs = Tree(kind, [lhs, op, rhs] if kind in _KEEPS_OP else [lhs, rhs])
        return lhs

    return climb(1)


def fold_binary(tree: Tree) -> Tree:
    """Turn every flat `binary` node into nested arith/compare/... nodes (in place)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        kids = node.children
        for i, ch in enumerate(kids):
            if isinstance(ch, Tree):
                if ch.data == "binary":
                    flat = []
                    for x in ch.children:
                        flat.append(x.children[0] if isinstance(x, Tree) and x.data == "binop" else x)
                    ch = kids[i] = _nest(flat)
                    # operands were already collected; walk the new subtree's leaves
                stack.append(ch)
    return tree


def preprocess(text: str) -> tuple[str, dict[str, str]]:
    """Blank preprocessor lines (keeping line numbers); return simple #defines."""
    defines: dict[str, str] = {}
    out = []
    continued = False
    for line in text.split("\n"):
        if continued or line.lstrip().startswith("#"):
            m = _DEFINE.match(line) if not continued else None
            if m and not line.rstrip().endswith("\\"):
                value = m.group(2).split("//")[0].strip()
                if _NUMBER.match(value):
                    defines[m.group(1)] = value
            continued = line.rstrip().endswith("\\")
            out.append("")
        else:
            out.append(line)
    return "\n".join(out), defines


def _expected(e: UnexpectedInput) -> str:
    names = sorted({_TOKEN_NAMES.get(t, t.lower() if t.isupper() and len(t) > 2 else t)
                    for t in (getattr(e, "expected", None) or getattr(e, "allowed", None) or ())})
    if not names:
        return ""
    if len(names) > 8:
        names = names[:8] + ["..."]
    return "; expected " + ", ".join(names)


def parse(text: str, filename: str = "<c>") -> tuple[Tree, dict[str, str]]:
    """Parse C text to a Lark tree; syntax errors become CParseError with a location."""
    if not isinstance(text, str):
        raise CParseError(f"C source must be text, got {type(text).__name__}", file=filename)
    clean, defines = preprocess(text)
    lines = text.split("\n")

    def src_line(n: int | None) -> str | None:
        return lines[n - 1] if n and 0 < n <= len(lines) else None

    try:
        return fold_binary(_parser().parse(clean)), defines
    except UnexpectedToken as e:
        tok = e.token
        what = "end of file" if tok.type == "$END" else f"'{tok}'"
        raise CParseError(f"syntax error: unexpected {what}{_expected(e)}", file=filename,
                          line=e.line if e.line != -1 else len(lines), column=e.column if e.column != -1 else None,
                          source_line=src_line(e.line)) from None
    except UnexpectedCharacters as e:
        ch = clean[e.pos_in_stream] if 0 <= e.pos_in_stream < len(clean) else "?"
        raise CParseError(f"syntax error: unexpected character {ch!r}{_expected(e)}", file=filename,
                          line=e.line, column=e.column, source_line=src_line(e.line)) from None
    except UnexpectedEOF as e:
        raise CParseError(f"syntax error: unexpected end of file{_expected(e)}", file=filename,
                          line=len(lines), column=None) from None
    except lark.exceptions.LarkError as e:  # anything else Lark may raise
        raise CParseError(f"syntax error: {e}", file=filename) from None
    except RecursionError:
        raise CParseError("expression nested too deeply to parse", file=filename) from None
