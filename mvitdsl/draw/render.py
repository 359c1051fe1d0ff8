"""Architecture diagrams straight from the spec: graphviz DOT at four levels, and the stage table.

Levels: model (one node per stage), stage (clusters, repeated blocks folded), block (one MHPA
block as in the MViT paper's Figure 3, in draw_block), op (the emitted fx graph of one block, in
draw_ops). This module holds the model and stage levels, `draw()` and `render()` (a diagram
through Graphviz's `dot`); the house style is in diagram, the table in table. The `mvitdsl draw`
command (file names, exit codes) is cli/draw.py. Only these drawing modules import graphviz;
torch is imported only by the op level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import graphviz

from ..analysis.analyze import BlockRow, Report, Reported, analyze
from ..ir import Block, Model, Stage
from .block import block_graph, default_block, window_text
from .diagram import Shapes, colour, lines, new_graph, plural, title
from .ops import op_graph

Digraph = graphviz.Digraph  # what every level returns (named for the command's signatures)


class Spec(Reported, Protocol):
    """A checked spec (mvitdsl.spec.Spec): drawing reads its model, report and name."""

    @property
    def name(self) -> str: ...


# ---------------------------------------------------------------- shared pieces: stem and head


def add_stem(g: graphviz.Digraph, model: Model, s: Shapes) -> str:
    """Input and patch-embedding nodes; returns the id that the first block's edge leaves."""
    p = model.patch
    g.node(
        "input",
        lines(f"{model.input.kind} input", f"{model.input.channels}×{s.grid(model.input.size)}"),
        shape="box",
        style="filled",
        fillcolor="#eeeeee",
    )
    t = model.tokens
    position = {
        "none": "",
        "separable": "separable abs. positions",
        "joint": "abs. positions",
        "sincos": "sin-cos abs. positions",
        "windowed": f"windowed abs. positions ({s.grid(t.pos_table or (1, 1, 1))} bicubic "
        f"+ {s.grid(t.pos_window or (1, 1, 1))} tiled)",
    }[t.position]
    extras = ", ".join(t for t in ("cls token" if s.cls else "", position) if t)
    g.node(
        "patch",
        lines(
            "patch embedding",
            f"conv {s.grid(p.kernel)} stride {s.grid(p.stride)} → {p.dim}",
            f"+ {extras}" if extras else "",
        ),
        fillcolor="#eeeeee",
    )
    g.edge("input", "patch")
    return "patch"


def add_head(g: graphviz.Digraph, model: Model, s: Shapes, previous: str, row: BlockRow) -> None:
    h = model.head
    pool = "cls token" if h.pool == "cls" else "mean"
    order = ("norm", pool) if h.order == "norm_pool" else (pool, "norm")  # Hiera: mean, norm
    steps = ", ".join(t for t in (*order, "linear") if t and (t != "norm" or h.norm))
    g.node("head", lines("head", f"{steps} → {h.classes} classes"), fillcolor="#eeeeee")
    g.edge(previous, "head", label=s.size(row.grid_q, row.dim_out))


def drawn_stages(model: Model) -> list[Stage]:
    """The stages to draw: all, or with an `outputs` setting up to the last output (the later
    ones are pruned from the feature model)."""
    if model.outputs is None:
        return list(model.stages)
    names = [st.name for st in model.stages]
    last = max(names.index(n) for n in model.outputs.stages)
    return list(model.stages[: last + 1])


def add_outputs(
    g: graphviz.Digraph, model: Model, s: Shapes, ends: dict[str, tuple[str, BlockRow]]
) -> None:
    """With an `outputs` setting: one map node per output instead of the head."""
    assert model.outputs is not None
    for name in model.outputs.stages:
        ident, row = ends[name]
        norm = "LayerNorm, " if model.outputs.norm else ""
        label = lines(f"{name} map", f"{norm}tokens → {s.size(row.grid_q, row.dim_out)}")
        g.node(f"out_{name}", label, shape="box", style="filled", fillcolor="#eeeeee")
        g.edge(ident, f"out_{name}", label=s.size(row.grid_q, row.dim_out))


def finish_graph(
    g: graphviz.Digraph,
    model: Model,
    s: Shapes,
    ends: dict[str, tuple[str, BlockRow]],
    previous: str,
    last: BlockRow,
) -> None:
    """The head, or the feature maps of an `outputs` setting."""
    if model.outputs is not None:
        add_outputs(g, model, s, ends)
    else:
        add_head(g, model, s, previous, last)


# ---------------------------------------------------------------- level: model


def stage_rows(report: Report, index: int) -> tuple[BlockRow, ...]:
    st = report.model.stages[index]
    return report.blocks[st.first : st.first + st.depth]


def stage_text(st: Stage) -> str:
    return f"{plural(st.depth, 'block')} · dim {st.dim} · {plural(st.heads, 'head')}"


def kv_strides(blocks: Sequence[Block], s: Shapes) -> str:
    found = dict.fromkeys(s.grid(b.pool_kv.stride) if b.pool_kv.exists else "none" for b in blocks)
    return " / ".join(found)


def model_graph(report: Report, rankdir: str = "TB") -> graphviz.Digraph:
    """Patch embedding, one node per stage, head; edges carry token grid and channels."""
    m, s = report.model, Shapes(report.model)
    g = new_graph(f"{m.name}_model", rankdir, title(report))
    previous = add_stem(g, m, s)
    last = report.blocks[0]
    ends: dict[str, tuple[str, BlockRow]] = {}
    for i, st in enumerate(drawn_stages(m)):
        rows = stage_rows(report, i)
        blocks = m.blocks[st.first : st.first + st.depth]
        ident = f"stage_{st.name}"
        g.node(
            ident,
            lines(
                st.name,
                stage_text(st),
                f"Q stride {s.grid(st.stride_q)} · KV stride {kv_strides(blocks, s)}",
            ),
            fillcolor=colour(st.name),
        )
        edge_grid, edge_dim = (last.grid_q, last.dim_out) if i else (last.grid_in, last.dim_in)
        g.edge(previous, ident, label=s.size(edge_grid, edge_dim))
        previous, last = ident, rows[-1]
        ends[st.name] = (previous, last)
    finish_graph(g, m, s, ends, previous, last)
    return g


# ---------------------------------------------------------------- level: stage


def signature(block: Block, row: BlockRow) -> tuple[Any, ...]:
    """What makes two blocks look the same in a diagram (index, drop path and loc do not)."""
    return (
        block.dim_in,
        block.dim_attn,
        block.dim_out,
        block.heads,
        block.pool_q,
        block.pool_kv,
        row.grid_in,
        row.grid_q,
        row.grid_kv,
        row.window_kv,
    )


def fold(report: Report, index: int) -> list[list[int]]:
    """Block indices of one stage in runs of identical consecutive blocks."""
    runs: list[list[int]] = []
    for row in stage_rows(report, index):
        key = signature(report.model.blocks[row.index], row)
        prev = runs[-1][-1] if runs else None
        same = prev is not None and key == signature(report.model.blocks[prev], report.blocks[prev])
        runs[-1].append(row.index) if same else runs.append([row.index])
    return runs


def run_label(report: Report, run: list[int], s: Shapes) -> str:
    first = report.blocks[run[0]]
    block = report.model.blocks[run[0]]
    change = (
        f"{first.dim_in} → {first.dim_out}"
        if first.dim_in != first.dim_out
        else f"dim {first.dim_out}"
    )
    name = f"block {run[0]}" if len(run) == 1 else f"×{len(run)} blocks ({run[0]}–{run[-1]})"
    q = (
        f"Pool_Q stride {s.grid(block.pool_q.stride)} → {s.grid(first.grid_q)}"
        if block.has_skip_pool
        else ""
    )
    return lines(
        f"{name} · {change} · {plural(first.heads, 'head')}",
        q,
        f"K/V {s.grid(first.grid_kv)} · L_Q×L_K {first.len_q}×{first.len_kv}",
        window_text(first, s),
    )


def stage_graph(report: Report, rankdir: str = "TB") -> graphviz.Digraph:
    """One cluster per stage; a block is drawn where it differs, identical runs are folded."""
    m, s = report.model, Shapes(report.model)
    g = new_graph(f"{m.name}_stage", rankdir, title(report))
    previous = add_stem(g, m, s)
    last = report.blocks[0]
    ends: dict[str, tuple[str, BlockRow]] = {}
    for i, st in enumerate(drawn_stages(m)):
        with g.subgraph(name=f"cluster_{st.name}") as c:
            c.attr(label="", style="rounded,filled", fillcolor=colour(st.name), color="#888888")
            # the stage's name as a node left of its first block: a cluster label would sit
            # under the edge that enters the cluster
            c.node(
                f"stage_{st.name}",
                lines(
                    st.name, plural(st.depth, "block"), f"dim {st.dim} · {plural(st.heads, 'head')}"
                ),
                shape="plaintext",
                style="",
                fontsize="13",
            )
            with c.subgraph() as same:
                same.attr(rank="same")
                same.edge(f"stage_{st.name}", f"b{st.first}", style="invis")
            for run in fold(report, i):
                ident = f"b{run[0]}"
                c.node(ident, run_label(report, run, s))
                row = report.blocks[run[0]]
                g.edge(previous, ident, label=s.size(row.grid_in, row.dim_in))
                previous, last = ident, report.blocks[run[-1]]
        ends[st.name] = (previous, last)
    finish_graph(g, m, s, ends, previous, last)
    return g


# ---------------------------------------------------------------- every level, and rendering


def draw(
    spec: Spec, level: str = "stage", *, rankdir: str | None = None, block: int | None = None
) -> graphviz.Digraph:
    """The diagram of `spec` at `level` (model, stage, block, op) as a graphviz Digraph."""
    report = analyze(spec)
    rd = rankdir or "TB"
    index = default_block(report.model) if block is None else block
    makers: dict[str, Callable[[], graphviz.Digraph]] = {
        "model": lambda: model_graph(report, rd),
        "stage": lambda: stage_graph(report, rd),
        "block": lambda: block_graph(report, index, rd),
        "op": lambda: op_graph(report, index, rd),
    }
    return makers[level]()


class DotFailed(RuntimeError):
    """Graphviz's `dot` ran and failed; `stderr` is what it said."""

    def __init__(self, stderr: object) -> None:
        super().__init__(f"Graphviz failed: {stderr!r}")
        self.stderr = stderr


class DotMissing(RuntimeError):
    """Graphviz's `dot` program is not installed."""


def render(g: graphviz.Digraph, fmt: str) -> bytes:
    """The diagram rendered by `dot` as `fmt` (svg, png, pdf); DotFailed / DotMissing if not."""
    try:
        data: bytes = g.pipe(format=fmt)
        return data
    except graphviz.CalledProcessError as e:
        raise DotFailed(e.stderr) from e
    except graphviz.ExecutableNotFound as e:
        raise DotMissing(str(e)) from e
