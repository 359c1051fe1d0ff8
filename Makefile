# Everyday targets. `make all` sets up a fresh machine and runs the main job; `make test` tests.
PY      := .venv/bin/python
MVITDSL := .venv/bin/mvitdsl

.PHONY: all setup main test lint format golden docs bench fuzz diagrams clean

all: setup main

setup:
	@bash scripts/setup.sh

main: setup
	$(MVITDSL) compile specs/mvit_b.mv

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(PY) -m ruff check mvitdsl tests benchmarks examples
	$(PY) -m ruff format --check mvitdsl
	$(PY) -m mypy

format: setup
	$(PY) -m ruff format mvitdsl
	$(PY) -m ruff check --fix mvitdsl tests

# Regenerates every golden file (IR, fx code, DOT, diagnostics and docs/DIAGNOSTICS.md);
# review the diff like code.
golden: setup
	MVITDSL_UPDATE_GOLDEN=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_golden.py \
		tests/test_draw.py tests/test_diagnostics.py

# docs/LANGUAGE.md from the settings table (tests/test_language_doc.py fails when it is stale).
docs: setup
	$(PY) -m mvitdsl.language.docs > docs/LANGUAGE.md

bench: setup
	$(PY) benchmarks/run.py

fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -p no:cacheprovider tests -k property
	$(PY) tests/differential.py 1000 500

diagrams: setup
	$(MVITDSL) draw specs/mvit_b.mv --level stage -o docs/img/mvit_b_stage.svg
	$(MVITDSL) draw specs/mvit_b.mv --level block -o docs/img/mvit_b_block.svg
	$(MVITDSL) draw specs/mvit_b.mv --level model -o docs/img/mvit_b_model.svg
	$(MVITDSL) draw specs/mvit_b.mv --table -o docs/img/mvit_b_table.svg
	$(MVITDSL) draw specs/mvitv2_l_image.mv --level stage -o docs/img/mvitv2_l_image_stage.png

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
