"""C types of the supported subset: integer widths and signedness, float,
pointers, arrays and the Exo context struct, with the conversions C applies."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Optional


@dataclass(frozen=True)
class CType:
    kind: str  # "int", "float", "ptr", "array", "void", "ctx", "dyn"
    bits: int = 0
    signed: bool = True
    elem: Optional["CType"] = None
    dims: tuple[int, ...] = ()
    is_bool: bool = False
    name: str = ""

    # ---- classification ------------------------------------------------
    @property
    def is_int(self) -> bool:
        return self.kind == "int" or self.kind == "dyn"

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_arith(self) -> bool:
        return self.kind in ("int", "float", "dyn")

    @property
    def is_pointer_like(self) -> bool:
        return self.kind in ("ptr", "array")

    @property
    def lo(self) -> int:
        if self.is_bool:
            return 0
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        if self.is_bool:
            return 1
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def sizeof(self) -> int:
        if self.kind == "int":
            return 1 if self.is_bool else self.bits // 8
        if self.kind == "float":
            return self.bits // 8
        if self.kind in ("ptr", "ctx"):
            return 8
        if self.kind == "array":
            return prod(self.dims) * self.elem.sizeof()
        if self.kind == "dyn":
            return 8
        raise TypeError(f"sizeof({self}) is not defined")

    def decay(self) -> "CType":
        """Array-to-pointer decay: T[a][b] -> pointer to T[b]."""
        if self.kind != "array":
            return self
        if len(self.dims) == 1:
            return ptr(self.elem)
        return ptr(CType("array", elem=self.elem, dims=self.dims[1:]))

    def __str__(self) -> str:  # for messages
        if self.kind == "int":
            if self.is_bool:
                return "bool"
            return f"{'' if self.signed else 'u'}int{self.bits}_t"
        if self.kind == "float":
            return "float" if self.bits == 32 else "double"
        if self.kind == "ptr":
            return f"{self.elem}*"
        if self.kind == "array":
            return f"{self.elem}" + "".join(f"[{d}]" for d in self.dims)
        return self.name or self.kind


def int_t(bits: int, signed: bool) -> CType:
    return CType("int", bits, signed)


def ptr(elem: CType) -> CType:
    return CType("ptr", elem=elem)


def array(elem: CType, dims: tuple[int, ...]) -> CType:
    return CType("array", elem=elem, dims=tuple(dims))


INT8, UINT8 = int_t(8, True), int_t(8, False)
INT16, UINT16 = int_t(16, True), int_t(16, False)
INT32, UINT32 = int_t(32, True), int_t(32, False)
INT64, UINT64 = int_t(64, True), int_t(64, False)
BOOL = CType("int", 8, False, is_bool=True)
FLOAT = CType("float", 32)
DOUBLE = CType("float", 64)
VOID = CType("void")
CTX = CType("ctx", name="context struct")
DYN = CType("dyn", 64, True, name="context field")

_NAMED = {
    "int8_t": INT8, "uint8_t": UINT8, "int16_t": INT16, "uint16_t": UINT16,
    "int32_t": INT32, "uint32_t": UINT32, "int64_t": INT64, "uint64_t": UINT64,
    "int_fast8_t": INT8, "uint_fast8_t": UINT8,
    # RV64 (and x86-64 glibc): the fast 16/32-bit types are 64 bits wide.
    "int_fast16_t": INT64, "uint_fast16_t": UINT64,
    "int_fast32_t": INT64, "uint_fast32_t": UINT64,
    "int_fast64_t": INT64, "uint_fast64_t": UINT64,
    "int_least8_t": INT8, "uint_least8_t": UINT8, "int_least16_t": INT16,
    "uint_least16_t": UINT16, "int_least32_t": INT32, "uint_least32_t": UINT32,
    "int_least64_t": INT64, "uint_least64_t": UINT64,
    "size_t": UINT64, "uintptr_t": UINT64, "intptr_t": INT64, "ptrdiff_t": INT64,
    "elem_t": INT8, "acc_t": INT32, "full_t": INT64,
    "scale_t": FLOAT, "scale_acc_t": FLOAT, "acc_scale_t": FLOAT,
    "float": FLOAT, "double": DOUBLE, "bool": BOOL, "_Bool": BOOL, "void": VOID,
}


def from_words(words: list[str]) -> CType | None:
    """The type named by a sequence of type words (`unsigned long long`, `int8_t`,
    `matmul_Context`); None when the words make no type we support."""
    if len(words) == 1:
        w = words[0]
        if w in _NAMED:
            return _NAMED[w]
        if w.endswith("_Context"):
            return CTX
    signed = True
    longs = 0
    base = None
    for w in words:
        if w == "unsigned":
            signed = False
        elif w == "signed":
            signed = True
        elif w == "long":
            longs += 1
        elif w in ("int", "char", "short"):
            if base is not None:
                return None
            base = w
        elif w == "double" and longs:
            return DOUBLE
        else:
            return None
    if base == "char":
        return int_t(8, signed)
    if base == "short":
        return int_t(16, signed)
    return int_t(64 if longs else 32, signed)


def promote(t: CType) -> CType:
    """Integer promotion: anything narrower than int becomes int."""
    if t.kind == "int" and (t.bits < 32 or t.is_bool):
        return INT32
    if t.kind == "dyn":
        return INT64
    return t


def common(a: CType, b: CType) -> CType:
    """The usual arithmetic conversions."""
    if a.is_float or b.is_float:
        if (a.is_float and a.bits == 64) or (b.is_float and b.bits == 64):
            return DOUBLE
        return FLOAT
    a, b = promote(a), promote(b)
    if a.bits != b.bits:
        big, small = (a, b) if a.bits > b.bits else (b, a)
        return big
    if a.signed and b.signed:
        return a
    return int_t(a.bits, False)
