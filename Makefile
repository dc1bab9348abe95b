# make demo: run the whole pipeline on the offline default params (dvc repro) and print the results table.
# make test: lint (ruff) and run the test suite (offline, CPU). Both create .venv and install the project when needed.
# make test-fast: the unit tier only (tests/unit), the inner loop while editing; make test before a commit.
# make bench: the CPU benchmarks (figures in benchmarks/RESULTS.md; tens of minutes on 2 cores).
# make bench-gpu: the GPU figures in one command (benchmarks/gpu.py, ~8 min on one GPU); without CUDA it says so.
# make docs: the documentation site (docs/, mkdocs.yml) built offline into site/; open site/index.html.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mdpr-installed

.PHONY: demo test test-fast install clean-venv bench bench-gpu docs

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" DVC_NO_ANALYTICS=1 $(BIN)/dvc repro
	$(BIN)/mdpr report

# Two pytest-xdist workers (one per core of a 2-core machine); the tests of one module stay on one worker (loadscope),
# so a module-scoped fixture is built once; modules go out in the order tests/conftest.py sorts them (slow e2e first,
# the shared DVC repo built while the other worker runs modules that do not need it). `make test PYTEST_PARALLEL=` runs
# one process.
PYTEST_PARALLEL ?= -n 2 --dist loadscope --no-loadscope-reorder

test: $(STAMP)
	$(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" DVC_NO_ANALYTICS=1 $(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

test-fast: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" DVC_NO_ANALYTICS=1 $(BIN)/python -m pytest -q $(PYTEST_PARALLEL) tests/unit

bench: $(STAMP)
	$(BIN)/python benchmarks/cli.py
	$(BIN)/python benchmarks/router.py
	$(BIN)/python benchmarks/text.py
	$(BIN)/python benchmarks/eval.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/embed.py
	$(BIN)/python benchmarks/llm.py

bench-gpu: $(STAMP)
	$(BIN)/python benchmarks/gpu.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean-venv:
	rm -rf $(VENV)
