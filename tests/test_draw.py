"""`mvitdsl draw`: golden DOT at every level, the facts a reader needs on the block view,
legibility of the largest spec, rendering by extension, and the exit code without `dot`.
Regenerate the goldens with `MVITDSL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest
tests/test_draw.py -k golden` and review the diff like code."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, assert_golden, need

GOLDEN_SPECS = ("mvit_b", "mvitv2_s")
HAVE_DOT = shutil.which("dot") is not None


def load(name: str):
    import mvitdsl

    return mvitdsl.load_spec(SPECS / f"{name}.mv")


def source(name: str, level: str, **kw) -> str:
    from mvitdsl.draw import draw

    return draw(load(name), level, **kw).source


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvitdsl", "draw", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def need_dot() -> None:
    """Rendering is required where CI installed Graphviz; elsewhere it is skipped."""
    need(HAVE_DOT, "Graphviz's `dot` is not installed (apt-get install graphviz)")


def label(dot: str, node: str) -> str:
    m = re.search(rf'^\s*{node} \[label="((?:[^"\\]|\\.)*)"', dot, re.M)
    assert m, f"no node {node} in the DOT text"
    return m.group(1).replace("\\n", "\n")


# ---------------------------------------------------------------- goldens and determinism


@pytest.mark.parametrize("level", ["model", "stage", "block"])
@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_golden_dot(name, level):
    assert_golden(f"draw_{name}_{level}.dot", source(name, level))


@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_golden_dot_op_level(name):
    pytest.importorskip("torch")
    assert_golden(f"draw_{name}_op.dot", source(name, "op"))


def test_golden_table_dot():
    import mvitdsl
    from mvitdsl.draw import table_graph

    assert_golden("draw_mvit_b_table.dot", table_graph(mvitdsl.analyze(load("mvit_b"))).source)


def test_dot_text_is_byte_identical_across_processes(tmp_path):
    """Colours come from sha1 of names, not the salted hash(): two hash seeds, same bytes."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"seed{seed}.dot"
        r = run(
            "specs/mvit_b.mv",
            "--level",
            "stage",
            "-o",
            str(out),
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == source("mvit_b", "stage").encode()


def test_drawing_below_op_level_does_not_import_torch():
    script = (
        "import sys, mvitdsl\n"
        "from mvitdsl.draw import draw, table_graph, table_markdown\n"
        f"spec = mvitdsl.load_spec({str(SPECS / 'mvitv2_s.mv')!r})\n"
        "for level in ('model', 'stage', 'block'):\n"
        "    draw(spec, level).source\n"
        "table_graph(mvitdsl.analyze(spec)).source\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- what the diagrams say


def test_block_view_of_mvit_b_block_1_shows_pooled_grids_and_attention_size():
    from mvitdsl.draw import default_block

    assert default_block(load("mvit_b").model) == 1  # the first block with a Q stride
    dot = source("mvit_b", "block")
    assert "8×56×56 → 8×28×28" in label(dot, "pool_q")
    assert "8×56×56 → 8×14×14" in label(dot, "pool_k")
    assert "8×56×56 → 8×14×14" in label(dot, "pool_v")
    assert "L_Q×L_K = 6273×1569" in label(dot, "scores")
    assert 'label="Q̂ 8×28×28 · 2×96"' in dot and 'label="K̂ 8×14×14 · 2×96"' in dot
    assert "max 1×3×3 stride 1×2×2" in label(dot, "skip_pool")
    assert "(with cls token)" in dot


def test_block_view_follows_the_channel_change_of_each_version():
    v1 = source("mvit_b", "block", block=2)  # v1: 192 -> 384 in the MLP of the last block
    assert "Linear 192 → 384" in label(v1, "mlp_proj") and "res_proj" not in v1
    assert "Linear 768 → 384" in label(v1, "mlp")
    v2 = source("mvitv2_s", "block", block=1)  # v2: 96 -> 192 in attention, first block
    assert "Linear 96 → 192" in label(v2, "res_proj") and "mlp_proj" not in v2
    assert "Linear qkv 96 → 3×192" in label(v2, "qkv")
    assert "residual pooling" in label(v2, "mix") and "rel. pos (t, h, w)" in label(v2, "scores")


def test_stage_view_folds_repeated_blocks():
    dot = source("mvit_b", "stage")
    for first, text in (
        (1, "Pool_Q stride 1×2×2 → 8×28×28"),
        (2, "192 → 384"),
        (3, "Pool_Q stride 1×2×2 → 8×14×14"),
        (13, "384 → 768"),
    ):
        assert text in label(dot, f"b{first}")
    assert label(dot, "b4").startswith("×9 blocks (4–12)")
    assert not re.search(r"^\s*b(5|6|7|8|9|10|11|12) \[", dot, re.M)


def test_model_view_has_one_node_per_stage_with_strides():
    dot = source("mvit_b", "model")
    assert "11 blocks · dim 384 · 4 heads\nQ stride 1×2×2 · KV stride 1×2×2" in label(
        dot, "stage_scale4"
    )
    assert 'stage_scale3 -> stage_scale4 [label="8×28×28 · 384"]' in dot


def test_largest_spec_stage_view_is_small_and_uses_readable_fonts():
    from mvitdsl.draw import draw, node_count

    spec = load("mvitv2_l_image")
    assert len(spec.model.blocks) == 48
    counts = {level: node_count(draw(spec, level)) for level in ("model", "stage", "block")}
    assert counts["stage"] <= 30, counts
    for level in counts:
        dot = draw(spec, level).source
        sizes = [float(v) for v in re.findall(r'fontsize="?([0-9.]+)', dot)]
        assert sizes and min(sizes) >= 10, (level, sizes)
        assert not re.search(r"\b(size|dpi|ratio)=", dot), "scaling would shrink the text"


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.mv")), ids=lambda p: p.stem)
def test_every_shipped_spec_draws_at_the_spec_levels(path):
    from mvitdsl.draw import draw, node_count

    spec = load(path.stem)
    for level in ("model", "stage", "block"):
        assert node_count(draw(spec, level)) >= 5


def test_table_markdown_matches_the_paper_layout():
    import mvitdsl
    from mvitdsl.draw import table_markdown

    md = table_markdown(mvitdsl.analyze(load("mvit_b")))
    assert "| stage | operators | output sizes |" in md
    assert "| patch | conv 3×7×7, 96, stride 2×4×4 | 96×8×56×56 |" in md
    assert "| scale4 | [MHPA(384), MLP(1536)] ×11 | 384×8×14×14 |" in md
    assert "| head | norm, cls token, linear | 400 |" in md
    assert "36,610,672 params" in md


# ---------------------------------------------------------------- the command and rendering


def test_rankdir_and_block_reach_the_drawing(tmp_path):
    out = tmp_path / "b.dot"
    r = run(
        "specs/mvit_b.mv", "--level", "block", "--block", "14", "--rankdir", "LR", "-o", str(out)
    )
    assert r.returncode == 0, r.stderr
    dot = out.read_text()
    assert "rankdir=LR" in dot and "8×14×14 → 8×7×7" in label(dot, "pool_q")


def test_table_markdown_from_the_command_line(tmp_path):
    r = run("specs/mvitv2_s.mv", "--table", "-o", str(tmp_path / "t.md"))
    assert r.returncode == 0, r.stderr
    assert "| scale5 | [MHPA(768), MLP(3072)] ×2 | 768×8×7×7 |" in (tmp_path / "t.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--block", "16"], "--block 16 is out of range: mvit_b has blocks 0 to 15"),
        (["-o", "x.txt"], "must end in .svg, .png, .pdf, .dot"),
        (["-o", "x.md"], "must end in .svg, .png, .pdf, .dot"),  # Markdown is for --table only
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    r = run("specs/mvit_b.mv", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


MAGIC = {".svg": b"<svg", ".png": b"\x89PNG", ".pdf": b"%PDF"}


@pytest.mark.parametrize("suffix", sorted(MAGIC))
def test_renders_by_file_extension(tmp_path, suffix):
    need_dot()
    from mvitdsl.cli.draw import write

    for level in ("stage", "block"):
        from mvitdsl.draw import draw

        out = tmp_path / f"d.{level}{suffix}"
        assert write(draw(load("mvit_b"), level), out) == 0
        head = out.read_bytes()[:400]
        assert MAGIC[suffix] in head, head


def test_cli_renders_table_and_default_path(tmp_path):
    need_dot()
    r = run("specs/mvit_b.mv", "--table", "-o", str(tmp_path / "t.svg"))
    assert r.returncode == 0, r.stderr
    svg = (tmp_path / "t.svg").read_text()
    assert "MHPA(384)" in svg and "384×8×14×14" in svg
    from mvitdsl.cli.draw import default_out

    assert default_out(load("mvit_b"), "stage", False) == Path("build/mvit_b.stage.svg")
    assert default_out(load("mvit_b"), "block", True) == Path("build/mvit_b.table.svg")


def test_largest_spec_stage_png_is_readable_at_natural_size(tmp_path):
    """At graphviz's 96 dpi a 10 pt font is 13 px tall; the picture must not need shrinking."""
    need_dot()
    from mvitdsl.cli.draw import write
    from mvitdsl.draw import draw

    out = tmp_path / "l.png"
    assert write(draw(load("mvitv2_l_image"), "stage"), out) == 0
    width, height = struct.unpack(">II", out.read_bytes()[16:24])
    assert 300 <= width <= 1000 and height <= 2000, (width, height)


def test_without_dot_the_dot_file_is_written_and_exit_code_is_4(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "d.png"
    r = run("specs/mvit_b.mv", "-o", str(out), env={**os.environ, "PATH": str(empty)})
    assert r.returncode == 4, r.stderr
    assert not out.exists()
    assert out.with_suffix(".dot").read_text() == source("mvit_b", "stage")
    assert "`dot` program was not found" in r.stderr and "apt-get install graphviz" in r.stderr
