"""`mvitdsl report`: the page's structure (everywhere: html.parser), its bad inputs, a property
test over arbitrary JSON Lines, the Pygments lexer; and the page in a real headless Chromium
(skipped only where /usr/bin/chromium is missing; scripts/setup.sh installs it)."""

from __future__ import annotations

import io
import json
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mvitdsl
from mvitdsl.cli import main
from mvitdsl.language import settings as S
from mvitdsl.report import SweepError, read_sweep, sweep_page
from mvitdsl.report.svg import ids_of, inline_svg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import CHROMIUM, chromium, colours  # noqa: E402

BROKEN = "model broken {\n  input video 3x16x224x224\n  patch conv 3x7x7 stride 2x4x4 -> 96\n" \
    "  stages {\n    s1  1  96  5  1x1x1\n  }\n}\n"  # fmt: skip
SPECS = Path(__file__).resolve().parent.parent / "specs"
SWEEP = ["sweep", str(SPECS / "mvit_b.mv"), "--vary", "scale4.blocks=4,8",
         "--vary", "scale3.dim=128,192", "--max-params", "30e6", "--format", "jsonl"]  # fmt: skip
TINY = str(SPECS.parent / "examples" / "tiny.mv")  # a quick page where any spec will do
LEVELS = ("model", "stage", "block")


class Page(HTMLParser):
    """What the structural tests read from a page: ids, figures, links, the embedded JSON."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.figures: dict[str, int] = {}  # figure id -> <svg> elements inside
        self.links: list[tuple[str, str]] = []  # (attribute, value) of every src and href
        self.json: list[str] = []
        self.rows: dict[str, int] = {}  # table id -> rows in its body
        self._figure: str | None = None
        self._table: str | None = None
        self._script: bool = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        self.links += [(k, v) for k, v in a.items() if k in ("src", "href", "xlink:href")]
        if tag == "figure":
            self._figure = a["id"]
            self.figures[a["id"]] = 0
        elif tag == "svg" and self._figure:
            self.figures[self._figure] += 1
        elif tag == "table":
            self._table = a["id"]
            self.rows[a["id"]] = 0
        elif tag == "tr" and self._table:
            self.rows[self._table] += 1
        self._script = tag == "script" and a.get("type") == "application/json"

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        elif tag == "table":
            self._table = None
        self._script = False

    def handle_data(self, data: str) -> None:
        if self._script:
            self.json.append(data)

    def data(self) -> dict:
        return json.loads("".join(self.json))


def assert_well_formed(page: Page) -> None:
    """Ids unique, no load from the network, every in-page link lands, the JSON parses."""
    dupes = sorted({i for i in page.ids if page.ids.count(i) > 1})
    assert not dupes, dupes
    remote = [(k, v) for k, v in page.links if v.lower().lstrip().startswith(("http:", "https:"))]
    assert not remote, remote
    targets = {v[1:] for _, v in page.links if v.startswith("#") and len(v) > 1}
    assert targets <= set(page.ids), targets - set(page.ids)
    assert page.data()["kind"] == "report"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """One page for mvit_b and a broken spec, one for a small sweep (built once)."""
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "broken.mv").write_text(BROKEN)
    code = main(["report", "mvit_b", str(tmp / "broken.mv"), "-o", str(tmp / "specs.html")])
    assert code == 1  # the broken spec: a page all the same, and exit 1
    sweep = tmp / "sweep.jsonl"
    with sweep.open("w") as f, redirect_stdout(f):
        assert main(SWEEP) == 0
    assert main(["report", str(sweep), "-o", str(tmp / "sweep.html")]) == 0
    return tmp


def test_spec_page_has_every_part_and_is_well_formed(pages):
    page = Page((pages / "specs.html").read_text())
    assert_well_formed(page)
    expected = {"costs-figure", *(f"s0-{level}-figure" for level in LEVELS)}
    assert set(page.figures) == expected
    assert all(n == 1 for n in page.figures.values()), page.figures
    assert page.rows["s0-stages"] == 1 + 7  # header, data, patch, 4 stages, head
    assert page.rows["s0-blocks"] == 1 + 16
    specs = page.data()["specs"]
    assert specs[0]["report"]["params"] == 36_610_672 and specs[0]["ok"]
    assert not specs[1]["ok"] and specs[1]["diagnostics"][0]["code"] == "E300"


def test_a_spec_that_fails_gets_its_diagnostics_with_carets(pages):
    text = (pages / "specs.html").read_text()
    start = text.index('id="s1-diagnostics"')
    block = text[start : text.index("</pre>", start)]
    assert "E300" in block and "^" in block and "broken.mv:5" in block
    assert 'id="s1-listing"' in text  # its text, highlighted, all the same


def test_memory_line_follows_batch_and_dtype(tmp_path):
    out = tmp_path / "m.html"
    assert main(["report", TINY, "-o", str(out), "--batch", "8", "--dtype", "bf16"]) == 0
    text = out.read_text()
    assert "at batch 8, bf16" in text and "input size 3x4x32x32" in text
    rule = mvitdsl.size_rule(mvitdsl.load_spec(TINY)).text
    assert f"size rule: {rule}" in text  # the sizes one built module runs at


def test_sweep_page_links_each_point_to_its_row(pages):
    page = Page((pages / "sweep.html").read_text())
    assert_well_formed(page)
    rows = page.data()["sweep"]["rows"]
    assert len(rows) == 4 and page.rows["variants"] == 1 + 4
    links = {v for k, v in page.links if v.startswith("#row-")}
    assert links == {f"#row-{r['id']}" for r in rows}
    assert set(page.figures) == {"front-figure"}


def test_svg_ids_are_prefixed_with_their_references():
    svg = '<?xml version="1.0"?><svg><g id="node1"><use xlink:href="#node1"/></g>' \
        '<path clip-path="url(#node1)" href="#elsewhere"/></svg>'  # fmt: skip
    a, b = inline_svg(svg, "a"), inline_svg(svg, "b")
    assert ids_of(a) == ["a-node1"] and ids_of(b) == ["b-node1"]
    assert 'xlink:href="#a-node1"' in a and "url(#a-node1)" in a and 'href="#elsewhere"' in a
    assert not a.startswith("<?xml")
    with pytest.raises(ValueError):
        inline_svg(svg, "1 bad")


# ---------------------------------------------------------------- bad input: one line, exit 1/2


def run(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    return code, err


def test_missing_spec_is_one_line(tmp_path, capsys):
    code, err = run(["report", str(tmp_path / "nope.mv"), "-o", str(tmp_path / "r.html")], capsys)
    assert code == 1 and "nope.mv" in err and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        (["{not json"], "sweep.jsonl:1: not JSON"),
        (['{"kind": "sweep"}'], 'sweep.jsonl:1: not a sweep row: "id"'),
        (["[1, 2]"], "sweep.jsonl:1: not a sweep row"),
        (["", "  "], "no sweep rows"),
        (
            ['{"kind":"sweep","id":"a","values":{},"ok":true,"pareto":false,"params":NaN}'],
            "not JSON",
        ),  # fmt: skip
    ],
)
def test_bad_sweep_lines_are_one_line(tmp_path, capsys, lines, says):
    sweep = tmp_path / "sweep.jsonl"
    sweep.write_text("\n".join(lines) + "\n")
    code, err = run(["report", str(sweep), "-o", str(tmp_path / "r.html")], capsys)
    assert code == 1 and says in err, err


def test_output_that_is_not_ours_is_never_overwritten(tmp_path, capsys):
    notes, page, folder = tmp_path / "notes.html", tmp_path / "r.html", tmp_path / "dir"
    notes.write_text("<html>my notes</html>")
    folder.mkdir()
    for out in (notes, folder, tmp_path / "r.txt"):
        code, err = run(["report", TINY, "-o", str(out)], capsys)
        assert code == 2 and "mvitdsl report:" in err, err
    assert notes.read_text() == "<html>my notes</html>"
    assert main(["report", TINY, "-o", str(page)]) == 0
    assert main(["report", TINY, "-o", str(page)]) == 0  # our own page: replaced
    assert main(["report", TINY, "-o", str(notes), "--force"]) == 0
    assert "mvitdsl report" in notes.read_text()
    code, err = run(["report", TINY, str(tmp_path / "s.jsonl"), "-o", str(page)], capsys)
    assert code == 2 and "not both" in err


def _row(ident: str) -> dict:
    return {"schema": 1, "kind": "sweep", "id": ident, "values": {"a.b": 1}, "ok": True,
            "params": 1000, "gmacs": 1.5, "pareto": True}  # fmt: skip


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
row_like = st.builds(
    lambda ident, key, value: {**_row(ident), key: value},
    st.text(min_size=1, max_size=12),
    st.sampled_from(["id", "values", "ok", "params", "gmacs", "pareto", "diagnostics", "x"]),
    json_values,
)
lines = st.one_of(
    st.text(max_size=40),
    json_values.map(lambda v: json.dumps(v)),
    row_like.map(lambda v: json.dumps(v)),
)


@given(st.lists(lines, max_size=6))
def test_property_any_jsonl_gives_a_page_or_one_error(tmp_lines):
    """Arbitrary lines: a SweepError (one line, naming the file), or rows whose page is
    well formed."""
    try:
        rows = read_sweep("\n".join(tmp_lines), "s.jsonl")
    except SweepError as e:
        assert str(e).startswith("s.jsonl") and "\n" not in str(e)
        return
    assert_well_formed(Page(sweep_page(rows, "s.jsonl")))


@given(st.lists(lines, max_size=4))
def test_property_report_command_on_any_jsonl(tmp_lines):
    """Through the command: exit 0 and a well-formed page, or exit 1 and one line on stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        sweep, out = Path(tmp) / "s.jsonl", Path(tmp) / "s.html"
        sweep.write_text("\n".join(tmp_lines), encoding="utf-8", errors="surrogatepass")
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            code = main(["report", str(sweep), "-o", str(out)])
        if code == 0:
            assert_well_formed(Page(out.read_text(encoding="utf-8")))
        else:
            assert code == 1 and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
            assert not out.exists()


def test_numbers_json_cannot_hold_are_refused():
    row = json.dumps(_row("a")).replace('"gmacs": 1.5', '"gmacs": 1e400')
    with pytest.raises(SweepError, match="s.jsonl:1: not JSON"):
        read_sweep(row, "s.jsonl")
    nested = json.dumps({**_row("b"), "x": [1.0]}).replace("1.0]", "-1e999]")
    with pytest.raises(SweepError, match="too large"):
        read_sweep(nested, "s.jsonl")


# ---------------------------------------------------------------- the lexer


def test_lexer_is_registered_and_reads_the_settings_table():
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
    from pygments.token import Error, Keyword, Name

    from mvitdsl.report.lexer import MvitdslLexer

    assert isinstance(get_lexer_by_name("mvitdsl"), MvitdslLexer)  # the entry point
    assert isinstance(get_lexer_for_filename("x.mv"), MvitdslLexer)
    text = "\n".join(f"  {s.key} {s.options[0].word} 1" for s in S.SETTINGS)
    tokens = [(t, v) for t, v in MvitdslLexer().get_tokens(text) if v.strip()]
    assert not [v for t, v in tokens if t in Error]
    keys = [v for t, v in tokens if t in Keyword]
    assert keys == [s.key for s in S.SETTINGS]
    words = [v for t, v in tokens if t in Name.Builtin]
    assert words == [s.options[0].word for s in S.SETTINGS]


def test_lexer_reads_every_shipped_spec_back():
    from pygments.token import Error

    from mvitdsl.report.lexer import MvitdslLexer

    for path in sorted(SPECS.glob("*.mv")):
        text = path.read_text()
        tokens = list(MvitdslLexer().get_tokens(text))
        assert "".join(v for _, v in tokens).rstrip("\n") == text.rstrip("\n")
        assert not [v for t, v in tokens if t in Error], path


# ---------------------------------------------------------------- in a real browser

SEVERE = "SEVERE"
# (id, width, height) of each figure's picture as laid out; a table column's sort values
FIGURE_SIZES = """return Array.from(document.querySelectorAll("figure")).map(function (f) {
  var r = f.querySelector("svg").getBoundingClientRect(); return [f.id, r.width, r.height]; });"""
COLUMN = """var id = arguments[0], col = arguments[1] - 1;
return Array.from(document.querySelectorAll("#" + id + " tbody tr"))
  .map(function (tr) { return +tr.children[col].getAttribute("data-v"); });"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (scripts/setup.sh)")
def test_pages_in_headless_chromium(pages, tmp_path):
    """No console errors, every figure drawn with a size, a header click sorts, points link to
    rows, and the screenshot is not blank."""
    from selenium.webdriver.common.by import By

    with chromium(tmp_path / "profile") as driver:
        driver.get((pages / "specs.html").as_uri())
        sizes = driver.execute_script(FIGURE_SIZES)
        assert len(sizes) == 4 and all(w > 0 and h > 0 for _, w, h in sizes), sizes
        header = driver.find_element(By.XPATH, "//table[@id='s0-blocks']//th[text()='params']")
        for order in (sorted, lambda v: sorted(v, reverse=True)):
            header.click()
            values = driver.execute_script(COLUMN, "s0-blocks", 9)
            assert values == order(values) and len(values) == 16
        assert colours(driver.get_screenshot_as_png()) > 1
        errors = [e for e in driver.get_log("browser") if e["level"] == SEVERE]
        driver.get((pages / "sweep.html").as_uri())
        point = driver.find_element(By.CSS_SELECTOR, "a.point")
        target = point.get_dom_attribute("href").split("#")[1]
        driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click'))", point)
        assert driver.execute_script("return location.hash") == f"#{target}"
        errors += [e for e in driver.get_log("browser") if e["level"] == SEVERE]
    assert not errors, errors


def test_blank_screenshot_has_one_colour():
    """The screenshot check can fail: a one-colour PNG counts one colour, two count two."""
    import numpy as np
    from matplotlib import pyplot as plt

    for picture, n in ((np.ones((8, 8, 3)), 1), (np.eye(8)[..., None].repeat(3, axis=2), 2)):
        buffer = io.BytesIO()
        plt.imsave(buffer, picture, format="png")
        assert colours(buffer.getvalue()) == n


def test_without_pygments_it_says_which_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pygments", None)  # as if not installed
    code, err = run(["report", TINY, "-o", str(tmp_path / "r.html")], capsys)
    assert code == 1 and "needs pygments" in err and "mvitdsl[report]" in err


def test_report_never_imports_torch(tmp_path):
    import subprocess

    script = (
        "import sys\nfrom mvitdsl.cli import main\n"
        f"assert main(['report', {TINY!r}, '-o', {str(tmp_path / 'r.html')!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
