#!/usr/bin/env python3
"""Apply issue 12's vocabulary renames (see /work/wt/GLOSSARY.md) to a worktree.

    python rename_vocab.py WORKTREE [--check] [--verbose]

Idempotent: every pattern is anchored on word boundaries so that its own output never matches
again (running it twice changes nothing the second time). It rewrites only text files of the
project (.py .md .mv .json .txt .lark .dot .toml .cfg .yaml), never .git, virtual environments,
CHANGELOG.md (history keeps the old words) or this script. A line that contains the marker
`rename_vocab: keep` is left alone (for tests and alias tables that must spell an old word).
`--check` only lists the files that would change and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KEEP_MARKER = "rename_vocab: keep"
SUFFIXES = {".py", ".md", ".mv", ".json", ".txt", ".lark", ".dot", ".toml", ".cfg", ".yaml"}
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
SKIP_FILES = {"CHANGELOG.md", "rename_vocab.py", "GLOSSARY.md"}


@dataclass(frozen=True)
class Rule:
    """One regex rename, applied to the files whose repository path `scope` accepts."""

    pattern: str
    replacement: str
    scope: Callable[[str], bool] = lambda path: True

    def apply(self, text: str) -> str:
        return re.sub(self.pattern, self.replacement, text)


def under(*prefixes: str) -> Callable[[str], bool]:
    return lambda path: path.startswith(prefixes)


def not_under(*prefixes: str) -> Callable[[str], bool]:
    return lambda path: not path.startswith(prefixes)


RULES: tuple[Rule, ...] = (
    # --- the K/V stride: one name, timm's (IR Attention.kv_stride/kv_adaptive, language word)
    Rule(r"\bkv_adaptive\b", "stride_kv_adaptive"),
    Rule(r"\b_kv_stride\b", "_stride_kv"),
    Rule(r"\bkv_stride\b", "stride_kv"),
    # --- the Q pooling rule `first|all` is `pool_q_blocks` (Block.pool_q stays the ir.Pool)
    Rule(r"\bpool_q (first|all)\b", r"pool_q_blocks \1"),
    Rule(r"\bpool_q (first\\\|all)", r"pool_q_blocks \1"),  # README table cell
    Rule(r"\b(attention|att)\.pool_q\b", r"\1.pool_q_blocks"),
    Rule(r"\"pool_q\": \"(first|all)\"", r'"pool_q_blocks": "\1"'),
    Rule(r"\"pool_q\"(\s*:\s*set_word\(\s*\w+,\s*)\"pool_q\"", r'"pool_q_blocks"\1"pool_q_blocks"'),
    Rule(r"\"pool_q rule\"", '"pool_q_blocks rule"'),
    Rule(r"\bpool_q: Literal\[\"first\", \"all\"\]", 'pool_q_blocks: Literal["first", "all"]'),
    Rule(r"(f[\"'])pool_q \{draw", r"\1pool_q_blocks {draw"),
    Rule(r"\"pool_q\": lambda m: f\"pool_q \{", '"pool_q_blocks": lambda m: f"pool_q_blocks {'),
    # --- the stage table's stride columns are stride_q / stride_kv (messages, hints, comments)
    Rule(r"\bpool_q stride\b", "stride_q"),
    Rule(r"\bpool_kv stride\b", "stride_kv"),
    Rule(r"(\bheads\s+)pool_q(\s+\[?)pool_kv\b", r"\1stride_q\2stride_kv"),
    Rule(r"(\bheads\s+)pool_q\b", r"\1stride_q"),
    Rule(r"\"heads\", \"pool_q\", \"pool_kv\"", '"heads", "stride_q", "stride_kv"'),
    Rule(r"\"pool_q\"", '"stride_q"', under("mvitdsl/analysis/check.py")),
    Rule(r"\"pool_kv\"", '"stride_kv"', under("mvitdsl/analysis/check.py")),
    # --- two StageRow classes: the parsed one is a StageDraft
    Rule(r"\bStageRow\b", "StageDraft", under("mvitdsl/language/")),
    Rule(r"`Reader`, `StageRow`", "`Reader`, `StageDraft`"),
    # --- two block_shapes functions: shape flow vs parameter shapes
    Rule(r"\bBlockShapes\b", "BlockFlow"),
    Rule(r"\bblock_shapes\b", "block_param_shapes", under("mvitdsl/backend/")),
    Rule(r"\bblock_shapes\b", "block_flow", not_under("mvitdsl/backend/")),
    # --- the report's input size is input_size, (C, T, H, W)
    Rule(r"\b(report|rep)\.input\b(?![._\w])", r"\1.input_size"),
    # --- one home for the s+1 kernel rule
    Rule(r"\bskip_kernel\b", "default_kernel"),
    Rule(r"\b_kernel_rule\b", "default_kernel"),
)


def files(root: Path) -> list[Path]:
    out = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts) or rel.parts[:1] == ("build",):
            continue
        if path.is_file() and path.suffix in SUFFIXES and path.name not in SKIP_FILES:
            out.append(path)
    return sorted(out)


def rename_text(text: str, rel: str) -> str:
    """The text with every rule applied, line by line, except lines carrying the keep marker."""
    lines = text.splitlines(keepends=True)
    rules = [r for r in RULES if r.scope(rel)]
    out = []
    for line in lines:
        if KEEP_MARKER not in line:
            for rule in rules:
                line = rule.apply(line)
        out.append(line)
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("worktree", type=Path)
    p.add_argument("--check", action="store_true", help="list files that would change; change none")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    root = args.worktree.resolve()
    changed = []
    for path in files(root):
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        new = rename_text(text, rel)
        if new != text:
            changed.append(rel)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for rel in changed:
        print(("would change " if args.check else "changed ") + rel)
    if args.verbose or not changed:
        print(f"{len(changed)} file(s) {'to change' if args.check else 'changed'}", file=sys.stderr)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
