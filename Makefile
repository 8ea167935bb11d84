# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv (Python 3.11) and install tinyprune with the exact versions of constraints.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := dev,plots,tensorboard,ray

.PHONY: demo test setup clean constraints

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt setuptools wheel
	$(BIN)/pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tinyprune run --force
	$(BIN)/tinyprune prune budget models/digits_cnn.h5 --data digits --flash-budget 25% --epochs 5 -o out/demo/budget25 --force

# The suite runs on TEST_WORKERS processes (pytest-xdist), a test file per worker at a time
# (--dist loadfile keeps a module's fixtures in one process); 2 halves its time on 2 cores.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# Refresh constraints.txt from the current environment (after changing a dependency range).
constraints: $(STAMP)
	$(BIN)/pip freeze --all --exclude-editable | grep -vE '^(tinyprune|pip)==' > constraints.txt

clean:
	rm -rf $(VENV) out
