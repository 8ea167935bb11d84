# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv (Python 3.11) and install tinyprune with pinned dependencies first (with the
# ray extra, which the sweep tests use).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tinyprune run --force
	$(BIN)/tinyprune prune models/digits_cnn.h5 --data digits --flash-budget 25% --epochs 5 -o out/demo/budget25 --force

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) out
