"""SAM2's Hiera-T trunk from its spec, with timm's weights, at two sizes, into an FPN.

    .venv/bin/python examples/sam2_trunk.py                    # 1024x1024 and 768x1024
    .venv/bin/python examples/sam2_trunk.py --sizes 256x256 256x384   # small (CI)

`specs/sam2_hiera_t.mv` writes SAM2.1's Hiera-T image-encoder trunk: windows padded where the
grid is not whole windows, three global blocks listed in one stage row, SAM2's windowed
positions. The weights come from timm's `sam2_hiera_tiny` (created here, random: no download;
with `pretrained=True` timm fetches SAM2's) by their timm names (`source="timm"`; a SAM2
checkpoint's `image_encoder.trunk.*` names load with `source="sam2"`). One built module runs at
every input size the spec's rule allows (multiples of 32): its four stage maps feed
torchvision's FeaturePyramidNetwork, and equal timm's at both sizes.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from pathlib import Path

import timm
import torch
from torchvision.ops import FeaturePyramidNetwork

import mvitdsl

SPEC = Path(__file__).resolve().parent.parent / "specs" / "sam2_hiera_t.mv"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["1024x1024", "768x1024"], help="HxW each")
    p.add_argument("--channels", type=int, default=256, help="the pyramid's width (SAM2: 256)")
    return p.parse_args()


def size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    reference = timm.create_model("sam2_hiera_tiny", pretrained=False, num_classes=0).eval()
    trunk = mvitdsl.build(SPEC, weights=reference.state_dict(), source="timm").eval()
    report = trunk.load_report
    print(f"{report.model}: {len(report.of('loaded'))} tensors loaded from timm's names")
    channels = [info["num_chs"] for info in trunk.feature_info]
    fpn = FeaturePyramidNetwork(channels, args.channels).eval()
    for hw in (size(s) for s in args.sizes):
        x = torch.randn(1, 3, *hw)
        with torch.no_grad():
            maps = trunk(x)  # OrderedDict: scale2 .. scale5, (B, C, H, W), finest first
            want = reference.forward_intermediates(x, indices=4, intermediates_only=True)
            pyramid = fpn(OrderedDict(maps))
        diff = max(float((m - w).abs().max()) for m, w in zip(maps.values(), want))
        shapes = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in pyramid.items())
        print(f"{hw[0]}x{hw[1]}: FPN {shapes}; max |diff| against timm {diff:.1e}")


if __name__ == "__main__":
    main()
