"""Architecture diagrams straight from the spec: graphviz DOT at four levels, and the stage table.

Levels: model (one node per stage), stage (clusters, repeated blocks folded), block (one MHPA
block as in the MViT paper's Figure 3), op (the emitted fx graph of one block). The only module
that imports graphviz; torch is imported only by the op level.
Exit codes of `mvitdsl draw`: 0 written, 2 bad arguments, 3 `dot` failed, 4 `dot` missing
(the .dot file is written instead and the message says how to install Graphviz).
"""

from __future__ import annotations

import hashlib
import html
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphviz

from . import shapes
from .analyze import BlockRow, Report, analyze, operators
from .ir import Block, Dims3, Model, Pool, Stage

if TYPE_CHECKING:
    import argparse

    from .spec import Spec

LEVELS = ("model", "stage", "block", "op")
FORMATS = (".svg", ".png", ".pdf", ".dot")
EXIT_OK, EXIT_USAGE, EXIT_RENDER, EXIT_NO_DOT = 0, 2, 3, 4
FONT = "Helvetica"
PALETTE = (
    "#dbe9f6",
    "#fde2c8",
    "#d9f0d3",
    "#f2d7ee",
    "#fff2b3",
    "#e0e0f8",
    "#cdeeee",
    "#f8d5d5",
    "#e8e8d0",
    "#d5e8f8",
    "#f6dcd0",
    "#dcefe4",
)
INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew "
    "install graphviz), then run: dot -T{fmt} {dot} -o {out}"
)


# ---------------------------------------------------------------- labels and style


def colour(name: str) -> str:
    """A pastel fill derived from a name, the same on every run (sha1, not the salted hash())."""
    return PALETTE[hashlib.sha1(name.encode()).digest()[0] % len(PALETTE)]


def dims(values: Sequence[int], video: bool) -> str:
    """A grid, kernel or stride as people write it: T×H×W for video, H×W for images."""
    return "×".join(str(v) for v in (values if video else values[1:]))


def lines(*parts: str) -> str:
    """A multi-line DOT label (graphviz's centred line break)."""
    return "\\n".join(p for p in parts if p)


def new_graph(name: str, rankdir: str, title: str) -> graphviz.Digraph:
    """A digraph with the house style: fonts of 10 pt and up so a PNG reads at natural size."""
    g = graphviz.Digraph(name=name)
    g.attr(
        rankdir=rankdir,
        label=title,
        labelloc="t",
        fontname=FONT,
        fontsize="16",
        nodesep="0.35",
        ranksep="0.4",
    )
    g.attr(
        "node",
        shape="box",
        style="rounded,filled",
        fillcolor="white",
        fontname=FONT,
        fontsize="12",
        margin="0.15,0.06",
    )
    g.attr("edge", fontname=FONT, fontsize="10", color="#555555")
    return g


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def title(report: Report) -> str:
    m = report.model
    cls = "counts include the cls token" if m.tokens.cls else "no cls token"
    return lines(
        f"{m.name}: {report.params:,} params, {report.macs / 1e9:.3f} GMACs",
        f"edges: token grid · channels ({cls})",
    )


class Shapes:
    """Edge and node texts of one model: grids in the model's own dimensionality."""

    def __init__(self, model: Model) -> None:
        self.video = model.input.kind == "video"
        self.cls = model.tokens.cls

    def grid(self, grid: Sequence[int]) -> str:
        return dims(grid, self.video)

    def size(self, grid: Dims3, channels: int | str) -> str:
        return f"{self.grid(grid)} · {channels}"

    def pool(self, pool: Pool) -> str:
        return f"{pool.mode} {self.grid(pool.kernel)} stride {self.grid(pool.stride)}"


def node_count(g: graphviz.Digraph) -> int:
    """Nodes declared in a graph's DOT text (clusters, edges and defaults are not nodes)."""
    decl = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[\w.]+)\s*\[')
    return sum(
        1
        for line in g.source.splitlines()
        if (m := decl.match(line)) and m.group(1) not in ("graph", "node", "edge")
    )


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
    position = {"none": "", "separable": "separable abs. positions", "joint": "abs. positions"}[
        model.tokens.position
    ]
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
    steps = ", ".join(t for t in ("norm" if h.norm else "", pool, "linear") if t)
    g.node("head", lines("head", f"{steps} → {h.classes} classes"), fillcolor="#eeeeee")
    g.edge(previous, "head", label=s.size(row.grid_q, row.dim_out))


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
    for i, st in enumerate(m.stages):
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
    add_head(g, m, s, previous, last)
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
    )


def stage_graph(report: Report, rankdir: str = "TB") -> graphviz.Digraph:
    """One cluster per stage; a block is drawn where it differs, identical runs are folded."""
    m, s = report.model, Shapes(report.model)
    g = new_graph(f"{m.name}_stage", rankdir, title(report))
    previous = add_stem(g, m, s)
    last = report.blocks[0]
    for i, st in enumerate(m.stages):
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
    add_head(g, m, s, previous, last)
    return g


# ---------------------------------------------------------------- level: block (Figure 3)


def default_block(model: Model) -> int:
    """The first block with a Q stride (the interesting one), else block 0."""
    return next((b.index for b in model.blocks if b.has_skip_pool), 0)


def block_graph(report: Report, index: int, rankdir: str = "TB") -> graphviz.Digraph:
    """One MHPA block in the style of the paper's Figure 3, with shapes on every edge."""
    m, s = report.model, Shapes(report.model)
    b, row = m.blocks[index], report.blocks[index]
    cls = "with cls token" if s.cls else "no cls token"
    g = new_graph(
        f"{m.name}_block{index}",
        rankdir,
        lines(
            f"{m.name} block {index} ({b.stage}): {b.dim_in} → {b.dim_out}, {b.heads} heads × "
            f"{b.head_dim}",
            f"edges: token grid · channels; L_Q×L_K = {row.len_q}×{row.len_kv} ({cls})",
        ),
    )
    g.node("x", "block input", shape="plaintext", style="")
    x_size = s.size(row.grid_in, b.dim_in)
    g.node("norm1", "LayerNorm")
    g.edge("x", "norm1", label=x_size)
    attn_out = add_attention(g, m, b, row, s)
    residual = add_residual(g, m, b, row, s)
    g.node("add1", "+", shape="circle", style="", fontsize="14", width="0.3", fixedsize="true")
    g.edge(attn_out, "add1", label=s.size(row.grid_q, b.dim_attn))
    g.edge(
        residual,
        "add1",
        label=s.size(row.grid_q, b.dim_attn if m.attention.dim_change == "attention" else b.dim_in),
    )
    add_mlp(g, m, b, row, s)
    g.node("y", "block output", shape="plaintext", style="")
    g.edge("add2", "y", label=s.size(row.grid_q, b.dim_out))
    return g


def add_attention(g: graphviz.Digraph, m: Model, b: Block, row: BlockRow, s: Shapes) -> str:
    """qkv, the three poolings, the attention and its projection; returns the projection id."""
    heads = f"{b.heads}×{b.head_dim}"
    g.node("qkv", lines(f"Linear qkv {b.dim_in} → 3×{b.dim_attn}", f"split {b.heads} heads"))
    g.edge("norm1", "qkv", label=s.size(row.grid_in, b.dim_in))
    pooled = {"Q": row.grid_q, "K": row.grid_kv, "V": row.grid_kv}
    scores = lines(
        f"Q̂ K̂ᵀ / √{b.head_dim}"
        + (
            f" + rel. pos ({'t, h, w' if s.video else 'h, w'})"
            if m.attention.rel_pos == "decomposed"
            else ""
        ),
        "softmax",
        f"L_Q×L_K = {row.len_q}×{row.len_kv} per head",
    )
    g.node("scores", scores, fillcolor="#fff2b3")
    residual = m.attention.residual_pool != "none"
    g.node(
        "mix",
        lines("attention × V̂", "+ Q̂ (residual pooling)" if residual else ""),
        fillcolor="#fff2b3",
    )
    g.edge("scores", "mix", label=f"{b.heads} × {row.len_q}×{row.len_kv}")
    for name, pool in (("Q", b.pool_q), ("K", b.pool_kv), ("V", b.pool_kv)):
        src = "qkv"
        if pool.exists:
            norm = f"+ LayerNorm({b.head_dim})" if pool.mode == "conv" else ""
            g.node(
                f"pool_{name.lower()}",
                lines(
                    f"Pool_{name}",
                    s.pool(pool),
                    norm,
                    f"{s.grid(row.grid_in)} → {s.grid(pooled[name])}",
                ),
                fillcolor="#d9f0d3",
            )
            g.edge("qkv", f"pool_{name.lower()}", label=f"{name} {s.size(row.grid_in, heads)}")
            src = f"pool_{name.lower()}"
        targets = {
            "Q": ["scores", "mix"] if residual else ["scores"],
            "K": ["scores"],
            "V": ["mix"],
        }[name]
        for t in targets:
            dashed = {"style": "dashed"} if name == "Q" and t == "mix" else {}
            g.edge(src, t, label=f"{name}̂ {s.size(pooled[name], heads)}", **dashed)
    pools = [
        f"pool_{n}" for n, p in (("q", b.pool_q), ("k", b.pool_kv), ("v", b.pool_kv)) if p.exists
    ]
    with g.subgraph() as same:
        same.attr(rank="same")
        for name in pools:
            same.node(name)
        for left, right in zip(pools, pools[1:]):  # keep Q, K, V in reading order
            same.edge(left, right, style="invis")
    g.node("proj", f"Linear proj {b.dim_attn} → {b.dim_attn}")
    g.edge("mix", "proj", label=s.size(row.grid_q, heads))
    return "proj"


def add_residual(g: graphviz.Digraph, m: Model, b: Block, row: BlockRow, s: Shapes) -> str:
    """The attention branch's skip path: projection (v2 channel change) and the skip pool."""
    src, dim = "x", b.dim_in
    if b.has_project and m.attention.dim_change == "attention":
        g.node("res_proj", lines("residual projection", f"Linear {b.dim_in} → {b.dim_out}"))
        g.edge("norm1", "res_proj", label=s.size(row.grid_in, b.dim_in))
        src, dim = "res_proj", b.dim_out
    if b.has_skip_pool:
        k = shapes.skip_kernel(b.skip_stride)
        g.node(
            "skip_pool",
            lines(
                "skip pool",
                f"max {s.grid(k)} stride {s.grid(b.skip_stride)}",
                "(cls token bypasses)" if s.cls else "",
            ),
            fillcolor="#d9f0d3",
        )
        g.edge(src, "skip_pool", label=s.size(row.grid_in, dim))
        src = "skip_pool"
    return src


def add_mlp(g: graphviz.Digraph, m: Model, b: Block, row: BlockRow, s: Shapes) -> None:
    """LayerNorm, MLP and the second residual (with the v1 channel-change projection)."""
    g.node("norm2", "LayerNorm")
    g.edge("add1", "norm2", label=s.size(row.grid_q, b.dim_attn))
    g.node(
        "mlp",
        lines(
            f"MLP: Linear {b.dim_attn} → {b.mlp_hidden}",
            "GELU",
            f"Linear {b.mlp_hidden} → {b.dim_out}",
        ),
        fillcolor="#dbe9f6",
    )
    g.edge("norm2", "mlp", label=s.size(row.grid_q, b.dim_attn))
    g.node("add2", "+", shape="circle", style="", fontsize="14", width="0.3", fixedsize="true")
    g.edge("mlp", "add2", label=s.size(row.grid_q, b.dim_out))
    if b.has_project and m.attention.dim_change == "mlp":
        g.node("mlp_proj", lines("residual projection", f"Linear {b.dim_attn} → {b.dim_out}"))
        g.edge("norm2", "mlp_proj", label=s.size(row.grid_q, b.dim_attn))
        g.edge("mlp_proj", "add2", label=s.size(row.grid_q, b.dim_out))
    else:
        g.edge("add1", "add2", label=s.size(row.grid_q, b.dim_out))


# ---------------------------------------------------------------- level: op (fx graph)

OP_FILL = {
    "placeholder": "#eeeeee",
    "output": "#eeeeee",
    "call_module": "#dbe9f6",
    "call_function": "#fff2b3",
    "call_method": "white",
    "get_attr": "#f2d7ee",
}


def op_graph(spec: Spec, report: Report, index: int, rankdir: str = "TB") -> graphviz.Digraph:
    """The emitted fx graph of one block, shapes from ShapeProp on the meta device (debugging)."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    from . import build

    gm = build(spec, device="meta").get_submodule(f"blocks.{index}")
    assert isinstance(gm, torch.fx.GraphModule)  # the emitter builds every block as one
    row = report.blocks[index]
    length = shapes.tokens(row.grid_in, report.model.tokens.cls)
    ShapeProp(gm).propagate(torch.empty(1, length, row.dim_in, device="meta"))
    g = new_graph(
        f"{report.name}_block{index}_ops",
        rankdir,
        f"{report.name} block {index}: emitted fx graph (shapes with batch 1)",
    )
    for node in gm.graph.nodes:
        g.node(
            f"op_{node.name}",
            lines(node.name, op_text(gm, node)),
            fillcolor=OP_FILL.get(node.op, "white"),
        )
        for arg in node.all_input_nodes:
            g.edge(f"op_{arg.name}", f"op_{node.name}", label=shape_text(arg))
    return g


def op_text(gm: Any, node: Any) -> str:
    """What an fx node runs, left out where the node's name already says it."""
    if node.op == "call_module":
        kind = type(gm.get_submodule(node.target)).__name__
        return kind if node.target.replace(".", "_") == node.name else f"{kind} {node.target}"
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        if name == "getitem" and len(node.args) > 1:
            return index_text(node.args[1])
        return "" if node.name.startswith(name) else name
    if node.op == "call_method":
        return "" if node.name.startswith(node.target) else f".{node.target}()"
    return ""


def index_text(index: Any) -> str:
    """A subscript as Python writes it: [:, :, 1:] or [0]."""
    parts = index if isinstance(index, tuple) else (index,)

    def one(p: Any) -> str:
        if isinstance(p, slice):
            return ":".join("" if v is None else str(v) for v in (p.start, p.stop)) + (
                "" if p.step is None else f":{p.step}"
            )
        return str(p)

    return "[" + ", ".join(one(p) for p in parts) + "]"


def shape_text(node: Any) -> str:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return "×".join(str(v) for v in shape) if shape is not None else ""


# ---------------------------------------------------------------- the paper's stage table


TableRow = tuple[str, tuple[str, ...], str, str]


def table_rows(report: Report) -> list[TableRow]:
    """(stage, operator lines, repeat, output size) rows, laid out as the MViT paper's Table 2."""
    m, s = report.model, Shapes(report.model)
    p, h = m.patch, m.head

    def size(dim: int, grid: Dims3) -> str:
        return f"{dim}×{s.grid(grid)}"

    rows: list[TableRow] = [
        ("data", (m.input.kind,), "", size(m.input.channels, m.input.size)),
        (
            "patch",
            (f"conv {s.grid(p.kernel)}, {p.dim}", f"stride {s.grid(p.stride)}"),
            "",
            size(p.dim, report.blocks[0].grid_in),
        ),
    ]
    for st in report.stages:
        ops = tuple(operators(m, st.dim).split(", "))
        rows.append((st.name, ops, f"×{st.blocks}", size(st.dim, st.grid)))
    pool = "cls token" if h.pool == "cls" else "mean"
    steps = ", ".join(t for t in ("norm" if h.norm else "", pool, "linear") if t)
    rows.append(("head", (steps,), "", str(h.classes)))
    return rows


def table_caption(report: Report) -> str:
    return (
        f"{report.name}: {report.params:,} params, {report.macs / 1e9:.3f} GMACs "
        f"(matmul-only), {report.macs_fvcore / 1e9:.3f} GMACs (fvcore)"
    )


def table_markdown(report: Report) -> str:
    """The stage table as Markdown."""
    out = [
        f"**{table_caption(report)}**",
        "",
        "| stage | operators | output sizes |",
        "|---|---|---|",
    ]
    for stage, ops, repeat, size in table_rows(report):
        text = f"[{', '.join(ops)}] {repeat}" if repeat else ", ".join(ops)
        out.append(f"| {stage} | {text} | {size} |")
    return "\n".join(out) + "\n"


def table_cells(row: TableRow, sides: str) -> str:
    """One HTML-like table row; a repeated stage gets the paper's brackets (cell ruled L and R)."""
    stage, ops, repeat, size = row
    text = "".join(f'{html.escape(o)}<BR ALIGN="LEFT"/>' for o in ops)
    if repeat:
        text = "<BR/>".join(html.escape(o) for o in ops)
        text = (
            '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3"><TR>'
            f'<TD BORDER="1" SIDES="LR">{text}</TD></TR></TABLE>'
        )
    cells = (html.escape(stage), text, html.escape(repeat), html.escape(size))
    return "<TR>" + "".join(f'<TD{sides} ALIGN="LEFT">{c}</TD>' for c in cells) + "</TR>"


def table_graph(report: Report) -> graphviz.Digraph:
    """The stage table as an image: one HTML-like table node with booktabs-style rules."""
    g = graphviz.Digraph(name=f"{report.name}_table")
    g.attr(fontname=FONT, fontsize="12")
    g.attr("node", shape="plaintext", fontname=FONT, fontsize="12")
    head = ("<B>stage</B>", "<B>operators</B>", "", "<B>output sizes</B>")
    cells = [
        f'<TR><TD COLSPAN="4"><B>{html.escape(table_caption(report))}</B></TD></TR>',
        "<TR>"
        + "".join(f'<TD BORDER="1" SIDES="TB" ALIGN="LEFT">{h}</TD>' for h in head)
        + "</TR>",
    ]
    rows = table_rows(report)
    for n, row in enumerate(rows):
        cells.append(table_cells(row, ' BORDER="1" SIDES="B"' if n == len(rows) - 1 else ""))
    g.node(
        "table",
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="6">'
        + "".join(cells)
        + "</TABLE>>",
    )
    return g


# ---------------------------------------------------------------- the command


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
        "op": lambda: op_graph(spec, report, index, rd),
    }
    return makers[level]()


def default_out(spec: Spec, level: str, table: bool) -> Path:
    return Path("build") / f"{spec.name}.{'table' if table else level}.svg"


def usage_error(args: argparse.Namespace, spec: Spec) -> str | None:
    """Why these arguments cannot be drawn, or None."""
    out = args.out
    allowed = (*FORMATS, ".md") if args.table else FORMATS
    if out is not None and out.suffix.lower() not in allowed:
        return f"cannot write '{out}': the file name must end in {', '.join(allowed)}"
    n = len(spec.model.blocks)
    if args.block is not None and not 0 <= args.block < n:
        return f"--block {args.block} is out of range: {spec.name} has blocks 0 to {n - 1}"
    return None


def write(g: graphviz.Digraph, out: Path) -> int:
    """Render by the file extension; without `dot`, write the .dot file and say so (exit 4)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = out.suffix.lower()[1:]
    if fmt == "dot":
        out.write_text(g.source, encoding="utf-8")
        return EXIT_OK
    try:
        data = g.pipe(format=fmt)
    except graphviz.CalledProcessError as e:
        print(f"mvitdsl draw: Graphviz failed to render {out}: {e.stderr!r}", file=sys.stderr)
        return EXIT_RENDER
    except graphviz.ExecutableNotFound:
        dot = out.with_suffix(".dot")
        dot.write_text(g.source, encoding="utf-8")
        print(
            f"mvitdsl draw: Graphviz's `dot` program was not found; wrote {dot} instead.\n"
            + INSTALL_HINT.format(fmt=fmt, dot=dot, out=out),
            file=sys.stderr,
        )
        return EXIT_NO_DOT
    out.write_bytes(data)
    return EXIT_OK


def run_draw_command(spec: Spec, args: argparse.Namespace) -> int:
    """`mvitdsl draw`: draw or tabulate `spec` into args.out (default build/<model>.<level>.svg)."""
    problem = usage_error(args, spec)
    if problem:
        print(f"mvitdsl draw: {problem}", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or default_out(spec, args.level, args.table)
    if args.table and out.suffix.lower() == ".md":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table_markdown(analyze(spec)), encoding="utf-8")
        print(f"wrote {out}")
        return EXIT_OK
    g = (
        table_graph(analyze(spec))
        if args.table
        else draw(spec, args.level, rankdir=args.rankdir, block=args.block)
    )
    code = write(g, out)
    if code == EXIT_OK:
        print(f"wrote {out}" + ("" if args.table else f" ({plural(node_count(g), 'node')})"))
    return code
