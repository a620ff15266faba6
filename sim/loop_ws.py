"""gemmini_loop_ws: the hardware FSM that issues a whole tiled matmul itself.

The FSM's loads, preloads, computes and stores run on the same functional
machine as CPU-issued ones (so results are bit-exact by construction) and are
handed to the timing model as FSM-issued (no CPU cost). Consecutive calls
ping-pong between the two halves of the scratchpad and accumulator, so one
tile's loads can overlap the previous tile's compute.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InstructionLimitError, UnsupportedError

if TYPE_CHECKING:
    from .machine import Machine

GARBAGE = 0xFFFFFFFF


def fsm_count(m: "Machine", op: str, where: str) -> None:
    """Count one instruction an FSM issued (``fsm_<op>``) against the instruction budget."""
    m.n += 1
    if m.n > m.budget:
        from .errors import BudgetExceededError
        raise BudgetExceededError(
            f"instruction budget of {m.budget} Gemmini instructions exhausted (in {where})")
    m.counts["fsm_" + op] = m.counts.get("fsm_" + op, 0) + 1


def run_loop_ws(m: "Machine", I: int, J: int, K: int, pad_I: int, pad_J: int, pad_K: int,
                A: int, B: int, D: int, C: int, A_stride: int, B_stride: int, D_stride: int,
                C_stride: int, A_transpose: int, B_transpose: int, full_C: int, low_D: int,
                ex_accumulate: int, act: int, a_spad_id: int, b_spad_id: int, is_resadd: int) -> None:
    dim = m.dim
    if A_transpose or B_transpose:
        raise UnsupportedError("gemmini_loop_ws: transposed A or B is not supported by the simulator")
    if is_resadd:
        raise UnsupportedError("gemmini_loop_ws: residual-add mode is not supported by the simulator")
    for name, v in (("I", I), ("J", J), ("K", K)):
        if v < 1:
            raise InstructionLimitError(f"gemmini_loop_ws: {name} = {v}; must be >= 1 tile")
    for name, v in (("pad_I", pad_I), ("pad_J", pad_J), ("pad_K", pad_K)):
        if not 0 <= v < dim:
            raise InstructionLimitError(f"gemmini_loop_ws: {name} = {v}; must be 0..{dim - 1}")
    if a_spad_id not in (0, 1, 2) or b_spad_id not in (0, 1, 2):
        raise InstructionLimitError("gemmini_loop_ws: a_spad_id and b_spad_id must be 0, 1 or 2")
    half_sp, half_acc = m.sp_rows // 2, m.acc_rows // 2
    need_sp = (I * K + K * J) * dim
    need_acc = I * J * dim
    if need_sp > half_sp or need_acc > half_acc:
        raise InstructionLimitError(
            f"gemmini_loop_ws: a {I}x{J}x{K}-tile loop needs {need_sp} scratchpad rows and {need_acc} "
            f"accumulator rows; the FSM has half of each ({half_sp} and {half_acc})")
    if C == 0 and full_C:
        raise InstructionLimitError("gemmini_loop_ws: full_C needs a C address")
    # scratchpad halves alternate every call; the accumulator half alternates
    # only when a call starts fresh partial sums (ex_accumulate adds to the
    # previous call's, as when the library splits K over several calls)
    h = m.fsm_calls % 2
    m.fsm_calls += 1
    if not ex_accumulate:
        m.fsm_acc_half = 1 - m.fsm_acc_half
    a_base = h * half_sp
    b_base = h * half_sp + half_sp - K * J * dim
    c_base = m.fsm_acc_half * half_acc
    a_scale = m.ld[a_spad_id][1]
    b_scale = m.ld[b_spad_id][1]
    st_scale = m.st_scale

    def rows_of(i: int, n: int, pad: int) -> int:
        return dim - pad if i == n - 1 else dim

    def count(op: str) -> None:
        fsm_count(m, op, "gemmini_loop_ws")

    if m.tm is not None and hasattr(m.tm, "fsm_begin"):
        m.tm.fsm_begin()
    # bias: D tiles (int32, or int8 with low_D) into the accumulator, overwriting
    if D:
        d_item = 1 if low_D else 4
        for i in range(I):
            for j in range(J):
                r, c = rows_of(i, I, pad_I), rows_of(j, J, pad_J)
                count("mvin")
                m._mvin(D + (i * dim * D_stride + j * dim) * d_item, 0x80000000 | (c_base + (i * J + j) * dim),
                        c, r, D_stride * d_item, 1.0, 1 if low_D else 0, dim, True)
    for k in range(K):
        kc = rows_of(k, K, pad_K)
        if k % 4 == 0:
            kb = min(4, K - k)
            kcols = (kb - 1) * dim + rows_of(k + kb - 1, K, pad_K)
            for i in range(I):
                count("mvin")
                m._mvin(A + (i * dim * A_stride + k * dim), a_base + (i * K + k) * dim, kcols,
                        rows_of(i, I, pad_I), A_stride, a_scale, 0, dim, True)
        for j0 in range(0, J, 4):
            jb = min(4, J - j0)
            jcols = (jb - 1) * dim + rows_of(j0 + jb - 1, J, pad_J)
            count("mvin")
            m._mvin(B + (k * dim * B_stride + j0 * dim), b_base + (k * J + j0) * dim, jcols, kc, B_stride,
                    b_scale, 0, dim, True)
        for j in range(J):
            jc = rows_of(j, J, pad_J)
            for i in range(I):
                ir = rows_of(i, I, pad_I)
                acc_flag = 0x40000000 if (k > 0 or D or ex_accumulate) else 0
                c_addr = 0x80000000 | acc_flag | (c_base + (i * J + j) * dim)
                count("preload")
                if i == 0:
                    m._preload(b_base + (k * J + j) * dim, c_addr, jc, kc, jc, ir, True)
                else:
                    m._preload(GARBAGE, c_addr, jc, kc, jc, ir, True)
                count("compute")
                m._compute(a_base + (i * K + k) * dim, GARBAGE, kc, ir, jc, ir, i == 0, True)
                if k == K - 1 and C and full_C:   # raw int32: one 16-column block per mvout
                    count("mvout")
                    m._mvout(C + (i * dim * C_stride + j * dim) * 4,
                             0xA0000000 | (c_base + (i * J + j) * dim), jc, ir, C_stride * 4, 0, 1.0, True)
            if k == K - 1 and C and not full_C and (j % 4 == 3 or j == J - 1):
                # int8: 16 x up to 64 columns (four j blocks), i inner, after the block's last compute
                j0 = j - j % 4
                cols = (j - j0) * dim + jc
                for i in range(I):
                    count("mvout")
                    m._mvout(C + (i * dim * C_stride + j0 * dim), 0x80000000 | (c_base + (i * J + j0) * dim),
                             cols, rows_of(i, I, pad_I), C_stride, act, st_scale, True)
    if m.tm is not None and hasattr(m.tm, "fsm_end"):
        m.tm.fsm_end()
