"""Property tests over every entrance (issue 10): the CLI's argument lists built from its real
flags with hostile values, the public API's keyword arguments, spec bytes and checkpoint bytes.

Invariant: a clean result, or exit 1 / 2 (argparse's usage error) / SpecError / ValueError /
TypeError / FileNotFoundError with a non-empty message; never another exception type, never a
traceback on stderr, never a hang (an alarm of HANG_S per case only detects hangs).

Bounded by the `ci` hypothesis profile; `make fuzz` runs the `fuzz` profile; ENTRANCE_EXAMPLES=N
sets the number of cases per test (long runs in chunks). Per-entrance counts are ADDED to
build/entrance_counts.json after each test (delete it to start a new tally).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_gen import ROOT

import mvitdsl
from mvitdsl import SpecError
from mvitdsl.cli import main

torch = pytest.importorskip("torch")

COUNTS = ROOT / "build" / "entrance_counts.json"
HANG_S = 60
ALLOWED = (SpecError, ValueError, TypeError, FileNotFoundError)
SPECS = sorted((ROOT / "specs").glob("*.mv"))
SHIPPED_BYTES = [p.read_bytes() for p in SPECS]
TINY = b"""model tiny {
  input image 3x32x32
  patch conv 4x4 stride 4x4 -> 8
  tokens cls, position none
  stages {
    s1  1   8  2  1x1
    s2  1  16  4  2x2
  }
}
"""
# Each test draws many cases; the module's files are made once.
FOLDER: dict[str, Path] = {}
_EXAMPLES = os.environ.get("ENTRANCE_EXAMPLES")
PROPERTY = settings(
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
    **({"max_examples": int(_EXAMPLES)} if _EXAMPLES else {}),
)


class Tally:
    """Outcome counts per entrance, added to build/entrance_counts.json after each test."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}

    def add(self, entrance: str, what: str) -> None:
        self.counts.setdefault(entrance, Counter())[what] += 1

    def write(self) -> None:
        COUNTS.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(COUNTS.read_text()) if COUNTS.exists() else {}
        for entrance, counter in self.counts.items():
            total = Counter(old.get(entrance, {}))
            total.update(counter)
            old[entrance] = dict(sorted(total.items()))
        COUNTS.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
        self.counts.clear()


TALLY = Tally()


class Hang(BaseException):
    """Raised by the alarm: a case ran for HANG_S seconds."""


@contextlib.contextmanager
def no_hang() -> Iterator[None]:
    def ring(signum: int, frame: Any) -> None:
        raise Hang(f"a case ran for {HANG_S} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module", autouse=True)
def _files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("entrances")
    FOLDER["root"] = folder
    (folder / "tiny.mv").write_bytes(TINY)
    (folder / "binary.mv").write_bytes(bytes(range(256)))
    (folder / "latin1.mv").write_bytes(TINY.replace(b"tiny {", b"tiny { # caf\xe9"))
    (folder / "utf16.mv").write_bytes(TINY.decode().encode("utf-16"))
    (folder / "a_folder.mv").mkdir()
    (folder / "out").mkdir()
    torch.manual_seed(0)
    sd = mvitdsl.build(mvitdsl.load_spec(folder / "tiny.mv")).state_dict()
    torch.save(sd, folder / "tiny.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "tiny.safetensors"))
    FOLDER["pt"] = folder / "tiny.pt"
    FOLDER["safetensors"] = folder / "tiny.safetensors"
    yield


@pytest.fixture(autouse=True)
def _write_counts() -> Iterator[None]:
    yield
    TALLY.write()


def outcome(entrance: str, fn: Any) -> Any:
    """Run fn under the invariant; tally 'ok' or the allowed exception's type."""
    try:
        with no_hang():
            result = fn()
    except ALLOWED as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        TALLY.add(f"entrance:{entrance}", type(e).__name__)
        return None
    except Hang:
        TALLY.add(f"entrance:{entrance}", "hang")
        raise
    except BaseException:
        TALLY.add(f"entrance:{entrance}", "escaped")
        raise
    TALLY.add(f"entrance:{entrance}", "ok")
    return result


def sometimes(draw: Any, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """A good value three times in four, so that later arguments get their turn too."""
    return draw(bad) if draw(st.integers(0, 3)) == 0 else draw(good)


# ---------------------------------------------------------------- the CLI

HOSTILE = st.one_of(
    st.sampled_from(
        [
            "0",
            "-1",
            "-5",
            "1",
            "2",
            "1e3",
            "nan",
            "inf",
            "",
            " ",
            "\x00",
            "x",
            "3x",
            "3x16",
            "16x224x224",
            "3x16x224x224",
            "3x224x224",
            "0x16x224x224",
            "3x16x224x224x9",
            "3×8×32×32",
            "3x1x1",
            "1x1x1x1",
            "999999999999x2x2x2",
            "3x16x224x-224",
            "--help",
            "-o",
            "💥",
            "3x4x64x64",
            "99",
            "17",
        ]
    ),
    st.integers(-(10**12), 10**12).map(str),
    st.text(max_size=30),
)


def spec_paths() -> st.SearchStrategy[str]:
    names = ["tiny.mv", "binary.mv", "latin1.mv", "utf16.mv", "a_folder.mv", "missing.mv"]
    return st.one_of(
        st.sampled_from([str(p) for p in SPECS]),
        st.sampled_from([str(p) for p in SPECS]),
        st.sampled_from(names).map(lambda n: str(FOLDER["root"] / n)),
        st.text(max_size=20),
    )


@st.composite
def argvs(draw: Any) -> list[str]:
    command = draw(st.sampled_from(["check", "check", "check", "draw", "draw", "compile"]))
    argv = [command, draw(spec_paths())]
    flags = {
        "check": [
            "--input",
            "--format",
            "--blocks",
            "--batch",
            "--dtype",
            "--resolved",
            "--against",
            "--source",
        ],
        "draw": ["--input", "--level", "--rankdir", "--block", "--table"],
        "compile": ["--input", "--export"],
    }[command]
    good = {
        "--input": st.sampled_from(["3x32x32", "3x64x64", "3x16x224x224", "3x8x64x64"]),
        "--format": st.sampled_from(["text", "json"]),
        "--batch": st.sampled_from("1248"),
        "--dtype": st.sampled_from(["fp32", "bf16", "fp16"]),
        "--source": st.sampled_from(["torchvision", "slowfast", "timm"]),
        "--level": st.sampled_from(["model", "stage", "block", "op"]),
        "--rankdir": st.sampled_from(["TB", "LR"]),
        "--block": st.sampled_from("0123"),
    }
    for flag in draw(st.lists(st.sampled_from(flags), max_size=4)):
        if flag in ("--blocks", "--resolved", "--table"):
            argv.append(flag)
        elif flag in good:
            argv += [flag, sometimes(draw, good[flag], HOSTILE)]
        elif flag == "--against":
            argv += [
                flag,
                draw(
                    st.one_of(
                        st.sampled_from(
                            [
                                str(FOLDER["pt"]),
                                str(FOLDER["safetensors"]),
                                str(FOLDER["root"] / "tiny.mv"),
                                str(FOLDER["root"]),
                                "/nonexistent.pt",
                            ]
                        ),
                        HOSTILE,
                    )
                ),
            ]
        elif flag == "--export":
            argv += [flag, draw(st.sampled_from(["onnx", "pt2", "zip", ""]))]
        else:
            argv += [flag, draw(HOSTILE)]
    if command == "draw":
        argv += [
            "-o",
            str(
                FOLDER["root"]
                / "out"
                / draw(st.sampled_from(["d.dot", "d.dot", "d.dot", "d.md", "d.txt", "d"]))
            ),
        ]
    if command == "compile":
        argv += ["-o", str(FOLDER["root"] / "out" / draw(st.sampled_from(["art", "numpy", ""])))]
    if draw(st.integers(0, 3)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(HOSTILE))
    return argv


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: --help / --version 0, usage errors 2
            code = int(e.code or 0) if not isinstance(e.code, str) else 2
    return code, err.getvalue()


@PROPERTY
@given(argvs())
def test_property_cli_argv_fails_cleanly(argv: list[str]) -> None:
    if argv[0] == "compile" and "tiny.mv" not in argv[1]:
        argv[1] = str(FOLDER["root"] / "tiny.mv")  # compile builds: keep it to the tiny model
    if argv[0] == "compile" and "--input" in argv:
        argv[argv.index("--input") + 1 : argv.index("--input") + 2] = ["3x32x32"]
    code, err = outcome("cli", lambda: run_cli(argv))
    TALLY.add("entrance:cli:exit", str(code))
    assert code in (0, 1, 2, 3, 4), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code not in (0,):
        assert err.strip() or code in (1,), (argv, code)  # json errors go to stdout


# ---------------------------------------------------------------- the API

SIZES = st.one_of(
    st.none(),
    st.tuples(*[st.integers(-2, 70)] * 3),
    st.tuples(*[st.integers(-2, 70)] * 4),
    st.lists(st.integers(-(10**9), 10**9), max_size=6).map(tuple),
    st.lists(st.integers(1, 64), max_size=6),
    st.sampled_from(
        [
            (3, 32, 32),
            (3, 64, 64),
            (3.0, 32, 32),
            (True, 32, 32),
            "3x32x32",
            3,
            b"abc",
            (3, 32, None),
            (3, 10**7, 10**7),
        ]
    ),
)
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.lists(st.integers(-3, 3), max_size=3),
)


GOOD_SIZES = st.sampled_from([None, (3, 32, 32), (3, 64, 64), (3, 48, 32), [3, 32, 32]])


@st.composite
def api_calls(draw: Any) -> tuple[str, dict[str, Any]]:
    which = draw(
        st.sampled_from(
            [
                "load_spec",
                "load_spec",
                "resize",
                "build",
                "compile",
                "analyze",
                "convert_state_dict",
                "size_rule",
            ]
        )
    )
    tiny = str(FOLDER["root"] / "tiny.mv")
    kw: dict[str, Any] = {}
    if which in ("load_spec", "compile"):
        how = draw(
            st.sampled_from(
                ["path", "Path", "text", "path", "Path", "text", "both", "neither", "junk"]
            )
        )
        if how in ("path", "both"):
            kw["path"] = sometimes(draw, st.just(tiny), spec_paths())
        if how == "Path":
            kw["path"] = Path(sometimes(draw, st.just(tiny), spec_paths()))
        if how in ("text", "both"):
            kw["text"] = sometimes(draw, st.just(TINY.decode()), st.text(max_size=50))
        if how == "junk":
            kw["path"] = draw(ANY_VALUE)
        key = "input_size" if which == "load_spec" else "input"
        kw[key] = sometimes(draw, GOOD_SIZES, SIZES)
        kw["check"] = sometimes(draw, st.booleans(), ANY_VALUE)
    if which in ("build", "compile"):
        kw["device"] = sometimes(
            draw,
            st.sampled_from([None, "meta", "cpu"]),
            st.one_of(
                st.sampled_from(["cuda:7", "gpu", "mps", "meta:x", "cuda", "xpu:0"]), ANY_VALUE
            ),
        )
        kw["dtype"] = sometimes(
            draw,
            st.sampled_from([None, torch.float32, torch.bfloat16]),
            st.sampled_from(
                [torch.int64, torch.float8_e4m3fn, "fp16", 3, torch.complex64, torch.bool]
            ),
        )
        kw["checkpoint"] = sometimes(
            draw,
            st.sampled_from([False, True, "all", "s1", 0, 1, ["s1", 1]]),
            st.one_of(st.sampled_from(["s9", 99, -1, [2.5], None, {"s1": 1}]), ANY_VALUE),
        )
        kw["compile"] = sometimes(  # compiling happens at the first call: building stays cheap
            draw,
            st.sampled_from([False, None, True, "none", "regional", "whole"]),
            st.one_of(st.sampled_from(["Regional", "fast", "", "max-autotune", 1]), ANY_VALUE),
        )
    if which in ("build", "size_rule"):
        kw["spec"] = sometimes(draw, st.sampled_from(["spec", "path"]), st.just("junk"))
    if which == "build":
        kw["input"] = sometimes(draw, GOOD_SIZES, SIZES)
    if which == "resize":
        kw["size"] = sometimes(draw, GOOD_SIZES.filter(lambda v: v is not None), SIZES)
    if which == "analyze":
        kw["batch"] = sometimes(
            draw, st.integers(1, 64), st.one_of(st.integers(-3, 10**7), ANY_VALUE)
        )
        kw["dtype"] = sometimes(
            draw, st.sampled_from(["fp32", "bf16", "fp16"]), st.one_of(st.just("int8"), ANY_VALUE)
        )
    if which == "convert_state_dict":
        kw["source"] = sometimes(
            draw,
            st.sampled_from([None, "timm", "slowfast", "torchvision"]),
            st.sampled_from(["keras", 3, b"timm"]),
        )
        kw["state_dict"] = sometimes(
            draw,
            st.sampled_from(["real", "ddp", "wrapped"]),
            st.sampled_from(["empty", "list", "junk", "mixed"]),
        )
    return which, kw


def call_api(which: str, kw: dict[str, Any]) -> Any:
    tiny = mvitdsl.load_spec(FOLDER["root"] / "tiny.mv")
    if which == "load_spec":
        path = kw.pop("path", None)
        return mvitdsl.load_spec(path, **kw)
    if which == "compile":
        path = kw.pop("path", None)
        if kw.get("device") not in ("meta", None) or kw.get("input") not in (None, (3, 32, 32)):
            kw["device"] = "meta"  # keep building cheap; hostile sizes go through load_spec
        return mvitdsl.compile(path, **kw)
    if which == "resize":
        return mvitdsl.resize(tiny, kw["size"])
    if which == "build":
        spec = {"spec": tiny, "path": FOLDER["root"] / "tiny.mv", "junk": 3.5}[kw.pop("spec")]
        return mvitdsl.build(spec, **kw)
    if which == "analyze":
        return mvitdsl.analyze(tiny, batch=kw["batch"], dtype=kw["dtype"])
    if which == "size_rule":
        spec = {"spec": tiny, "path": FOLDER["root"] / "tiny.mv", "junk": 3.5}[kw.pop("spec")]
        return mvitdsl.size_rule(spec)
    sd = torch.load(FOLDER["pt"], weights_only=True)
    state = {
        "real": sd,
        "ddp": {f"module.{k}": v for k, v in sd.items()},
        "empty": {},
        "wrapped": {"state_dict": sd},
        "mixed": {**sd, "step": 3, 4: "x"},
        "list": list(sd.values()),
        "junk": "state",
    }[kw["state_dict"]]
    return mvitdsl.convert_state_dict(state, kw["source"], spec=tiny)


@PROPERTY
@given(api_calls())
def test_property_api_keywords_fail_cleanly(call: tuple[str, dict[str, Any]]) -> None:
    which, kw = call
    outcome(f"api:{which}", lambda: call_api(which, dict(kw)))


# ---------------------------------------------------------------- spec bytes


@st.composite
def spec_bytes(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "encoded", "truncated"]))
    if kind == "random":
        return bytes(draw(st.binary(max_size=400)))
    base = draw(st.sampled_from([*SHIPPED_BYTES, TINY]))
    if kind == "encoded":
        encoding = draw(
            st.sampled_from(
                ["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "utf-8-sig", "utf-7"]
            )
        )
        return base.decode().replace("#", "# é ü ×").encode(encoding, errors="replace")
    if kind == "truncated":
        return base[: draw(st.integers(0, len(base)))]
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip" and i < len(data):
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[i : i + draw(st.integers(1, 8))]
    return bytes(data)


@PROPERTY
@given(spec_bytes())
def test_property_spec_bytes_fail_cleanly(data: bytes) -> None:
    path = FOLDER["root"] / "hostile.mv"
    path.write_bytes(data)

    def load() -> Any:
        spec = mvitdsl.load_spec(path)
        return mvitdsl.analyze(spec)

    outcome("spec_bytes", load)
    if data:
        try:
            text = data.decode("utf-8", errors="surrogateescape")
        except UnicodeDecodeError:  # pragma: no cover
            return
        outcome("spec_text", lambda: mvitdsl.load_spec(text=text))


# ---------------------------------------------------------------- checkpoint bytes


@st.composite
def checkpoint_bytes(draw: Any) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".pt", ".safetensors"]))
    base = FOLDER["pt" if suffix == ".pt" else "safetensors"].read_bytes()
    kind = draw(st.sampled_from(["truncated", "mutated", "header", "random", "swapped"]))
    if kind == "truncated":
        return suffix, base[: draw(st.integers(0, len(base)))]
    if kind == "random":
        return suffix, draw(st.binary(max_size=200))
    if kind == "swapped":  # the other format under this name
        other = FOLDER["safetensors" if suffix == ".pt" else "pt"].read_bytes()
        return suffix, other
    data = bytearray(base)
    if kind == "header":  # the first bytes: a safetensors length field, a zip's magic
        for i in draw(st.lists(st.integers(0, min(63, len(data) - 1)), min_size=1, max_size=4)):
            data[i] = draw(st.integers(0, 255))
        return suffix, bytes(data)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    return suffix, bytes(data)


@PROPERTY
@given(checkpoint_bytes())
def test_property_checkpoint_bytes_fail_cleanly(case: tuple[str, bytes]) -> None:
    from mvitdsl.backend.weights import load_checkpoint, render_comparison

    suffix, data = case
    path = FOLDER["root"] / f"hostile{suffix}"
    path.write_bytes(data)
    tiny = mvitdsl.load_spec(FOLDER["root"] / "tiny.mv")
    outcome("checkpoint:check", lambda: render_comparison(tiny, path, None))
    outcome("checkpoint:load", lambda: load_checkpoint(path))
