# backchain: `make run` opens the explorer on the bundled sample, `make test` runs everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint imports typecheck unit bench clean fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/backchain $(DUMP)

lint: $(STAMP)
	$(BIN)/ruff check parsers explorer tests benchmarks samples
	$(BIN)/ruff format --check parsers explorer tests benchmarks samples

# The layers (pyproject.toml [tool.importlinter]): parsers < model < walk < code, debuginfo <
# reports, training, livepatch < faces; only the faces import textual or rich.
imports: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint imports typecheck unit

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# Hostile-input fuzzers (tests/fuzz): FUZZ_SECONDS split evenly between the targets; failing
# inputs land in tests/corpus/ and are replayed by `make test`.
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.run --seconds $(FUZZ_SECONDS) --json .hypothesis/fuzz-last.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
