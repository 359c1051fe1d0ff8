"""One sweep across families: depth and width of MViTv2-T, Hiera-T, Swin-T and PVTv2-B2 under one
GMACs and parameter budget, one joint Pareto front (fewest GMACs, most parameters), plotted.
No torch; matplotlib for the picture. Run: .venv/bin/python examples/cross_family.py [OUT.svg]

Adding a family is one line in BASES (as `"pvt_v2_b2": 64,`: PVTv2 with 64-wide heads):
an unprefixed PATH applies to every base that has it, a `NAME:PATH` to that base only.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import mvitdsl
from mvitdsl.explore.engine import Budgets
from mvitdsl.explore.plot import plot_joint_front

# family -> its heads' width when the stages widen (heads = dim // that), or None: the base's
# head counts, which divide every width below. One line per family:
BASES = {
    "mvitv2_t_image": None,
    "hiera_t_image": None,
    "swin_t": 32,
    "pvt_v2_b2": 64,
}
WIDTH = "scale2.dim,patch.dim"  # the first stage's width, the others follow it
VARY = {"scale4.blocks": "2..8:2", WIDTH: "64,96,128"}
SET = {
    "scale3.dim": "2*scale2.dim",
    "scale4.dim": "4*scale2.dim",
    "scale5.dim": "8*scale2.dim",
    **{
        f"{family}:scale{i}.heads": f"scale{i}.dim//{width}"
        for family, width in BASES.items()
        if width is not None
        for i in (2, 3, 4, 5)
    },
}
BUDGETS = Budgets(params=30e6, gmacs=6.0)


def main(out: Path) -> None:
    run = mvitdsl.sweep(list(BASES), VARY, set=SET, budgets=BUDGETS, pareto="gmacs,params:max")
    rows = list(run)
    kept = Counter(r["family"] for r in rows if r["ok"])
    print(f"{len(rows)} variants over {len(BASES)} families; kept: {dict(kept)}")
    print("joint front (fewest GMACs, most parameters):")
    for r in sorted((r for r in rows if r["pareto"]), key=lambda r: r["gmacs"]):
        depth, width = r["values"]["scale4.blocks"], r["values"][WIDTH]
        print(
            f"  {r['family']:<15} {r['gmacs']:6.3f} GMACs {r['params']:>12,} params"
            f"  scale4.blocks={depth} width={width}"
        )
    plot_joint_front(run, rows, out)  # type: ignore[arg-type]
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/cross_family.svg"))
