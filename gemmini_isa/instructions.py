"""The Gemmini instruction set as data.

Each `Instruction` is one operation of the machine with its canonical argument
list. Each `Spelling` is one C name that reaches the simulator (Exo's
``gemmini_extended_*`` macros, gemmini.h's short macros, or the short dialect
of the Autocomp paper) and says how its call arguments map onto the canonical
list. The simulator, the prompts and the docs read these tables; nothing else
restates them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

# ---- local address encoding (GEMMINI.md section 2) -----------------------
ACC_BIT = 1 << 31          #: 1 = accumulator, 0 = scratchpad
ACCUMULATE_BIT = 1 << 30   #: writing the accumulator: += instead of =
RAW_BIT = 1 << 29          #: reading the accumulator: raw int32, no scale/activation
ROW_MASK = (1 << 29) - 1   #: the row index lives in the bits below the flags
GARBAGE_ADDR = 0xFFFFFFFF  #: "no operand"


@dataclass(frozen=True)
class LocalAddress:
    """A decoded 32-bit local operand."""

    garbage: bool
    acc: bool
    accumulate: bool
    raw: bool
    row: int


def decode_local(addr: int) -> LocalAddress:
    """Split a 32-bit local address into its flag bits and row."""
    addr &= 0xFFFFFFFF
    if addr == GARBAGE_ADDR:
        return LocalAddress(True, False, False, False, 0)
    return LocalAddress(
        False,
        bool(addr & ACC_BIT),
        bool(addr & ACCUMULATE_BIT),
        bool(addr & RAW_BIT),
        addr & ROW_MASK,
    )


# ---- constants the C code may name ---------------------------------------
CONSTANTS: dict[str, Union[int, float]] = {
    "WS": 1,
    "OS": 0,
    "WEIGHT_STATIONARY": 1,
    "OUTPUT_STATIONARY": 0,
    "NO_ACTIVATION": 0,
    "RELU": 1,
    "GARBAGE_ADDR": GARBAGE_ADDR,
    "DIM": 16,
    "NULL": 0,
    "true": 1,
    "false": 0,
    "MVIN_SCALE_IDENTITY": 1.0,
    "ACC_SCALE_IDENTITY": 1.0,
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "dram" (pointer/address), "local" (32-bit local address), "int", "float", "bool"
    doc: str


@dataclass(frozen=True)
class Instruction:
    """One machine operation with its canonical argument list."""

    op: str
    unit: str  # "load", "execute", "store", "sync" (fence/flush), "fsm", "runtime"
    params: tuple[Param, ...]
    doc: str


def _params(*spec: tuple[str, str, str]) -> tuple[Param, ...]:
    return tuple(Param(*s) for s in spec)


# gemmini_loop_conv_ws's 54 arguments in order (GEMMINI_CONV.md section 3)
_LOOP_CONV_WS_PARAMS = (
    ("batch_size", "int", "layer: images"),
    ("in_row_dim", "int", "layer: input rows (DRAM address arithmetic only)"),
    ("in_col_dim", "int", "layer: input columns"),
    ("in_channels", "int", "layer: input channels"),
    ("out_channels", "int", "layer: output channels"),
    ("out_row_dim", "int", "layer: output rows"),
    ("out_col_dim", "int", "layer: output columns"),
    ("pool_out_row_dim", "int", "layer: pooled output rows"),
    ("pool_out_col_dim", "int", "layer: pooled output columns"),
    ("stride", "int", "convolution stride (the compute's A row stride, set by config_ex)"),
    ("padding", "int", "layer zero padding"),
    ("kernel_dim", "int", "layer kernel size"),
    ("kernel_dilation", "int", "kernel dilation"),
    ("pool_size", "int", "pooling window"),
    ("pool_stride", "int", "pooling stride"),
    ("pool_padding", "int", "pooling padding"),
    ("batches", "int", "tile: images"),
    ("porows", "int", "tile: pooled output rows"),
    ("pocols", "int", "tile: pooled output columns"),
    ("pochs", "int", "tile: output channels"),
    ("krows", "int", "tile: kernel rows"),
    ("kcols", "int", "tile: kernel columns"),
    ("kchs", "int", "tile: input channels"),
    ("lpad", "int", "zero pad left of the tile's input window (pixels)"),
    ("rpad", "int", "zero pad right"),
    ("upad", "int", "zero pad above"),
    ("dpad", "int", "zero pad below"),
    ("plpad", "int", "pooling pad left (output pixels)"),
    ("prpad", "int", "pooling pad right"),
    ("pupad", "int", "pooling pad above"),
    ("pdpad", "int", "pooling pad below"),
    ("orows", "int", "tile: output rows before pooling"),
    ("ocols", "int", "tile: output columns before pooling"),
    ("weights", "dram", "weights at the tile origin; NULL skips the weight loads"),
    ("output", "dram", "output at the tile origin; NULL leaves the sums in the accumulator"),
    ("bias", "dram", "int32 bias at the tile's first channel; NULL skips the bias loads"),
    ("input", "dram", "input at the tile origin; NULL skips the input loads"),
    ("no_bias", "bool", "load zeros instead of a bias"),
    ("no_pool", "bool", "no pooling"),
    ("downsample", "bool", "read every second input row and column"),
    ("wrot180", "bool", "kernel mirrored in both axes"),
    ("input_dilated", "bool", "zeros inserted between input pixels"),
    ("activation", "int", "activation (2 bits)"),
    ("trans_output_1203", "bool", "output stored [row][col][batch][ch]"),
    ("trans_weight_1203", "bool", "weights stored [in_ch][krow][kcol][out_ch]"),
    ("trans_weight_0132", "bool", "weights stored [krow][kcol][out_ch][in_ch]"),
    ("trans_input_3120", "bool", "input stored CHWN"),
    ("max_pixels_per_row", "int", "kernel columns packed into one compute (1 = none)"),
    ("in_stride", "int", "input DRAM row stride (elements)"),
    ("weight_stride", "int", "weight DRAM row stride (elements)"),
    ("out_stride", "int", "output DRAM row stride (elements)"),
    ("dw", "bool", "depthwise"),
    ("a_spad_id", "int", "0: the loop slot's half for inputs; 1 or 2 forces that half"),
    ("b_spad_id", "int", "0: the loop slot's half for weights; 1 or 2 forces that half"),
)

INSTRUCTIONS: dict[str, Instruction] = {
    i.op: i
    for i in [
        Instruction("config_ex", "execute", _params(
            ("dataflow", "int", "0 = output-stationary (OS), 1 = weight-stationary (WS)"),
            ("act", "int", "activation for OS results: 0 none, 1 ReLU"),
            ("shift", "int", "OS only: rounding right shift of results"),
            ("a_stride", "int", "compute reads A row r at A + r * a_stride"),
            ("a_transpose", "bool", "transpose A"),
            ("b_transpose", "bool", "transpose B"),
        ), "Set the dataflow and array options; waits for the array to drain."),
        Instruction("config_ld", "load", _params(
            ("stride", "int", "DRAM row stride in bytes"),
            ("scale", "float", "float32 scale applied to int8 loads"),
            ("shrunk", "bool", "accumulator loads of int8 data (unused by Exo's GEMMs)"),
            ("block_stride", "int", "local rows between the dim-wide column blocks of one mvin"),
            ("id", "int", "which mvin it configures: 0 mvin, 1 mvin2, 2 mvin3"),
        ), "Configure one of the three load streams."),
        Instruction("config_st", "store", _params(
            ("stride", "int", "DRAM row stride in bytes"),
            ("act", "int", "activation applied by mvout: 0 none, 1 ReLU"),
            ("scale", "float", "float32 scale applied by mvout to accumulator data"),
        ), "Configure mvout."),
        Instruction("mvin", "load", _params(
            ("id", "int", "load stream (0, 1, 2)"),
            ("dram", "dram", "DRAM source address; 0 writes zeros"),
            ("local", "local", "destination local address"),
            ("cols", "int", "columns per row (int8 <= 64 into the scratchpad, int32 <= 16 into the accumulator)"),
            ("rows", "int", "rows (<= 16)"),
        ), "Move a rows x cols block from DRAM into the scratchpad or accumulator."),
        Instruction("preload", "execute", _params(
            ("b", "local", "weights (WS) or initial partial sums (OS); garbage keeps the current weights"),
            ("c", "local", "where the next compute writes; bit 30 = accumulate; garbage discards"),
            ("b_cols", "int", "columns of B"),
            ("b_rows", "int", "rows of B"),
            ("c_cols", "int", "columns of C written"),
            ("c_rows", "int", "rows of C written"),
        ), "Load the stationary operand and name the output of the next compute."),
        Instruction("compute_preloaded", "execute", _params(
            ("a", "local", "A operand"),
            ("d", "local", "bias D added to the result; garbage = zeros"),
            ("a_cols", "int", "columns of A"),
            ("a_rows", "int", "rows of A"),
            ("d_cols", "int", "columns of D"),
            ("d_rows", "int", "rows of D"),
        ), "C = A x B (+ D) with the weights just preloaded."),
        Instruction("compute_accumulated", "execute", _params(
            ("a", "local", "A operand"),
            ("d", "local", "bias D; garbage = zeros"),
            ("a_cols", "int", "columns of A"),
            ("a_rows", "int", "rows of A"),
            ("d_cols", "int", "columns of D"),
            ("d_rows", "int", "rows of D"),
        ), "C = A x B (+ D) reusing the weights already in the array."),
        Instruction("mvout", "store", _params(
            ("dram", "dram", "DRAM destination address"),
            ("local", "local", "source local address (bit 29 = raw int32)"),
            ("cols", "int", "columns"),
            ("rows", "int", "rows (<= 16)"),
        ), "Move a block from the accumulator (scaled, activated, saturated) or scratchpad to DRAM."),
        Instruction("fence", "sync", (), "Block the CPU until every queued Gemmini instruction has finished."),
        Instruction("flush", "sync", _params(("skip", "int", "ignored")), "Flush the TLB (no effect on data)."),
        Instruction("loop_ws", "fsm", _params(
            ("I", "int", "rows of A / C in dim tiles"),
            ("J", "int", "columns of B / C in dim tiles"),
            ("K", "int", "inner dimension in dim tiles"),
            ("pad_I", "int", "zero padding of the last I tile"),
            ("pad_J", "int", "zero padding of the last J tile"),
            ("pad_K", "int", "zero padding of the last K tile"),
            ("A", "dram", "A in DRAM"),
            ("B", "dram", "B in DRAM"),
            ("D", "dram", "bias in DRAM, NULL for none"),
            ("C", "dram", "C in DRAM, NULL to leave results in the accumulator"),
            ("A_stride", "int", "A row stride in elements"),
            ("B_stride", "int", "B row stride in elements"),
            ("D_stride", "int", "D row stride in elements (0 broadcasts one row)"),
            ("C_stride", "int", "C row stride in elements"),
            ("A_transpose", "bool", "A is stored transposed"),
            ("B_transpose", "bool", "B is stored transposed"),
            ("full_C", "bool", "store raw int32 C"),
            ("low_D", "bool", "bias is int8"),
            ("ex_accumulate", "bool", "add to what the accumulator already holds"),
            ("act", "int", "activation of the stores"),
            ("a_spad_id", "int", "which load stream reads A"),
            ("b_spad_id", "int", "which load stream reads B"),
            ("is_resadd", "bool", "residual add mode (unsupported)"),
        ), "The hardware FSM: one call issues a whole tiled matmul for a tile that fits half the local memories."),
        Instruction("loop_conv_ws", "fsm", _params(*_LOOP_CONV_WS_PARAMS),
                    "The hardware conv FSM (LoopConv): one call issues a whole tiled convolution (bias, input "
                    "and weight loads, preload/compute pairs, stores) for a tile that fits half the local "
                    "memories."),
        Instruction("gemm_malloc", "runtime", _params(("bytes", "int", "bytes to allocate")),
                    "Allocate bytes/16 scratchpad rows; returns the first row."),
        Instruction("gemm_free", "runtime", _params(("addr", "int", "row returned by gemm_malloc")),
                    "Free a scratchpad allocation."),
        Instruction("gemm_acc_malloc", "runtime", _params(("bytes", "int", "bytes to allocate")),
                    "Allocate bytes/64 accumulator rows; returns row | 0x80000000."),
        Instruction("gemm_acc_free", "runtime", _params(("addr", "int", "address returned by gemm_acc_malloc")),
                    "Free an accumulator allocation."),
    ]
}

#: An argument of a spelling: an index into the C call's arguments, or a constant.
ArgSource = Union[int, tuple]


@dataclass(frozen=True)
class Spelling:
    """One C name for an instruction and how its arguments map onto the canonical list.

    ``args[i]`` says where canonical parameter i comes from: an int is the
    index of the call argument, ``("const", v)`` a fixed value and ``("dim",)``
    the array size DIM of the configuration.
    """

    name: str
    dialect: str  # "exo" (gemmini.h / Exo output), "short" (Autocomp dialect)
    op: str
    args: tuple[ArgSource, ...]

    @property
    def arity(self) -> int:
        return sum(1 for a in self.args if isinstance(a, int))


_C = lambda v: ("const", v)  # noqa: E731
_DIM = ("dim",)

SPELLINGS: tuple[Spelling, ...] = (
    # config_ex
    Spelling("gemmini_extended_config_ex", "exo", "config_ex", (0, 1, 2, 3, 4, 5)),
    Spelling("gemmini_config_ex", "exo", "config_ex", (0, 1, 2, _C(1), _C(0), _C(0))),
    Spelling("config_ex", "short", "config_ex", (0, 1, _C(0), 2, 3, 4)),
    # config_ld
    Spelling("gemmini_extended4_config_ld", "exo", "config_ld", (0, 1, 2, 3, 4)),
    Spelling("gemmini_extended3_config_ld", "exo", "config_ld", (0, 1, 2, _DIM, 3)),
    Spelling("gemmini_extended2_config_ld", "exo", "config_ld", (0, 1, 2, _DIM, _C(0))),
    Spelling("gemmini_config_ld", "exo", "config_ld", (0, _C(1.0), _C(0), _DIM, _C(0))),
    Spelling("config_ld", "short", "config_ld", (0, 1, _C(0), 2, 3)),
    Spelling("config_ld", "short", "config_ld", (0, 1, _C(0), _DIM, 2)),
    # config_st
    Spelling("gemmini_extended_config_st", "exo", "config_st", (0, 1, 2)),
    Spelling("gemmini_config_st", "exo", "config_st", (0, _C(0), _C(1.0))),
    Spelling("config_st", "short", "config_st", (0, _C(0), _C(1.0))),
    Spelling("config_st", "short", "config_st", (0, 1, 2)),
    # mvin
    Spelling("gemmini_extended_mvin", "exo", "mvin", (_C(0), 0, 1, 2, 3)),
    Spelling("gemmini_extended_mvin2", "exo", "mvin", (_C(1), 0, 1, 2, 3)),
    Spelling("gemmini_extended_mvin3", "exo", "mvin", (_C(2), 0, 1, 2, 3)),
    Spelling("gemmini_mvin", "exo", "mvin", (_C(0), 0, 1, _DIM, _DIM)),
    Spelling("mvin", "short", "mvin", (_C(0), 0, 1, 2, 3)),
    Spelling("mvin2", "short", "mvin", (_C(1), 0, 1, 2, 3)),
    Spelling("mvin3", "short", "mvin", (_C(2), 0, 1, 2, 3)),
    # preload / compute
    Spelling("gemmini_extended_preload", "exo", "preload", (0, 1, 2, 3, 4, 5)),
    Spelling("gemmini_preload", "exo", "preload", (0, 1, _DIM, _DIM, _DIM, _DIM)),
    Spelling("gemmini_preload_zeros", "exo", "preload", (_C(GARBAGE_ADDR), 0, _DIM, _DIM, _DIM, _DIM)),
    Spelling("preload", "short", "preload", (0, 1, 2, 3, 4, 5)),
    Spelling("gemmini_extended_compute_preloaded", "exo", "compute_preloaded", (0, 1, 2, 3, 4, 5)),
    Spelling("gemmini_compute_preloaded", "exo", "compute_preloaded", (0, 1, _DIM, _DIM, _DIM, _DIM)),
    Spelling("compute_preloaded", "short", "compute_preloaded", (0, 1, 2, 3, 4, 5)),
    Spelling("gemmini_extended_compute_accumulated", "exo", "compute_accumulated", (0, 1, 2, 3, 4, 5)),
    Spelling("gemmini_compute_accumulated", "exo", "compute_accumulated", (0, 1, _DIM, _DIM, _DIM, _DIM)),
    Spelling("compute_accumulated", "short", "compute_accumulated", (0, 1, 2, 3, 4, 5)),
    # mvout
    Spelling("gemmini_extended_mvout", "exo", "mvout", (0, 1, 2, 3)),
    Spelling("gemmini_mvout", "exo", "mvout", (0, 1, _DIM, _DIM)),
    Spelling("mvout", "short", "mvout", (0, 1, 2, 3)),
    # sync
    Spelling("gemmini_fence", "exo", "fence", ()),
    Spelling("fence", "short", "fence", ()),
    Spelling("gemmini_flush", "exo", "flush", (0,)),
    Spelling("flush", "short", "flush", (0,)),
    # FSM
    Spelling("gemmini_loop_ws", "exo", "loop_ws", tuple(range(23))),
    Spelling("loop_ws", "short", "loop_ws", tuple(range(23))),
    Spelling("gemmini_loop_conv_ws", "exo", "loop_conv_ws", tuple(range(54))),
    Spelling("loop_conv_ws", "short", "loop_conv_ws", tuple(range(54))),
    # runtime allocators (Exo's gemm_malloc.h / gemm_acc_malloc.h)
    Spelling("gemm_malloc", "exo", "gemm_malloc", (0,)),
    Spelling("gemm_free", "exo", "gemm_free", (0,)),
    Spelling("gemm_acc_malloc", "exo", "gemm_acc_malloc", (0,)),
    Spelling("gemm_acc_free", "exo", "gemm_acc_free", (0,)),
)


def spellings_by_name() -> dict[str, list[Spelling]]:
    """C name -> its spellings (several when arities differ, e.g. config_ld)."""
    out: dict[str, list[Spelling]] = {}
    for s in SPELLINGS:
        out.setdefault(s.name, []).append(s)
    return out


def spelling_for(name: str, nargs: int) -> Spelling | None:
    """The spelling of `name` taking `nargs` arguments, or None."""
    for s in spellings_by_name().get(name, ()):
        if s.arity == nargs:
            return s
    return None


def resolve_args(spelling: Spelling, call_args: list, dim: int) -> list:
    """Map a call's argument values (or expressions) onto the canonical list."""
    out = []
    for src in spelling.args:
        if isinstance(src, int):
            out.append(call_args[src])
        elif src[0] == "const":
            out.append(src[1])
        else:
            out.append(dim)
    return out


# ---- RoCC encodings of the FSM macros --------------------------------------

#: RoCC instructions one call of an FSM macro issues (the others issue one)
ROCC_COMMANDS: dict[str, int] = {"loop_ws": 6, "loop_conv_ws": 7}


@dataclass(frozen=True)
class RoccCommand:
    """One RoCC instruction of a macro: funct and the (parameter, high bit, low bit) fields of rs1 and rs2."""

    funct: int
    name: str
    rs1: tuple[tuple[str, int, int], ...]
    rs2: tuple[tuple[str, int, int], ...]


#: gemmini_loop_conv_ws as gemmini.h issues it (GEMMINI_CONV.md section 3), in issue order
LOOP_CONV_WS_ROCC: tuple[RoccCommand, ...] = (
    RoccCommand(16, "LOOP_CONV_WS_CONFIG_1",
                (("out_channels", 63, 48), ("in_channels", 47, 32), ("in_row_dim", 31, 16), ("batch_size", 15, 0)),
                (("padding", 63, 56), ("stride", 55, 48), ("out_col_dim", 47, 32), ("pool_out_row_dim", 31, 16),
                 ("out_row_dim", 15, 0))),
    RoccCommand(17, "LOOP_CONV_WS_CONFIG_2",
                (("kernel_dim", 63, 48), ("pool_out_col_dim", 47, 32), ("pool_size", 31, 16),
                 ("pool_stride", 15, 8), ("pool_padding", 7, 0)),
                (("batches", 63, 48), ("porows", 47, 32), ("pocols", 31, 16), ("pochs", 15, 0))),
    RoccCommand(18, "LOOP_CONV_WS_CONFIG_3",
                (("krows", 63, 48), ("kcols", 47, 32), ("kchs", 31, 16), ("lpad", 15, 0)),
                (("rpad", 63, 48), ("upad", 47, 32), ("dpad", 31, 24), ("plpad", 23, 16), ("in_col_dim", 15, 0))),
    RoccCommand(19, "LOOP_CONV_WS_CONFIG_4",
                (("orows", 63, 48), ("prpad", 47, 32), ("pupad", 31, 21), ("pdpad", 20, 10),
                 ("kernel_dilation", 9, 0)),
                (("in_stride", 63, 48), ("weight_stride", 47, 32), ("out_stride", 31, 16), ("ocols", 15, 0))),
    RoccCommand(20, "LOOP_CONV_WS_CONFIG_5", (("weights", 63, 0),), (("output", 63, 0),)),
    RoccCommand(21, "LOOP_CONV_WS_CONFIG_6", (("bias", 63, 0),), (("input", 63, 0),)),
    RoccCommand(15, "LOOP_CONV_WS",
                (("a_spad_id", 19, 18), ("b_spad_id", 17, 16), ("max_pixels_per_row", 15, 8), ("dw", 6, 6),
                 ("trans_input_3120", 5, 5), ("trans_weight_0132", 4, 4), ("trans_weight_1203", 3, 3),
                 ("trans_output_1203", 2, 2), ("wrot180", 1, 1), ("no_bias", 0, 0)),
                (("activation", 4, 3), ("input_dilated", 2, 2), ("downsample", 1, 1), ("no_pool", 0, 0))),
)


def encode_rocc(commands: tuple[RoccCommand, ...], values: dict) -> list[tuple[int, int, int]]:
    """``[(funct, rs1, rs2)]`` for parameter values; ValueError if one does not fit its field."""
    out = []
    for c in commands:
        regs = []
        for fields in (c.rs1, c.rs2):
            r = 0
            for name, hi, lo in fields:
                v = int(values[name])
                width = hi - lo + 1
                if not 0 <= v < (1 << width):
                    raise ValueError(f"{c.name}: {name} = {v} does not fit bits {hi}:{lo}")
                r |= v << lo
            regs.append(r)
        out.append((c.funct, regs[0], regs[1]))
    return out


def decode_rocc(commands: tuple[RoccCommand, ...], words: list[tuple[int, int, int]]) -> dict:
    """The parameter values of ``[(funct, rs1, rs2)]`` (the inverse of `encode_rocc`)."""
    by_funct = {c.funct: c for c in commands}
    out: dict = {}
    for funct, rs1, rs2 in words:
        c = by_funct.get(funct)
        if c is None:
            raise ValueError(f"funct {funct} is not one of {sorted(by_funct)}")
        for fields, r in ((c.rs1, rs1), (c.rs2, rs2)):
            for name, hi, lo in fields:
                out[name] = (r >> lo) & ((1 << (hi - lo + 1)) - 1)
    return out
