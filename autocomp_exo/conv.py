"""Convolution workloads: Exo's Gemmini conv app as a `Workload`.

The semantics are those of Exo's ``apps/gemmini/src/exo/conv.py``
(GEMMINI_CONV.md sections 2 and 5): int8 input ``inp[N][H][W][C]`` (NHWC,
already padded: the border ring holds data, it is a "valid" convolution),
int8 weights ``weights[R][S][C][K]`` (HWIO), int32 ``bias[1][K]``, a float32
``scale`` and an ``act`` flag; per output element

    out[n][p][q][k] = relu?(sat8(rne(scale * (bias[0][k] + sum_{r,s,c}
                      inp[n][p*stride + r][q*stride + s][c] * w[r][s][c][k]))))

with int32 products and sums. The algorithm is a fixed ``@proc`` (Exo reads
real source) specialised with ``partial_eval``; the reference is numpy and
never touches Exo or the simulator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Optional

import numpy as np
from exo import DRAM, proc
from exo.API import Procedure
from exo.libs.externs import relu  # noqa: F401  (used in @proc)
from exo.platforms.gemmini import acc_scale, clamp  # noqa: F401  (used in @proc)

from gemmini_isa import GemminiConfig

from .reference import requantize
from .workload_base import Workload, WorkloadError

__all__ = ["ConvWorkload", "conv", "conv_proc", "conv_reference", "BENCHMARK_SHAPES", "STRIDES", "KERNELS"]

DIM = GemminiConfig().dim   # channels come in blocks of the array size

#: strides the algorithm procs exist for (Exo's app has stride 1; stride 2 is its twin)
STRIDES = (1, 2)
#: kernel sizes the workload accepts (3x3 as in ResNet, 1x1 pointwise)
KERNELS = (1, 3)

#: GEMMINI_CONV.md section 2 / BENCHMARKS.md: (batch, out_dim, in_channels, out_channels)
BENCHMARK_SHAPES = {
    "conv-56": (4, 56, 64, 64),
    "conv-28": (4, 28, 128, 128),
    "conv-14": (4, 14, 256, 256),
    "conv-14x128": (4, 14, 128, 128),
}


@proc
def _conv_stride_1(
    batch_size: size,
    out_dim: size,
    out_channel: size,
    kernel_dim: size,
    in_channel: size,
    in_dim: size,
    output: i8[batch_size, out_dim, out_dim, out_channel] @ DRAM,
    bias: i32[1, out_channel] @ DRAM,
    inp: i8[batch_size, in_dim, in_dim, in_channel] @ DRAM,
    weights: i8[kernel_dim, kernel_dim, in_channel, out_channel] @ DRAM,
    act: bool,
    scale: f32,
):
    assert out_dim == in_dim - kernel_dim + 1
    for b in seq(0, batch_size):
        for orow in seq(0, out_dim):
            for ocol in seq(0, out_dim):
                for och in seq(0, out_channel):
                    res: i32 @ DRAM
                    res = bias[0, och]
                    for krow in seq(0, kernel_dim):
                        for kcol in seq(0, kernel_dim):
                            for kch in seq(0, in_channel):
                                w_s: i8 @ DRAM
                                w_s = weights[krow, kcol, kch, och]
                                i_s: i8 @ DRAM
                                i_s = inp[b, orow + krow, ocol + kcol, kch]
                                a2: i32 @ DRAM
                                b2: i32 @ DRAM
                                a2 = i_s
                                b2 = w_s
                                res += a2 * b2
                    src_tmp: i32 @ DRAM
                    src_tmp = res
                    tmp_res1: f32 @ DRAM
                    acc_scale(src_tmp, tmp_res1, scale)
                    tmp_res2: i8 @ DRAM
                    clamp(tmp_res1, tmp_res2)
                    if act == True:
                        tmp_res2 = relu(tmp_res2)
                    output[b, orow, ocol, och] = tmp_res2


@proc
def _conv_stride_2(
    batch_size: size,
    out_dim: size,
    out_channel: size,
    kernel_dim: size,
    in_channel: size,
    in_dim: size,
    output: i8[batch_size, out_dim, out_dim, out_channel] @ DRAM,
    bias: i32[1, out_channel] @ DRAM,
    inp: i8[batch_size, in_dim, in_dim, in_channel] @ DRAM,
    weights: i8[kernel_dim, kernel_dim, in_channel, out_channel] @ DRAM,
    act: bool,
    scale: f32,
):
    # _conv_stride_1 with the input window moved by 2 pixels per output pixel
    assert in_dim == 2 * out_dim + kernel_dim - 2
    for b in seq(0, batch_size):
        for orow in seq(0, out_dim):
            for ocol in seq(0, out_dim):
                for och in seq(0, out_channel):
                    res: i32 @ DRAM
                    res = bias[0, och]
                    for krow in seq(0, kernel_dim):
                        for kcol in seq(0, kernel_dim):
                            for kch in seq(0, in_channel):
                                w_s: i8 @ DRAM
                                w_s = weights[krow, kcol, kch, och]
                                i_s: i8 @ DRAM
                                i_s = inp[b, 2 * orow + krow, 2 * ocol + kcol, kch]
                                a2: i32 @ DRAM
                                b2: i32 @ DRAM
                                a2 = i_s
                                b2 = w_s
                                res += a2 * b2
                    src_tmp: i32 @ DRAM
                    src_tmp = res
                    tmp_res1: f32 @ DRAM
                    acc_scale(src_tmp, tmp_res1, scale)
                    tmp_res2: i8 @ DRAM
                    clamp(tmp_res1, tmp_res2)
                    if act == True:
                        tmp_res2 = relu(tmp_res2)
                    output[b, orow, ocol, och] = tmp_res2


def check_conv_shape(batch: int, out_dim: int, in_channels: int, out_channels: int, kernel: int,
                     stride: int) -> None:
    """Raise WorkloadError (a ValueError) naming the limit a shape breaks."""
    for name, v in (("batch", batch), ("out_dim", out_dim), ("in_channels", in_channels),
                    ("out_channels", out_channels), ("kernel", kernel), ("stride", stride)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise WorkloadError(f"conv {name} must be a positive int, got {v!r}")
    if stride not in STRIDES:
        raise WorkloadError(f"conv stride {stride} is not supported: the stride must be one of {STRIDES}")
    if kernel not in KERNELS:
        raise WorkloadError(f"conv kernel {kernel}x{kernel} is not supported: the kernel must be one of "
                            f"{', '.join(f'{k}x{k}' for k in KERNELS)}")
    bad = [f"{n}={v}" for n, v in (("in_channels", in_channels), ("out_channels", out_channels)) if v % DIM]
    if bad:
        raise WorkloadError(f"conv channels must be multiples of {DIM} (the systolic array size), got "
                            f"{', '.join(bad)}")


def in_dim_of(out_dim: int, kernel: int, stride: int) -> int:
    """Rows (= columns) of the pre-padded input: a valid convolution."""
    return (out_dim - 1) * stride + kernel


@lru_cache(maxsize=32)
def conv_proc(batch: int, out_dim: int, in_channels: int, out_channels: int, kernel: int = 3,
              stride: int = 1) -> Procedure:
    """The algorithm-level proc, specialised (``conv_<N>x<P>x<C>x<K>[_k<R>][_s<stride>]``)."""
    check_conv_shape(batch, out_dim, in_channels, out_channels, kernel, stride)
    from exo.stdlib.scheduling import rename

    alg = _conv_stride_1 if stride == 1 else _conv_stride_2
    p = alg.partial_eval(batch, out_dim, out_channels, kernel, in_channels, in_dim_of(out_dim, kernel, stride))
    return rename(p, _name(batch, out_dim, in_channels, out_channels, kernel, stride))


def _name(batch: int, out_dim: int, in_channels: int, out_channels: int, kernel: int, stride: int) -> str:
    s = f"conv_{batch}x{out_dim}x{in_channels}x{out_channels}"
    if kernel != 3:
        s += f"_k{kernel}"
    if stride != 1:
        s += f"_s{stride}"
    return s


def conv_reference(inp: np.ndarray, weights: np.ndarray, bias: np.ndarray, scale: float, act: bool,
                   stride: int = 1) -> np.ndarray:
    """int8 NHWC output of the conv semantics in the module doc (numpy only).

    One float64 matmul per kernel tap: every partial sum is an integer below
    2^53, so the sums are exact; wrapped to int32 like the accumulator."""
    inp, weights, bias = np.asarray(inp), np.asarray(weights), np.asarray(bias)
    if inp.dtype != np.int8 or weights.dtype != np.int8 or bias.dtype != np.int32:
        raise TypeError(f"conv_reference needs int8 inp/weights and int32 bias, got {inp.dtype}, "
                        f"{weights.dtype}, {bias.dtype}")
    n, h, w, c = inp.shape
    r, s, c2, k = weights.shape
    if c2 != c or bias.shape != (1, k) or r != s or h != w:
        raise ValueError(f"conv shapes do not fit: inp {inp.shape}, weights {weights.shape}, bias {bias.shape}")
    p = (h - r) // stride + 1
    acc = np.zeros((n * p * p, k), np.float64)
    x = inp.astype(np.float64)
    for kr in range(r):
        for kc in range(s):
            win = x[:, kr:kr + stride * (p - 1) + 1:stride, kc:kc + stride * (p - 1) + 1:stride, :]
            acc += win.reshape(-1, c) @ weights[kr, kc].astype(np.float64)
    acc += bias.astype(np.float64)
    out = requantize(acc.astype(np.int64).astype(np.int32), scale, act)
    return out.reshape(n, p, p, k)


@dataclass(frozen=True)
class ConvWorkload(Workload):
    """A batch of square ``kernel`` x ``kernel`` convolutions (module doc)."""

    kind: ClassVar[str] = "conv"
    outputs: ClassVar[tuple] = ("output",)

    batch: int
    out_dim: int
    in_channels: int
    out_channels: int
    kernel: int = 3
    stride: int = 1
    relu: bool = False

    def __post_init__(self):
        check_conv_shape(self.batch, self.out_dim, self.in_channels, self.out_channels, self.kernel,
                         self.stride)
        if not isinstance(self.relu, bool):
            raise WorkloadError(f"relu must be a bool, got {self.relu!r}")

    # -- shape ---------------------------------------------------------------
    @property
    def in_dim(self) -> int:
        return in_dim_of(self.out_dim, self.kernel, self.stride)

    @property
    def name(self) -> str:
        return _name(self.batch, self.out_dim, self.in_channels, self.out_channels, self.kernel,
                     self.stride) + ("_relu" if self.relu else "")

    @property
    def proc(self) -> Procedure:
        return conv_proc(self.batch, self.out_dim, self.in_channels, self.out_channels, self.kernel, self.stride)

    @property
    def dims(self) -> dict:
        return {"batch": self.batch, "out_dim": self.out_dim, "in_dim": self.in_dim,
                "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel": self.kernel, "stride": self.stride}

    @property
    def macs(self) -> int:
        return self.batch * self.out_dim ** 2 * self.out_channels * self.kernel ** 2 * self.in_channels

    @property
    def shapes(self) -> dict:
        """Argument name -> numpy shape of the arrays (as the harness declares them)."""
        n, p, i, c, k, r = self.batch, self.out_dim, self.in_dim, self.in_channels, self.out_channels, self.kernel
        return {"inp": (n, i, i, c), "weights": (r, r, c, k), "bias": (1, k), "output": (n, p, p, k)}

    # -- identity ------------------------------------------------------------
    def signature(self) -> dict:
        return {"kind": "conv", "batch": self.batch, "out_dim": self.out_dim, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "kernel": self.kernel, "stride": self.stride,
                "relu": self.relu, "dtype": "int8", "acc": "int32"}

    @classmethod
    def _from_signature(cls, sig: dict) -> "ConvWorkload":
        if sig.get("kind") != "conv" or not all(k in sig for k in ("batch", "out_dim", "in_channels",
                                                                     "out_channels")):
            raise WorkloadError(f"not a conv signature (batch, out_dim, in_channels, out_channels): {sig!r}")
        return cls(int(sig["batch"]), int(sig["out_dim"]), int(sig["in_channels"]), int(sig["out_channels"]),
                   int(sig.get("kernel", 3)), int(sig.get("stride", 1)), bool(sig.get("relu", False)))

    def similarity(self, other: Any) -> Optional[tuple]:
        """None unless ``other`` is a conv with the same kernel and stride; then
        (0, 0) for the same shape, (1, d) when the channels or the spatial size
        agree, (2, d) otherwise; d = |log(MAC ratio)|."""
        if not isinstance(other, ConvWorkload) or (other.kernel, other.stride) != (self.kernel, self.stride):
            return None
        a = (self.batch, self.out_dim, self.in_channels, self.out_channels)
        b = (other.batch, other.out_dim, other.in_channels, other.out_channels)
        if a == b:
            return (0, 0.0)
        dist = abs(math.log(other.macs / self.macs))
        same_ch = a[2:] == b[2:]
        same_xy = a[:2] == b[:2]
        return (1 if same_ch or same_xy else 2, dist)

    # -- data ----------------------------------------------------------------
    def inputs(self, seed: int = 0) -> dict:
        """Inputs drawn from ``seed``, keyed by the proc's argument names.

        Even seeds: the harness's distribution (every ``inp``, ``weights`` and
        ``bias`` element 1 with probability 1/8, else 0; scale 1.0), the
        padding ring random like the rest. Odd seeds: signed data that
        exercises rounding and saturation (int8 in [-8, 8], bias in
        [-300, 300], a scale that is not a power of two). ``act`` is the
        workload's ReLU flag; ``output`` starts as garbage."""
        rng = np.random.default_rng([int(seed), self.batch, self.out_dim, self.in_channels, self.out_channels,
                                     self.kernel, self.stride, 41])
        sh = self.shapes
        if seed % 2 == 0:
            inp = (rng.integers(0, 8, size=sh["inp"]) == 0).astype(np.int8)
            weights = (rng.integers(0, 8, size=sh["weights"]) == 0).astype(np.int8)
            bias = (rng.integers(0, 8, size=sh["bias"]) == 0).astype(np.int32)
            scale = 1.0
        else:
            inp = rng.integers(-8, 9, size=sh["inp"]).astype(np.int8)
            weights = rng.integers(-8, 9, size=sh["weights"]).astype(np.int8)
            bias = rng.integers(-300, 301, size=sh["bias"]).astype(np.int32)
            depth = self.kernel ** 2 * self.in_channels
            # the sum's spread is about 24 sqrt(depth); bring it to ~70 (some saturate)
            scale = float(np.float32(70.0 / (24.0 * math.sqrt(depth)) * rng.uniform(0.8, 1.25)))
        output = rng.integers(-128, 128, size=sh["output"], dtype=np.int16).astype(np.int8)
        return {"output": output, "bias": bias, "inp": inp, "weights": weights, "act": self.relu,
                "scale": scale}

    def reference(self, inputs: dict) -> np.ndarray:
        return conv_reference(inputs["inp"], inputs["weights"], inputs["bias"], inputs["scale"],
                              bool(inputs["act"]), self.stride)


def conv(batch: int, out_dim: int, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
         relu: bool = False) -> ConvWorkload:
    """The conv workload (its algorithm-level Exo proc is ``.proc``).

    Raises WorkloadError (a ValueError) for shapes the mapping cannot take:
    channels not multiples of 16, strides other than 1 or 2, kernels other
    than 1x1 and 3x3."""
    return ConvWorkload(batch, out_dim, in_channels, out_channels, kernel, stride, relu)
