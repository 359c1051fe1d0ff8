"""The analysis report as text for `mvitdsl check`: the paper's Table 2 (rows from `table`), then
(with --blocks) the stage details and one line per block. Reads a Report; computes no costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir import Dims3, spatial
from .table import TableRow, table_rows

if TYPE_CHECKING:
    from .analyze import BlockRow, Report, StageRow

Row = tuple[str, str, str, str, str, str, str]  # one line of the stage table, a cell per column

_HEADER: Row = ("stage", "operators", "output size", "blocks", "heads", "params", "GMACs")
_RIGHT = {3, 4, 5, 6}  # the numeric columns, right-aligned

_STAGE_HEAD = (
    f"{'stage':<8} {'tokens':>8} {'no cls':>8} {'heads':>5} {'hd':>4} {'K/V grid':>10} "
    f"{'L_Q x L_K':>13} {'GMACs':>7} {'fvcore':>7} {'attn':>6} {'mlp':>6} {'pool':>6} "
    f"{'act MiB':>9}"
)
_BLOCK_HEAD = (
    f"{'block':>5}  {'stage':<8} {'C_in>C_out':>11} {'heads':>5} {'hd':>4} "
    f"{'grid in':>11} {'Q grid':>11} {'K/V grid':>11} {'L_Q x L_K':>13} "
    f"{'params':>11} {'GMACs':>7} {'act MiB':>8}"
)


def _size(dim: int, grid: Dims3, video: bool) -> str:
    return "×".join(str(v) for v in (dim, *spatial(grid, video)))


def _dims(values: Dims3, video: bool) -> str:
    """A kernel, stride or grid as "TxHxW" (video) or "HxW" (images)."""
    return "x".join(map(str, spatial(values, video)))


def _cost_cells(params: int, macs: int) -> tuple[str, str]:
    return f"{params:,}", f"{macs / 1e9:.3f}"


# ---------------------------------------------------------------- the stage table


def render_table(report: Report) -> str:
    """The paper's Table 2 layout: stage, operators, output size, blocks, heads, params, GMACs."""
    video = report.model.video
    rows = [_HEADER, *(_cells(r, video) for r in table_rows(report)), _total_row(report)]
    return _title(report) + "\n" + "\n".join(_layout(rows)) + _outputs_lines(report)


def _outputs_lines(report: Report) -> str:
    """With an `outputs` setting: one line per feature map, and the feature model's size."""
    info = report.outputs
    if not info:
        return ""
    maps = ", ".join(
        f"{i['name']} {i['num_chs']}ch /{i['reduction']}"
        + (f" t/{i['temporal_stride']}" if "temporal_stride" in i else "")
        for i in info
    )
    params = report.feature_params
    return f"\noutputs: {maps}; feature model {params:,} params (later blocks and head pruned)"


def _title(report: Report) -> str:
    return (
        f"{report.model.name}: {report.params:,} params, {report.macs / 1e9:.3f} GMACs "
        f"matmul-only, {report.macs_fvcore / 1e9:.3f} GMACs fvcore (LayerNorm counted)"
    )


def _cells(row: TableRow, video: bool) -> Row:
    """One row of analysis.table as text cells."""
    if row.kernel is not None and row.stride is not None:
        ops = f"conv {_dims(row.kernel, video)}, stride {_dims(row.stride, video)}"
    else:
        ops = ", ".join(row.operators)
    size = str(row.channels) if row.grid is None else _size(row.channels, row.grid, video)
    blocks = "" if row.blocks is None else str(row.blocks)
    heads = "" if row.heads is None else str(row.heads)
    costs = ("", "") if row.params is None else _cost_cells(row.params, row.macs or 0)
    return (row.stage, ops, size, blocks, heads, *costs)


def _total_row(report: Report) -> Row:
    blocks = str(len(report.blocks))
    return ("total", "", "", blocks, "", *_cost_cells(report.params, report.macs))


def _layout(rows: list[Row]) -> list[str]:
    """Columns padded to their widest cell; a rule under the header and above the total."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [
            c.rjust(w) if i in _RIGHT else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return lines


# ---------------------------------------------------------------- stage and block details


def render_stages(report: Report) -> str:
    """Per stage at its working width: tokens with and without cls, head_dim, the K/V grid and
    attention size of its later blocks, MACs in both conventions, the shares, activations."""
    video = report.model.video
    return "\n".join([_STAGE_HEAD, *(_stage_line(st, video) for st in report.stages)])


def _stage_line(st: StageRow, video: bool) -> str:
    kv, share = _dims(st.grid_kv, video), st.share
    return (
        f"{st.name:<8} {st.tokens:>8,} {st.tokens_no_cls:>8,} {st.heads:>5} "
        f"{st.head_dim:>4} {kv:>10} {f'{st.attention[0]}x{st.attention[1]}':>13} "
        f"{st.macs / 1e9:>7.3f} {st.macs_fvcore / 1e9:>7.3f} "
        f"{share['attention']:>6.1%} {share['mlp']:>6.1%} {share['pooling']:>6.1%} "
        f"{st.activation_bytes / 2**20:>9.1f}"
    )


def render_blocks(report: Report) -> str:
    """The stage details, then one line per block: what it really takes and emits, attention
    size, memory, cost."""
    video = report.model.video
    windowed = any(b.window_kv is not None for b in report.blocks)
    head = _BLOCK_HEAD + ("  scope (L_Q x L_K: one window's)" if windowed else "")
    lines = [render_stages(report), "", head]
    lines += [_block_line(b, video) for b in report.blocks]
    lines += [_share_line(report), memory_line(report)]
    return "\n".join(lines)


def _block_line(b: BlockRow, video: bool) -> str:
    g = [_dims(v, video) for v in (b.grid_in, b.grid_q, b.grid_kv)]
    line = (
        f"{b.index:>5}  {b.stage:<8} {f'{b.dim_in}>{b.dim_out}':>11} {b.heads:>5} "
        f"{b.head_dim:>4} {g[0]:>11} {g[1]:>11} {g[2]:>11} "
        f"{f'{b.attention[0]}x{b.attention[1]}':>13} {b.params:>11,} {b.macs / 1e9:>7.3f} "
        f"{b.activation_bytes / 2**20:>8.1f}"
    )
    return line + _scope_cell(b, video)


def _scope_cell(b: BlockRow, video: bool) -> str:
    """Windowed blocks: the windows, the K/V and Q window sizes, and the lag (a stage's first
    block attending in the previous stage's scope); nothing for global attention."""
    if b.window_kv is None or b.window_q is None:
        return ""
    kv, q = _dims(b.window_kv, video), _dims(b.window_q, video)
    lag = ", previous stage's scope" if b.scope.endswith("+lag") else ""
    return f"  {b.windows} windows K/V {kv} Q {q}{lag}"


def _share_line(report: Report) -> str:
    t = report.totals
    parts = (
        ("attention", t.attn_macs),
        ("mlp", t.mlp_macs),
        ("pooling", t.pool_macs),
        ("stem+head", t.other_macs),
    )
    return "MAC share: " + ", ".join(f"{k} {v / t.macs:.1%}" for k, v in parts)


def memory_line(report: Report) -> str:
    """The activation-memory estimate at the report's batch and dtype, one line."""
    return (
        f"activation memory for a training step at batch {report.batch}, "
        f"{report.dtype}: {report.activation_bytes / 2**30:.2f} GiB (estimate)"
    )
