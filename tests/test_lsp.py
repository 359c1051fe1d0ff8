"""The language server as an editor drives it: the real process (`python -m mvitdsl.lsp`) over
stdio, through pytest-lsp; then raw stdio for what a client library hides (exit, EOF, bytes that
are not UTF-8, a stray print)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

import mvitdsl
from mvitdsl.catalog import names
from mvitdsl.language.fmt import format_text
from mvitdsl.lsp.document import path_to_uri

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SERVER = [sys.executable, "-m", "mvitdsl.lsp"]
CHILD = SPECS / "mvitv2_s_image.mv"  # extends mvitv2_t_image.mv
BAD = "model tiny {\n  input  video 3x4x32x32\n  patch  conv 3x7x7 stride 2x4x4 pad 1x3x3 -> 12\n"
BAD += "  stages {\n    s1  1  12  5  1x1x1\n  }\n  head  classes 5\n}\n"
GOOD = BAD.replace("12  5", "12  3")
INIT: dict[str, lsp.InitializeResult] = {}

ASYNC = pytest.mark.asyncio(loop_scope="module")  # one server for the module's tests


CONFIG = ClientServerConfig(server_command=SERVER)


@pytest_lsp.fixture(scope="module", config=CONFIG)  # type: ignore[untyped-decorator]  # no types
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    # Neovim 0.11 offers utf-8 first; the server answers in UTF-16 all the same
    params = lsp.InitializeParams(capabilities=pytest_lsp.client_capabilities("neovim"))
    INIT["result"] = await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, uri: str, text: str, version: int = 1) -> None:
    item = lsp.TextDocumentItem(uri=uri, language_id="mvitdsl", version=version, text=text)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))


def _change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    document = lsp.VersionedTextDocumentIdentifier(uri=uri, version=version)
    change = lsp.TextDocumentContentChangeWholeDocument(text=text)
    params = lsp.DidChangeTextDocumentParams(text_document=document, content_changes=[change])
    client.text_document_did_change(params)


def _place(uri: str, line: int, character: int) -> dict[str, Any]:
    return {
        "text_document": lsp.TextDocumentIdentifier(uri=uri),
        "position": lsp.Position(line=line, character=character),
    }


def _hover(uri: str, line: int, character: int) -> lsp.HoverParams:
    return lsp.HoverParams(**_place(uri, line, character))


def _completion(uri: str, line: int, character: int) -> lsp.CompletionParams:
    return lsp.CompletionParams(**_place(uri, line, character))


def _definition(uri: str, line: int, character: int) -> lsp.DefinitionParams:
    return lsp.DefinitionParams(**_place(uri, line, character))


async def _published(client: LanguageClient) -> lsp.PublishDiagnosticsParams:
    params: lsp.PublishDiagnosticsParams = await client.wait_for_notification(
        lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
    )
    return params


@ASYNC
async def test_initialize_states_the_features(client: LanguageClient) -> None:
    caps = INIT["result"].capabilities
    assert INIT["result"].server_info is not None
    assert INIT["result"].server_info.name == "mvitdsl"
    assert caps.hover_provider and caps.definition_provider and caps.inlay_hint_provider
    assert caps.document_formatting_provider and caps.document_symbol_provider
    assert caps.completion_provider is not None
    assert caps.position_encoding == lsp.PositionEncodingKind.Utf16


@ASYNC
async def test_diagnostics_appear_then_clear_with_the_version(
    client: LanguageClient, tmp_path: Path
) -> None:
    uri = path_to_uri(tmp_path / "tiny.mv")
    _open(client, uri, BAD, version=1)
    first = await _published(client)
    assert (first.uri, first.version) == (uri, 1)
    [d] = first.diagnostics
    assert d.code == "E300" and d.source == "mvitdsl"
    assert "\nhint: " in d.message  # the hint travels in the message
    assert (d.range.start.line, d.range.start.character) == (4, 11)  # the dim `12`
    _change(client, uri, GOOD, version=2)
    second = await _published(client)
    assert (second.uri, second.version, list(second.diagnostics)) == (uri, 2, [])


@ASYNC
async def test_positions_count_utf16_units(client: LanguageClient, tmp_path: Path) -> None:
    uri = path_to_uri(tmp_path / "emoji.mv")
    _open(client, uri, 'model m extends "🙂🙂.mv" p {\n}\n')
    [d] = (await _published(client)).diagnostics
    assert d.code == "E209"  # no such file; the clause after two smileys (2 units each)
    clause = 'extends "🙂🙂.mv" p'
    assert (d.range.start.character, d.range.end.character) == (8, 8 + len(clause) + 2)


@ASYNC
async def test_changes_in_a_burst_are_checked_once_at_the_last_version(
    client: LanguageClient, tmp_path: Path
) -> None:
    uri = path_to_uri(tmp_path / "burst.mv")
    _open(client, uri, GOOD, version=1)
    assert (await _published(client)).version == 1
    final = BAD.replace("3x4x32", "3x4x")
    for version, text in enumerate([BAD, GOOD, BAD, final], start=2):
        _change(client, uri, text, version)
    last = await _published(client)
    assert last.version == 5  # the debounce dropped versions 2-4
    with pytest.raises(mvitdsl.SpecError) as error:  # all of them, as `check` gives them
        mvitdsl.load_spec(text=final)
    assert [d.code for d in last.diagnostics] == [d.code for d in error.value.diagnostics]
    assert len(last.diagnostics) == 2


@ASYNC
async def test_hover_on_a_setting_and_on_a_stage_row(client: LanguageClient) -> None:
    uri = path_to_uri(SPECS / "mvitv2_s.mv")
    _open(client, uri, (SPECS / "mvitv2_s.mv").read_text())
    setting = await client.text_document_hover_async(_hover(uri, 6, 4))  # `attention`
    assert setting is not None and isinstance(setting.contents, lsp.MarkupContent)
    assert setting.contents.value.startswith("**attention**: ")
    assert "`mlp_ratio`: MLP hidden width over the block's width; default: 4.0" in (
        setting.contents.value
    )
    row = await client.text_document_hover_async(_hover(uri, 12, 20))  # scale4's row
    assert row is not None and isinstance(row.contents, lsp.MarkupContent)
    assert "output size: 384×8×14×14" in row.contents.value
    assert "params: 19,536,384" in row.contents.value and "GMACs: 38.768" in row.contents.value


@ASYNC
async def test_completion_after_extends_and_in_a_stage_row(
    client: LanguageClient, tmp_path: Path
) -> None:
    uri = path_to_uri(tmp_path / "child.mv")
    _open(client, uri, "model child extends mvitv2_t")
    items = await client.text_document_completion_async(_completion(uri, 0, 28))
    assert isinstance(items, list)
    labels = [i.label for i in items]
    assert labels == names()
    chosen = next(i for i in items if i.label == "mvitv2_t_image")
    assert chosen.text_edit is not None and isinstance(chosen.text_edit, lsp.TextEdit)
    target = Path(chosen.text_edit.new_text.split('"')[1])
    assert (tmp_path / target).resolve() == (SPECS / "mvitv2_t_image.mv").resolve()
    child = path_to_uri(CHILD)
    _open(client, child, CHILD.read_text())
    rows = await client.text_document_completion_async(
        _completion(child, 5, 4)
    )  # a row's first word
    assert isinstance(rows, list)
    assert [i.label for i in rows] == ["scale2", "scale3", "scale4", "scale5"]


@ASYNC
async def test_formatting_gives_the_fmt_layout_once(client: LanguageClient, tmp_path: Path) -> None:
    uri = path_to_uri(tmp_path / "messy.mv")
    messy = "model  m {\n input video   3x4x32x32\n}\n"
    _open(client, uri, messy)
    options = lsp.FormattingOptions(tab_size=2, insert_spaces=True)
    document = lsp.TextDocumentIdentifier(uri=uri)
    params = lsp.DocumentFormattingParams(text_document=document, options=options)
    [edit] = await client.text_document_formatting_async(params) or []
    assert edit.new_text == format_text(messy)
    _change(client, uri, edit.new_text, version=2)
    again = await client.text_document_formatting_async(params)
    assert again is not None and len(again) == 0  # already formatted: no edit


@ASYNC
async def test_inlay_hints_carry_each_stage_figures(client: LanguageClient) -> None:
    uri = path_to_uri(CHILD)
    _open(client, uri, CHILD.read_text())
    document = lsp.TextDocumentIdentifier(uri=uri)
    whole = lsp.Range(
        start=lsp.Position(line=0, character=0), end=lsp.Position(line=9, character=0)
    )
    hints = await client.text_document_inlay_hint_async(
        lsp.InlayHintParams(text_document=document, range=whole)
    )
    assert hints is not None
    [hint] = hints
    stage = next(s for s in mvitdsl.analyze(mvitdsl.load_spec(CHILD)).stages if s.name == "scale4")
    assert hint.label == f"{stage.params:,} params · {stage.macs / 1e9:.3f} GMACs · 384×14×14"
    assert (hint.position.line, hint.position.character) == (5, 27)


@ASYNC
async def test_definition_of_extends_and_of_a_row(client: LanguageClient) -> None:
    uri = path_to_uri(CHILD)
    _open(client, uri, CHILD.read_text())
    parent = await client.text_document_definition_async(_definition(uri, 3, 40))
    assert isinstance(parent, lsp.Location)
    assert parent.uri == path_to_uri(SPECS / "mvitv2_t_image.mv")
    row = await client.text_document_definition_async(_definition(uri, 5, 5))
    assert isinstance(row, lsp.Location) and row.uri == parent.uri
    parent_lines = (SPECS / "mvitv2_t_image.mv").read_text().split("\n")
    assert parent_lines[row.range.start.line].split()[0] == "scale4"


@ASYNC
async def test_document_symbols_list_the_model_and_its_stages(client: LanguageClient) -> None:
    uri = path_to_uri(SPECS / "mvitv2_s.mv")
    _open(client, uri, (SPECS / "mvitv2_s.mv").read_text())
    params = lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    [model] = await client.text_document_document_symbol_async(params) or []
    assert isinstance(model, lsp.DocumentSymbol) and model.name == "mvitv2_s"
    stages = next(c for c in model.children or [] if c.name == "stages")
    assert [s.name for s in stages.children or []] == ["scale2", "scale3", "scale4", "scale5"]


@ASYNC
async def test_bad_requests_get_empty_answers_and_the_server_goes_on(
    client: LanguageClient,
) -> None:
    assert await client.text_document_hover_async(_hover("file:///nowhere/x.mv", 0, 0)) is None
    assert await client.text_document_hover_async(_hover("untitled:Untitled-1", 3, 3)) is None
    uri = path_to_uri(SPECS / "mvitv2_s.mv")
    _open(client, uri, (SPECS / "mvitv2_s.mv").read_text())
    assert await client.text_document_hover_async(_hover(uri, 10_000, 10_000)) is None
    items = await client.text_document_completion_async(_completion(uri, 2**31 - 1, 2**31 - 1))
    assert items is None or isinstance(items, list)
    assert await client.text_document_hover_async(_hover(uri, 6, 4)) is not None  # still serving


# ----------------------------------------------------------------------------- raw stdio


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _request(id_: int, method: str, params: str = "null") -> bytes:
    text = f'{{"jsonrpc":"2.0","id":{id_},"method":"{method}","params":{params}}}'
    return _frame(text.encode())


INITIALIZE = _request(1, "initialize", '{"processId":null,"rootUri":null,"capabilities":{}}')


def _frames(out: bytes) -> list[bytes]:
    """The bodies of the messages in a stdout stream; fails on anything else in it."""
    bodies = []
    while out:
        head, sep, rest = out.partition(b"\r\n\r\n")
        assert sep, f"not a message: {out[:80]!r}"
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        bodies.append(rest[:length])
        out = rest[length:]
    return bodies


def test_exit_after_bytes_that_are_not_utf8_and_only_the_protocol_on_stdout() -> None:
    garbage = _frame(b'{"jsonrpc":"2.0","id":7,"method":"\xff\xfe"}')
    messages = (
        INITIALIZE
        + garbage
        + _request(2, "shutdown")
        + _frame(b'{"jsonrpc":"2.0","method":"exit"}')
    )
    done = subprocess.run(SERVER, input=messages, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    bodies = _frames(done.stdout)
    assert b'"id": 1' in bodies[0] and b"capabilities" in bodies[0]
    assert any(b'"id": 2' in b and b'"result": null' in b for b in bodies)


def test_the_server_ends_at_the_end_of_input() -> None:
    done = subprocess.run(SERVER, input=INITIALIZE, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0
    assert len(_frames(done.stdout)) == 1


def test_a_stray_print_goes_to_stderr() -> None:
    code = (
        "from mvitdsl.lsp.server import _protocol_stdout\n"
        "out = _protocol_stdout()\n"
        "print('stray')\n"
        "import os; os.write(1, b'c-level')\n"
        "out.write(b'protocol'); out.flush()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)
    assert done.stdout == b"protocol"
    assert b"stray" in done.stderr and b"c-level" in done.stderr


def test_a_slow_check_does_not_hold_up_the_protocol() -> None:
    # ~10,000 lines: seconds of checking on the worker thread; shutdown and exit are answered
    # meanwhile, so the process ends before any diagnostics of that document are sent
    slow = "model m {\n" + "  input video 3x4x32x32\n" * 9_990 + "}\n"
    item = {"uri": "file:///tmp/slow.mv", "languageId": "mvitdsl", "version": 1, "text": slow}
    opened = json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                         "params": {"textDocument": item}}).encode()  # fmt: skip
    exit_ = _frame(b'{"jsonrpc":"2.0","method":"exit"}')
    messages = INITIALIZE + _frame(opened) + _request(2, "shutdown") + exit_
    done = subprocess.run(SERVER, input=messages, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    bodies = _frames(done.stdout)
    assert any(b'"id": 2' in b for b in bodies)
    assert not any(b"publishDiagnostics" in b for b in bodies)


def test_without_pygls_one_line_says_what_to_install() -> None:
    code = "import sys; sys.modules['pygls'] = None\nfrom mvitdsl.lsp import main\nsys.exit(main())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("mvitdsl lsp needs pygls: pip install 'mvitdsl[lsp]'")
    assert "Traceback" not in done.stderr


def test_the_command_line_serves_the_same_protocol() -> None:
    """`mvitdsl lsp` (cli/lsp.py) is the same server as `python -m mvitdsl.lsp`."""
    command = [sys.executable, "-m", "mvitdsl", "lsp"]
    messages = INITIALIZE + _request(2, "shutdown") + _frame(b'{"jsonrpc":"2.0","method":"exit"}')
    done = subprocess.run(command, input=messages, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    bodies = _frames(done.stdout)
    assert b'"id": 1' in bodies[0] and b"textDocumentSync" in bodies[0]
    assert any(b'"id": 2' in b for b in bodies)
