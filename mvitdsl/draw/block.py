"""The block level: one MHPA block drawn as in the MViT paper's Figure 3, shapes on every edge."""

from __future__ import annotations

import graphviz

from ..analysis.analyze import BlockRow, Report
from ..ir import Block, Model
from .diagram import Shapes, lines, new_graph


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
            f" + rel. pos ({'t, h, w' if s.video else 'h, w'})" if b.rel_pos == "decomposed" else ""
        ),
        "softmax",
        f"L_Q×L_K = {row.attention[0]}×{row.attention[1]} per head"
        + (" and window" if row.window_kv is not None else ""),
        window_text(row, s),
    )
    g.node("scores", scores, fillcolor="#fff2b3")
    residual = b.residual_pool != "none"
    g.node(
        "mix",
        lines("attention × V̂", "+ Q̂ (residual pooling)" if residual else ""),
        fillcolor="#fff2b3",
    )
    per = f"{row.windows} × " if row.window_kv is not None else ""
    g.edge("scores", "mix", label=f"{b.heads} × {per}{row.attention[0]}×{row.attention[1]}")
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
        k, stride = b.pool_skip.kernel, b.pool_skip.stride
        g.node(
            "skip_pool",
            lines(
                "skip pool",
                f"max {s.grid(k)} stride {s.grid(stride)}",
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


def window_text(row: BlockRow, s: Shapes) -> str:
    """A windowed block's windows: how many, K/V and Q sizes, and the lag; empty when global."""
    if row.window_kv is None or row.window_q is None:
        return ""
    lag = " (previous stage's scope)" if row.scope.endswith("+lag") else ""
    return (
        f"{row.windows} mask-unit windows: K/V {s.grid(row.window_kv)}, "
        f"Q {s.grid(row.window_q)}{lag}"
    )
