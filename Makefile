# Everyday targets. `make all` sets up a fresh machine and runs the main job; `make test` tests.
PY      := .venv/bin/python
MVITDSL := .venv/bin/mvitdsl

.PHONY: all setup main test test-all lint format golden docs bench fuzz diagrams clean

all: setup main

setup:
	@bash scripts/setup.sh

main: setup
	$(MVITDSL) compile specs/mvit_b.mv

# The suite on two pytest-xdist workers, one torch thread each (tests/conftest.py); a file's
# tests stay on one worker (its module fixtures are built once), the longest files go first.
PYTEST  := $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

# The README's test command, and CI's (.ci/run): lint first (ruff check, ruff format --check,
# mypy), then the test suite without the `full` twins (pyproject's addopts: -m 'not full').
test: setup lint
	$(MVITDSL) fmt --check specs examples
	$(PYTEST)

# The exhaustive run: also the full-size twin of every case `make test` runs smaller
# (@pytest.mark.full: ONNX and checkpointing of the 16-block models, logits at 224x224, ...).
test-all: setup lint
	$(MVITDSL) fmt --check specs examples
	$(PYTEST) -m ""

lint: setup
	$(PY) -m ruff check mvitdsl tests benchmarks examples
	$(PY) -m ruff format --check mvitdsl tests
	$(PY) -m mypy

format: setup
	$(PY) -m ruff format mvitdsl tests
	$(PY) -m ruff check --fix mvitdsl tests

# Regenerates every golden file (IR, fx code, DOT, diagnostics and docs/DIAGNOSTICS.md);
# review the diff like code.
golden: setup
	MVITDSL_UPDATE_GOLDEN=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_golden.py \
		tests/test_draw.py tests/test_diagnostics.py

# docs/LANGUAGE.md and the editor's TextMate grammar from the settings table
# (tests/test_language_doc.py and tests/test_lsp_grammar.py fail when one is stale).
docs: setup
	$(PY) -m mvitdsl.language.docs > docs/LANGUAGE.md
	$(PY) -m mvitdsl.lsp.textmate > mvitdsl/lsp/mvitdsl.tmLanguage.json

bench: setup
	$(PY) benchmarks/run.py

# The long property-test run: every entrance (CLI argv, API arguments, spec and checkpoint
# bytes) and the checker-equals-execution properties; counts go to build/*_counts.json.
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider tests -k property
	$(PY) tests/differential.py 1000 500

diagrams: setup
	$(MVITDSL) draw specs/mvit_b.mv --level stage -o docs/img/mvit_b_stage.svg
	$(MVITDSL) draw specs/mvit_b.mv --level block -o docs/img/mvit_b_block.svg
	$(MVITDSL) draw specs/mvit_b.mv --level model -o docs/img/mvit_b_model.svg
	$(MVITDSL) draw specs/mvit_b.mv --table -o docs/img/mvit_b_table.svg
	$(MVITDSL) draw specs/mvitv2_l_image.mv --level stage -o docs/img/mvitv2_l_image_stage.png
	$(MVITDSL) draw specs/mvit_b.mv specs/mvitv2_s.mv --costs -o docs/img/costs_mvit_b_mvitv2_s.svg
	$(MVITDSL) sweep specs/mvit_b.mv --vary scale4.blocks=4..16:4 --vary scale3.dim=128,192,256 \
	  --set scale3.heads=scale3.dim/64 --max-params 40e6 --pareto gmacs,params:max \
	  --plot docs/img/sweep_front.svg
	$(PY) examples/cross_family.py docs/img/cross_family.svg
	$(PY) tests/browser.py mvit_b docs/img/report_mvit_b.png

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
