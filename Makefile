# kvstore: the two commands are `make demo` and `make test`.
# Both create (or refresh) .venv from pyproject.toml first; nothing else is needed
# on the machine but Python 3.11+ and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: all setup demo test lint proto soak release-check clean help

help:
	@echo "make demo   - set up, then run the demo (a node, a put and a get, a stop)"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make lint   - ruff, and mypy --strict on kvstore/"
	@echo "make proto  - regenerate kvstore/wire/ from proto/*.proto"
	@echo "make soak   - longer randomized and fault runs (not part of make test)"
	@echo "make release-check - the course kit's long parity and broken-solution checks"
	@echo "make clean  - remove the virtual environment and caches"

setup: $(STAMP)

# Re-run the install whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kvstore needs Python 3.11 or newer, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing kvstore and its dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(BIN)/python -m pip install -e '.[dev]' >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m kvstore_cli.demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check kvstore cli jepsen-lite tests bench proto
	$(BIN)/mypy
	@# jepsen-lite/ is not an importable folder name; check it through a link named jepsen_lite.
	@mkdir -p .mypy_links && ln -sfn ../jepsen-lite .mypy_links/jepsen_lite
	MYPYPATH=.mypy_links $(BIN)/mypy --strict -p jepsen_lite

proto: $(STAMP)
	$(BIN)/python proto/generate.py

soak: $(STAMP)
	KVSTORE_SOAK=1 $(BIN)/python -m pytest -m soak $(PYTEST_ARGS)

release-check: $(STAMP)
	KVSTORE_SOAK=1 $(BIN)/python -m pytest tests/course -m soak $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info

# Benchmarks (not part of make test; each writes its numbers to docs/PERFORMANCE.md).
.PHONY: bench-engine bench-ring bench-checker bench-node
bench-engine: $(STAMP)
	$(BIN)/python bench/engine_bench.py $(ARGS)

bench-ring: $(STAMP)
	$(BIN)/python bench/ring_bench.py --name-sets 100 --write $(ARGS)

bench-checker: $(STAMP)
	$(BIN)/python -m jepsen_lite.cli bench --update-doc docs/PERFORMANCE.md $(ARGS)

bench-node: $(STAMP)
	$(BIN)/python bench/node_bench.py --repeat 5 --write $(ARGS)
