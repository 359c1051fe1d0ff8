"""Pictures of cost with matplotlib (Agg, imported only when a picture is asked for): the Pareto
front of a sweep, and per-stage bars of params, GMACs and activation memory for several specs.

The same input gives byte-identical files in one environment: a fixed SVG hash salt, no dates or
software versions in the metadata.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analysis.analyze import StageRow

# Objective columns: (axis label, scale) for the front's axes.
AXES = {
    "params": ("parameters (millions)", 1e-6),
    "gmacs": ("GMACs (matmul-only)", 1.0),
    "gmacs_fvcore": ("GMACs (fvcore: + LayerNorm)", 1.0),
    "activation_gib": ("activation memory (GiB)", 1.0),
    "attention_share": ("attention share of MACs", 1.0),
}


@contextmanager
def _matplotlib() -> Iterator[Any]:
    """pyplot on the Agg backend with reproducible output settings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.hashsalt": "mvitdsl", "svg.fonttype": "none", "font.size": 9}):
        yield plt


def _save(fig: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise ValueError(f"{path}: write .svg or .png")
    metadata = {"Date": None} if suffix == ".svg" else {"Software": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata=metadata, dpi=120)


def plot_costs(specs: Sequence[Any], path: Path) -> None:
    """Per-stage grouped bars of params, GMACs (matmul-only) and activation memory, one colour
    per spec, side by side."""
    with _matplotlib() as plt:
        fig = _costs_figure(plt, specs)
        _save(fig, path)
        plt.close(fig)


def costs_svg(specs: Sequence[Any]) -> bytes:
    """The bars of `plot_costs` as SVG bytes (the HTML report inlines them)."""
    buffer = io.BytesIO()
    with _matplotlib() as plt:
        fig = _costs_figure(plt, specs)
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(fig)
    return buffer.getvalue()


def _costs_figure(plt: Any, specs: Sequence[Any]) -> Any:
    from ..analysis.analyze import analyze

    reports = [analyze(s) for s in specs]
    stages = list(dict.fromkeys(st.name for r in reports for st in r.stages))
    panels: tuple[tuple[str, Callable[[StageRow], float]], ...] = (
        ("parameters (millions)", lambda st: st.params / 1e6),
        ("GMACs (matmul-only)", lambda st: st.macs / 1e9),
        ("activation memory (GiB, batch 1 fp32)", lambda st: st.activation_bytes / 2**30),
    )
    width = 0.8 / max(len(reports), 1)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, (title, value) in zip(axes, panels):
        for k, report in enumerate(reports):
            by_name = {st.name: st for st in report.stages}
            heights = [value(by_name[n]) if n in by_name else 0.0 for n in stages]
            xs = [i + (k - (len(reports) - 1) / 2) * width for i in range(len(stages))]
            ax.bar(xs, heights, width, label=report.name, color=f"C{k}")
        ax.set_xticks(range(len(stages)), stages)
        ax.set_title(title)
        ax.grid(True, axis="y", lw=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
