"""mvitdsl in five steps: load a spec, read its costs, build it, load torchvision's weights,
and try a variant written inline. Run: .venv/bin/python examples/quickstart.py"""

from __future__ import annotations

from pathlib import Path

import torch

import mvitdsl

SPEC = Path(__file__).resolve().parent.parent / "specs" / "mvit_b.mv"


def main() -> None:
    spec = mvitdsl.load_spec(SPEC)
    report = mvitdsl.analyze(spec)
    print(f"{spec.name}: {report.params:,} params, {report.macs / 1e9:.3f} GMACs")
    for stage in report.stages:
        size = "x".join(map(str, (stage.dim, *stage.grid)))
        print(f"  {stage.name:<7} {stage.operators:<22} {size}")

    gm = mvitdsl.build(spec).eval()
    try:
        import torchvision

        gm.load_state_dict(torchvision.models.video.mvit_v1_b().state_dict(), strict=True)
        print("loaded torchvision's mvit_v1_b state_dict (strict)")
    except ImportError:
        print("torchvision not installed: keeping mvitdsl's own initialisation")
    with torch.no_grad():
        logits = gm(torch.randn(1, 3, 16, 224, 224))
    print("logits", tuple(logits.shape))

    # A variant as text: half the depth of scale4, checked and costed before anything is built
    # (without mvit_b's `expect` line: the variant has other figures).
    lines = SPEC.read_text().splitlines(keepends=True)
    small = "".join(line for line in lines if not line.lstrip().startswith("expect "))
    small = small.replace("scale4      11", "scale4       5")
    variant = mvitdsl.analyze(mvitdsl.load_spec(text=small))
    print(f"scale4 x5 variant: {variant.params:,} params, {variant.macs / 1e9:.3f} GMACs")

    try:
        mvitdsl.load_spec(text=SPEC.read_text().replace("192      2", "192      5"))
    except mvitdsl.SpecError as e:
        print("a broken variant is refused before anything is built:")
        print(e.render())


if __name__ == "__main__":
    main()
