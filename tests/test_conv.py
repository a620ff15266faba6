"""Conv workloads, the conv FSM in the simulator, and the conv baselines: bit-exact vs numpy."""
from __future__ import annotations

import numpy as np
import pytest

import sim
from autocomp_exo.baselines import conv_exo, conv_exo_opt, conv_fsm, conv_swlib
from autocomp_exo.baselines.conv_tiling import _rows, tiling
from autocomp_exo.conv import BENCHMARK_SHAPES, ConvWorkload, conv_reference
from autocomp_exo.evaluate import bind_arguments, evaluate, evaluate_c
from autocomp_exo.workloads import Workload, WorkloadError, conv
from gemmini_isa.instructions import INSTRUCTIONS, LOOP_CONV_WS_ROCC, decode_rocc, encode_rocc
from sim.errors import InstructionLimitError, UnsupportedError


def _naive(inp, w, bias, scale, act, stride):
    """The conv semantics element by element (Python ints, float32 scale, ties to even)."""
    n, h, _, c = inp.shape
    r, _, _, k = w.shape
    p = (h - r) // stride + 1
    out = np.zeros((n, p, p, k), np.int8)
    for b in range(n):
        for y in range(p):
            for x in range(p):
                win = inp[b, y * stride:y * stride + r, x * stride:x * stride + r, :].astype(np.int64)
                acc = bias[0].astype(np.int64) + np.einsum("rsc,rsck->k", win, w.astype(np.int64))
                v = np.rint(acc.astype(np.int32).astype(np.float32) * np.float32(scale))
                v = np.clip(v, -128, 127)
                out[b, y, x] = np.maximum(v, 0) if act else v
    return out


# ---- the workload -------------------------------------------------------------------

@pytest.mark.parametrize("shape, seed, relu", [((1, 4, 16, 32, 3, 1), 1, False), ((2, 3, 32, 16, 3, 2), 1, True),
                                               ((1, 5, 16, 16, 1, 2), 0, False)])
def test_reference_matches_naive_loops(shape, seed, relu):
    w = ConvWorkload(*shape, relu=relu)
    x = w.inputs(seed)
    want = _naive(x["inp"], x["weights"], x["bias"], x["scale"], x["act"], w.stride)
    assert np.array_equal(w.reference(x), want)


def test_odd_seeds_saturate_and_go_negative():
    y = ConvWorkload(1, 8, 32, 32).reference(ConvWorkload(1, 8, 32, 32).inputs(1))
    assert (y == 127).any() and (y == -128).any() and ((y > -128) & (y < 127)).mean() > 0.5


def test_harness_distribution():
    w = ConvWorkload(1, 4, 16, 16)
    x = w.inputs(0)
    assert x["scale"] == 1.0 and x["act"] is False
    for name in ("inp", "weights", "bias"):
        assert set(np.unique(x[name])) <= {0, 1}
        assert 0.08 < x[name].mean() < 0.2 or x[name].size < 64
    assert x["inp"][:, 0, :, :].any()          # the border ring holds data


@pytest.mark.parametrize("shape, seed", [((1, 4, 16, 16, 3, 1), 1), ((1, 3, 16, 16, 1, 2), 1)])
def test_exo_proc_computes_the_reference(shape, seed):
    m = evaluate(ConvWorkload(*shape), seed=seed)     # the algorithm proc as Exo compiles it (CPU code)
    assert m.ok, m.error


def test_benchmark_shapes():
    assert [ConvWorkload(*s).macs for s in BENCHMARK_SHAPES.values()] == [462422016] * 3 + [115605504]
    w = conv(4, 56, 64, 64)
    assert w.shapes == {"inp": (4, 58, 58, 64), "weights": (3, 3, 64, 64), "bias": (1, 64),
                        "output": (4, 56, 56, 64)}
    assert [a.name() for a in w.proc.args()] == ["output", "bias", "inp", "weights", "act", "scale"]


@pytest.mark.parametrize("args, message", [
    ((1, 8, 24, 16), "multiples of 16"),
    ((1, 8, 16, 16, 5), "kernel 5x5 is not supported"),
    ((1, 8, 16, 16, 3, 3), "stride 3 is not supported"),
    ((0, 8, 16, 16), "batch must be a positive int"),
])
def test_refused_shapes(args, message):
    with pytest.raises(WorkloadError, match=message) as e:
        conv(*args)
    assert isinstance(e.value, ValueError)


def test_signature_and_similarity():
    w = conv(4, 28, 128, 128)
    assert Workload.from_signature(w.signature()) == w
    assert w.similarity(conv(4, 28, 128, 128)) == (0, 0.0)
    assert w.similarity(conv(4, 14, 128, 128))[0] == 1
    assert w.similarity(conv(4, 14, 256, 256))[0] == 2
    assert w.similarity(conv(4, 28, 128, 128, kernel=1)) is None


# ---- the library's tiling ---------------------------------------------------------------

@pytest.mark.parametrize("name, sizes, calls, a_reuse", [
    ("conv-56", (4, 8, 16, 16, 3, 3, 64), 112, False),
    ("conv-28", (4, 8, 16, 16, 3, 3, 128), 64, False),
    ("conv-14", (4, 9, 14, 16, 3, 3, 144), 64, False),
    ("conv-14x128", (4, 9, 14, 16, 3, 3, 128), 16, True),
])
def test_tile_heuristic_matches_the_library(name, sizes, calls, a_reuse):
    t = tiling(ConvWorkload(*BENCHMARK_SHAPES[name]))
    assert (t.sizes, t.calls, t.a_reuse, t.b_reuse) == (sizes, calls, a_reuse, False)
    a, b, c = _rows(list(sizes), 1)
    assert a + b <= 8192 and c <= 512


# ---- the baselines, bit-exact ------------------------------------------------------------

SMALL = [
    pytest.param((1, 8, 16, 16), 0, False, id="1x8x16x16-harness"),
    pytest.param((1, 8, 32, 32), 1, True, id="1x8x32x32-signed-relu"),
    pytest.param((2, 6, 32, 48, 3, 2), 1, False, id="2x6x32x48-stride2"),
    pytest.param((1, 5, 16, 32, 1, 2), 1, False, id="1x5x16x32-1x1-stride2"),
    pytest.param((1, 18, 16, 16), 1, False, id="1x18x16x16-column-tail"),
]


@pytest.mark.parametrize("gen", [conv_fsm, conv_swlib, conv_exo], ids=["fsm", "swlib", "exo_unopt"])
@pytest.mark.parametrize("shape, seed, relu", SMALL)
def test_baseline_bit_exact(gen, shape, seed, relu):
    w = ConvWorkload(*shape, relu=relu)
    m = evaluate_c(w, *gen.generate(w), seed=seed)
    assert m.ok, m.error
    assert m.macs == w.macs and m.cycles > w.macs / 256


STRIDE_1 = [pytest.param((1, 8, 32, 32), 1, True, id="1x8x32x32-signed-relu"),
            pytest.param((1, 18, 16, 16), 1, False, id="1x18x16x16-column-tail"),
            pytest.param((2, 6, 32, 48, 1), 1, False, id="2x6x32x48-1x1")]


@pytest.mark.parametrize("shape, seed, relu", STRIDE_1)
def test_exo_opt_bit_exact(shape, seed, relu):
    w = ConvWorkload(*shape, relu=relu)
    m = evaluate_c(w, *conv_exo_opt.generate(w), seed=seed)
    assert m.ok, m.error
    # the weights are loaded once: one mvin2 per (krow, kcol, 16 in-channels, 64 out-channels)
    assert m.instructions["mvin"] >= w.kernel ** 2 * (w.in_channels // 16) * -(-w.out_channels // 64)


@pytest.mark.parametrize("name, plan", [("conv-56", (64, 7)), ("conv-28", (128, 14)), ("conv-14", (64, 7)),
                                        ("conv-14x128", (128, 7))])
def test_exo_opt_plans_are_the_papers(name, plan):
    assert conv_exo_opt.plan(ConvWorkload(*BENCHMARK_SHAPES[name])) == plan


def test_exo_opt_refuses_stride_2():
    with pytest.raises(ValueError, match="for stride 1"):
        conv_exo_opt.generate(ConvWorkload(1, 4, 16, 16, 3, 2))


@pytest.mark.parametrize("gen", [conv_fsm, conv_swlib], ids=["fsm", "swlib"])
def test_split_reduction_bit_exact(gen):
    # kchs = 726 + 298: the bias comes with the first reduction tile, the output with the last
    w = ConvWorkload(1, 4, 1024, 16)
    assert tiling(w).counts[6] == 2
    m = evaluate_c(w, *gen.generate(w), seed=1)
    assert m.ok, m.error


def test_fsm_benchmark_shape_commands():
    # conv-14x128: GEMMINI_CONV.md's command counts (input / weight / bias mvins, pairs, mvouts)
    w = ConvWorkload(*BENCHMARK_SHAPES["conv-14x128"])
    m = evaluate_c(w, *conv_fsm.generate(w), seed=0)
    assert m.ok, m.error
    ins = m.instructions
    assert ins["loop_conv_ws"] == 16
    assert ins["fsm_mvin"] == 144 + 1152 + 448
    assert ins["fsm_preload"] == ins["fsm_compute"] == 32256
    assert ins["fsm_mvout"] == 448
    assert m.utilization > 0.85


# ---- the simulator: short dialect, FSM errors, RoCC fields ------------------------------------

def test_harness_form_kernel_runs():
    # the harness's parameters (4-D arrays, no scale or act): the exo baseline's body, config_st(K)
    w = ConvWorkload(1, 8, 16, 16)
    c, entry = conv_exo.generate(w)
    c = c.replace("config_st(16, act, scale[0]);", "config_st(16);").replace(
        ", const float* scale, bool act)", ")").replace(entry, "solution")
    x = w.inputs(0)
    args = {k: v for k, v in bind_arguments(w, x).items() if k in ("inp", "weights", "bias", "output")}
    r = sim.run(c, "solution", args)
    assert np.array_equal(r.arrays["output"], conv_reference(x["inp"], x["weights"], x["bias"], 1.0, False))


def _fsm_call(**over) -> str:
    w = ConvWorkload(1, 4, 16, 16)
    text = conv_fsm.c_source(w)
    names = [p.name for p in INSTRUCTIONS["loop_conv_ws"].params]
    head, rest = text.split("gemmini_loop_conv_ws(", 1)
    args, tail = rest.split(");", 1)
    vals = [a.strip() for a in args.split(",")]
    for k, v in over.items():
        vals[names.index(k)] = str(v)
    return head + "gemmini_loop_conv_ws(" + ", ".join(vals) + ");" + tail


@pytest.mark.parametrize("over, err, message", [
    ({"no_pool": "false"}, UnsupportedError, "pooling"),
    ({"wrot180": "true"}, UnsupportedError, "wrot180"),
    ({"kernel_dilation": 2}, UnsupportedError, "kernel_dilation"),
    ({"kchs": 2048}, InstructionLimitError, "half the scratchpad"),
    ({"batches": 40}, InstructionLimitError, "half the accumulator"),
])
def test_fsm_refuses(over, err, message):
    w = ConvWorkload(1, 4, 16, 16)
    with pytest.raises(err, match=message):
        sim.run(_fsm_call(**over), conv_fsm.ENTRY, bind_arguments(w, w.inputs(0)))


def test_loop_conv_ws_arity():
    w = ConvWorkload(1, 4, 16, 16)
    text = conv_fsm.c_source(w).replace("a_spad_id, b_spad_id);", "a_spad_id);")
    with pytest.raises(UnsupportedError, match="takes 54 arguments, got 53"):
        sim.run(text, conv_fsm.ENTRY, bind_arguments(w, w.inputs(0)))


def test_rocc_fields_round_trip():
    names = [p.name for p in INSTRUCTIONS["loop_conv_ws"].params]
    vals = {n: (i * 7 + 1) % 2 for i, n in enumerate(names)}
    vals.update(batch_size=4, in_row_dim=58, out_channels=256, kchs=144, weights=0x80001000, pupad=1000)
    words = encode_rocc(LOOP_CONV_WS_ROCC, vals)
    assert [f for f, _, _ in words] == [16, 17, 18, 19, 20, 21, 15]
    assert decode_rocc(LOOP_CONV_WS_ROCC, words) == vals
    with pytest.raises(ValueError, match="dpad = 256 does not fit bits 31:24"):
        encode_rocc(LOOP_CONV_WS_ROCC, dict(vals, dpad=256))
