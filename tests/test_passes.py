"""The emitter's layout choices (channels-last pooling over all heads at once) keep parity:
MViTv2-S against torchvision's mvit_v2_s (at 3x4x64x64; the `full` twin at 16x224x224), and
the graph has the layout it promises."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import torch.nn.functional as F  # noqa: E402
from torch import fx, nn  # noqa: E402
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata  # noqa: E402

import mvitdsl  # noqa: E402
from mvitdsl.backend import kernels, runtime  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def mvit_v2_s_at(size: tuple[int, ...]) -> nn.Module:
    """torchvision's mvit_v2_s built for a (C, T, H, W) clip (its builder pins 16x224x224)."""
    from torchvision.models.video import mvit as tvm

    original = tvm._mvit

    def sized(**kw):
        kw["temporal_size"], kw["spatial_size"] = size[1], (size[2], size[3])
        return original(**kw)

    with mock.patch.object(tvm, "_mvit", sized):
        return tvm.mvit_v2_s()


@pytest.mark.parametrize(
    "size",
    [
        pytest.param((3, 4, 64, 64), id="small"),
        pytest.param((3, 16, 224, 224), id="full", marks=pytest.mark.full),
    ],
)
def test_mvitv2_s_eval_logits_match_torchvision(size: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    ref = mvit_v2_s_at(size).eval()
    # torchvision initialises rel-pos tables to zero: give them values so they are tested
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.02)
    gm = mvitdsl.build(mvitdsl.load_spec(ROOT / "specs" / "mvitv2_s.mv", input_size=size)).eval()
    gm.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = gm(x), ref(x)
    assert ours.shape == (2, 400)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


POOLS = (runtime.depthwise_conv, F.max_pool3d, F.max_pool2d)


def pool_reads(gm: fx.GraphModule, x: object) -> list[tuple[int, object, TensorMetadata]]:
    """(block, pool op, TensorMetadata of what it reads) for every pooling op, from a run on
    the meta device with fx's ShapeProp inside each block (shapes and strides, no data)."""
    inputs: dict[int, tuple] = {}
    hooks = [
        b.register_forward_pre_hook(lambda m, a, i=i: inputs.__setitem__(i, a))
        for i, b in enumerate(gm.blocks)
    ]
    with torch.no_grad():
        gm(x)
    for h in hooks:
        h.remove()
    reads: list[tuple[int, object, TensorMetadata]] = []
    for i, block in enumerate(gm.blocks):
        with torch.no_grad():
            ShapeProp(block).propagate(*inputs[i])
        for node in block.graph.nodes:
            if node.op == "call_function" and node.target in POOLS:
                reads.append((i, node.target, node.args[0].meta["tensor_meta"]))
    return reads


@pytest.mark.parametrize("name", ["mvit_b", "mvitv2_s"])
def test_pools_read_channels_last_views_not_head_split_copies(name: str) -> None:
    """q/k/v conv pools: a channels-last view of a (B, L, A) slice of qkv; skip max-pools:
    a view of the block input (saved by norm1 anyway, so training keeps no extra copy)."""
    spec = mvitdsl.load_spec(ROOT / "specs" / f"{name}.mv")
    gm = mvitdsl.build(spec, device="meta")
    convs = skips = 0
    for node in (n for b in gm.blocks for n in b.graph.nodes):
        if node.op == "call_function" and node.target in POOLS:
            assert node.args[0].target == "unflatten", node  # a view of (B, L, A)
    for i, op, meta in pool_reads(gm, torch.empty(2, 3, 16, 224, 224, device="meta")):
        channels = meta.shape[1]
        assert len(meta.shape) == 5 and meta.stride[1] == 1, (i, meta)  # channels-last
        if op is runtime.depthwise_conv:  # all heads at once, read in place from qkv's output
            assert channels == gm.blocks[i].attn.qkv.out_features // 3, (i, meta)
            assert meta.stride[-1] == 3 * channels, (i, meta)
            convs += 1
        else:  # the skip pool reads the block input itself
            assert op is F.max_pool3d and meta.stride[-1] == channels, (i, meta)
            skips += 1
    assert convs == sum(b.pool_q.exists + 2 * b.pool_kv.exists for b in spec.model.blocks) > 16
    assert skips == sum(b.has_skip_pool for b in spec.model.blocks) == 3


def test_cpu_layer_copies_channels_last_only_without_autograd() -> None:
    x = torch.randn(2, 3, 4, 5, 16)[..., :8].permute(0, 4, 1, 2, 3)  # strided (B, C, T, H, W)
    w = torch.randn(4, 1, 3, 3, 3)
    with torch.no_grad():
        out = kernels.pool_conv(x, w, (1, 1, 1), (1, 1, 1))
    assert out.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(out, runtime.depthwise_conv(x, w, (1, 1, 1), (1, 1, 1)))


def test_image_pools_are_channels_last_2d() -> None:
    """The image path pools 4-D (B, A, H, W) channels-last views: 2-D ops, channel stride 1."""
    spec = mvitdsl.load_spec(ROOT / "specs" / "mvitv2_t_image.mv")
    gm = mvitdsl.build(spec, device="meta", optimize=False).eval()
    convs = [n for b in gm.blocks for n in b.graph.nodes if n.target is runtime.depthwise_conv]
    assert convs and all(n.args[0].target == "unflatten" for n in convs)
    reads = pool_reads(gm, torch.empty(2, 3, 224, 224, device="meta"))
    assert sum(op is runtime.depthwise_conv for _, op, _ in reads) == len(convs)
    for i, op, meta in reads:
        assert op is not F.max_pool3d and len(meta.shape) == 4, (i, op, meta)  # 2-D pools
        assert meta.stride[1] == 1 and meta.stride[-1] >= meta.shape[1], (i, meta)  # NHWC
    with torch.no_grad():
        assert gm(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 1000)
