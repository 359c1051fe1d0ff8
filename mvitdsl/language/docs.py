"""docs/LANGUAGE.md, generated from the settings table (language/settings.py).

`make docs` (or `python -m mvitdsl.language.docs > docs/LANGUAGE.md`) writes it;
tests/test_language_doc.py fails when the file is stale.
"""

from __future__ import annotations

from typing import Any

from . import reference as R
from . import settings as S

HEADER = """\
# The mvitdsl language

<!-- Generated from mvitdsl/language/settings.py by `make docs`; do not edit by hand. -->

A spec is one `model NAME [extends "FILE.mv" PARENT] { ... }` block. Inside, each line is a
setting (`key option value, option value, ...`; a trailing comma continues the line) or the
`stages { ... }` table. Comments start with `#`. Sizes are written `3x7x7` (video: T x H x W) or
`7x7` (image: H x W). Every option below has one default, used whether the setting is written
without it or left out entirely; `mvitdsl check --resolved` prints each value in effect with the
file:line that set it. Values outside an option's range are refused with E205.
"""


def _default(o: S.Option) -> str:
    if o.default_text:
        return o.default_text
    value: Any = o.default
    if o.kind == "switch":
        return "on" if value else "off"
    if o.kind == "flag":
        return "(the default)" if value is True else ""
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None else str(value)


def _values(o: S.Option) -> str:
    if o.word == "pool":
        return "`conv` \\| `avg` \\| `max`, then optionally a kernel size (Q and K/V)"
    if o.choices:
        return " \\| ".join(f"`{c}`" for c in o.choices)
    if o.kind == "switch":
        return "`on` \\| `off`"
    if o.kind == "flag":
        return "(a flag)"
    if o.kind == "size" or o.word in ("stride_kv", "video", "image"):
        lo = 0 if o.range and o.range.lo == 0 else 1
        return f"a size, each >= {lo}"
    if o.range is not None:
        kind = "a whole number" if o.kind == "integer" else "a number"
        return f"{kind} in {o.range}"
    return "-"


def _table(options: tuple[S.Option, ...], stage_column: bool) -> list[str]:
    head = "| option | values | default | per stage | meaning | example |"
    rule = "|---|---|---|---|---|---|"
    if not stage_column:
        head, rule = head.replace(" per stage |", ""), rule[:-4]
    lines = [head, rule]
    for o in options:
        cells = [f"`{o.word}`", _values(o), _default(o)]
        if stage_column:
            cells.append(f"`{o.word}=`" if o.per_stage else "")
        old = ", ".join(f"`{w}`" for w in o.old)
        cells += [o.doc + (f" (older spelling {old}: read with warning W001)" if old else "")]
        cells.append(f"`{o.example}`")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render() -> str:
    """The whole of docs/LANGUAGE.md."""
    out = [HEADER]
    for s in S.SETTINGS:
        out += [f"## `{s.key}`{' (required)' if s.required else ''}", "", s.doc + ".", ""]
        out += ["```", s.example, "```", ""]
        out += _table(s.options, any(o.per_stage for o in s.options)) + [""]
    return "\n".join([*out, *_stages(), *STATEMENTS, *_paths()])


def _stages() -> list[str]:
    """The stage table's section: its columns, cells and `extends` rules, from the table."""
    return [
        "## `stages` (required)",
        "",
        "One row per stage: positional columns, then optional `key=value` cells that override a",
        "model-wide option for that stage's blocks (no spaces around `=`).",
        "",
        "| column | values | meaning |",
        "|---|---|---|",
        *(f"| `{c.word}` | {_column_values(c)} | {c.doc} |" for c in S.COLUMNS),
        "",
        "Cells (each option marked per-stage above, and these of the row only):",
        "",
        *_table(S.ROW_CELLS, True),
        "",
        "```",
        "stages {",
        "  #        blocks  dim  heads  stride_q  [stride_kv|off]  [key=value ...]",
        "  scale2      1     96    1     1x1x1",
        "  scale3      2    192    2     1x2x2   kernel_q=3x3x3 mlp_ratio=2 pool=avg",
        "  scale4      1    384    4     1x2x2   off",
        "}",
        "```",
        "",
        "## `extends`",
        "",
        '`model child extends "parent.mv" parent { ... }` (or `extends mvitv2_s`: a shipped',
        "spec by its name, `mvitdsl list`) starts from the parent's statements;",
        "a child setting overrides the parent's clause by clause (by the option word; `cls` /",
        "`no_cls`, `norm` / `no_norm` and `cls` / `mean` replace each other), and a child",
        "stage row replaces the parent's row of the same name, cells included. A child row must",
        "name a parent stage (E211, with a did-you-mean hint) unless it starts with `add`",
        "(`add scale6  1  768  8  1x2x2` appends a stage); `drop scale5` removes one.",
        "",
    ]


def _column_values(c: S.Column) -> str:
    if c.kind == "name":
        return "a name"
    if c.kind == "integer" and c.range is not None:
        return f"a whole number in {c.range}"
    size = "a size, each >= 1"
    return size if c.kind == "size" else f"{size}, or `off`, or nothing"


def _paths() -> list[str]:
    """The sweep's PATH words, from the same table (language/overrides.py reads them)."""
    lines = [
        "## Sweep PATHs",
        "",
        "`mvitdsl sweep --vary PATH=VALUES` names one value: `STAGE.COLUMN` (a column above),",
        "`STAGE.CELL` (any per-stage cell by its own name, written in the row or not:",
        "`scale3.pool_kv=off`), or `SETTING.OPTION` by the option's word or the words below.",
        "Flags that set one field are varied by that field, a flag word as the value",
        "(`tokens.cls=no_cls`). The input's kind is not varied.",
        "",
        "| PATH | names |",
        "|---|---|",
    ]
    for s in S.SETTINGS:
        named: dict[str, list[str]] = {}
        for o in s.options:
            if o.path:
                named.setdefault(o.path, []).append(f"`{o.word}`")
        for path, words in named.items():
            lines.append(f"| `{s.key}.{path}` | the value after {' or '.join(words)} |")
        for group in s.exclusive():
            field = s.option(group[0]).field
            choices = " \\| ".join(f"`{w}`" for w in group)
            lines.append(f"| `{s.key}.{field}` | one of {choices} |")
    for c in S.COLUMNS:
        for old in c.old:
            lines.append(f"| `STAGE.{old}` | the `{c.word}` column (an older word) |")
    return [*lines, ""]


# The statements read by their own hooks, outside the settings table (settings.STATEMENTS):
# `outputs` (language/read.py, Reader.outputs), `expect` (language/expect.py; not inherited)
# and `reference` (language/reference.py; not inherited).
STATEMENTS = [
    "## `outputs`",
    "",
    "Feature maps after these stages instead of logits: an ordered dict of (B, C, T, H, W) maps",
    "(images: (B, C, H, W)), the blocks after the last output and the head pruned; `norm` adds a",
    "LayerNorm per map (`{stage}_norm`). `build(features=...)` overrides it. Unknown stage: E203.",
    "",
    "```",
    "outputs    scale2, scale3, scale4, scale5, norm",
    "```",
    "",
    "## `expect`",
    "",
    "Figures the spec states about itself, checked after analysis at the spec's own input size",
    "to the digits written (`gmacs 70.6` holds for 70.55..70.65; `params` exactly): `params`,",
    "`gmacs` (matmul-only), `gmacs_fvcore`, `output` (the last stage's C x T x H x W, images",
    "C x H x W). A figure that differs is E308 with the computed value. Not inherited through",
    "`extends`: a child states its own, or none.",
    "",
    "```",
    "expect     params 36610672, gmacs 70.599, gmacs_fvcore 70.804, output 768x8x7x7",
    "```",
    "",
    "## `reference`",
    "",
    "The implementation the spec's model equals: a source and that source's model name.",
    "",
    *(f"- `{word}`: {doc}" for word, doc in R.WORDS.items()),
    "",
    "`mvitdsl bench --against SOURCE` and benchmarks/table.py build it at the spec's input size",
    "beside the spec's model and copy the same weights into both; `--against` on a spec without",
    "a line for that source is an error. An unknown source is E203; a missing, extra or malformed",
    "model name (lower-case letters, digits and `_`) is E204. One per spec; not inherited",
    "through `extends`: a child is another model and states its own, or none.",
    "",
    "```",
    R.EXAMPLE,
    "```",
    "",
]


if __name__ == "__main__":
    print(render(), end="")
