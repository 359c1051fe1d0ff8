"""What the CPU layer's changes of issue 22 bought: a spec's reference and three builds of ours,
alternating in one process with the same weights, 1 thread, thread CPU time, medians: "main" (the
layer before: pool conv and rel-pos bias), "linear" (+ kernels.Linear), "all" (+ the unroll pass,
Hiera only). Eval at the spec's size batch 1; training batch 2 (video at 3x8x128x128).

    .venv/bin/python benchmarks/cpu_layer_ab.py hiera_t_image eval 21
    .venv/bin/python benchmarks/cpu_layer_ab.py mvit_b train 5
"""

import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import mvitdsl
from mvitdsl.backend import bench, kernels
from mvitdsl.backend.export import input_shape
from mvitdsl.backend.passes import optimize as layer
from mvitdsl.backend.passes.rewrite import retarget

ROOT = Path(__file__).resolve().parent.parent

torch.set_num_threads(1)
name, mode, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
train = mode == "train"
spec0 = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv")

size = tuple(input_shape(spec0.model))
if train and len(size) == 4:
    size = (3, 8, 128, 128)
spec = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv", input_size=size)
opts = bench.BenchOptions(train=train)
torch.manual_seed(0)
full = bench.build_model(spec, opts)
assert spec.reference is not None, f"{name} states no reference"
src = spec.reference.source
ref = bench.reference_model(spec, src, opts)
bench.load_reference_weights(full, ref, spec, src)


def main_layer(gm):
    gm = layer.semantic(copy.deepcopy(gm))
    for sub in gm.modules():
        if isinstance(sub, torch.fx.GraphModule):
            for n in sub.graph.nodes:
                if n.op == "call_function" and n.target in layer.REPLACEMENTS:
                    retarget(n, layer.REPLACEMENTS[n.target])
            sub.recompile()
    return gm


main = main_layer(full)
lin = copy.deepcopy(main)
for m in lin.modules():
    if type(m) is torch.nn.Linear:
        m.__class__ = kernels.Linear
variants = {"ref": ref, "main": main, "linear": lin}
if "to_unrolled" in full.code:
    variants["all"] = full
x = torch.randn(2 if train else 1, *size)
fns = {k: bench.step(m, x, opts) for k, m in variants.items()}
for f in fns.values():
    f()
cpu = {k: [] for k in fns}
for _ in range(reps):
    for k, f in fns.items():
        c = time.thread_time()
        f()
        cpu[k].append(time.thread_time() - c)
med = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
print(
    f"{name} {mode} {'x'.join(map(str, (x.shape[0], *size)))} load {os.getloadavg()[0]:.1f}: "
    + ", ".join(
        f"{k} {v:.1f} ms [{min(cpu[k]) * 1e3:.0f}-{max(cpu[k]) * 1e3:.0f}] ({med['ref'] / v:.2f}x)"
        for k, v in med.items()
    ),
    flush=True,
)
