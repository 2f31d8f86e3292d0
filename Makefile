# The two commands a user needs: `make up` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every dependency, direct and transitive, at the version `make test` last passed with
# (`make lock` refreshes it). The venv installs from it, so two machines get the same code.
CONSTRAINTS := constraints.txt
PIP := python -m pip install --quiet --constraint $(CONSTRAINTS)
# Test order: random, seeded. pytest-randomly prints the seed; `make test SEED=N` replays it.
SEED ?=
PYTEST := python -m pytest -p randomly $(if $(SEED),--randomly-seed=$(SEED)) --durations=15

.PHONY: up test test-fast lint bench lock clean-venv

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -n "$(PYTHON)" || { echo "make: Python 3.11 not found (install python3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP) --upgrade pip
	# torch first and pinned: the CPU build, not gigabytes of CUDA.
	$(BIN)/$(PIP) torch==2.13.0
	$(BIN)/$(PIP) -e '.[test,ray]'
	@touch $(STAMP)

up: $(STAMP)
	$(BIN)/micro up

test: $(STAMP)
	$(BIN)/$(PYTEST)

test-fast: $(STAMP)
	$(BIN)/$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check micro tests bench
	$(BIN)/ruff format --check micro tests bench
	$(BIN)/python -m mypy

bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Resolve every dependency afresh in a throwaway venv (the newest releases pyproject.toml
# allows) and write their versions to constraints.txt; then run `make test` and commit both.
lock:
	@test -n "$(PYTHON)" || { echo "make: Python 3.11 not found (install python3.11)"; exit 2; }
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --quiet torch==2.13.0; \
	"$$tmp/venv/bin/python" -m pip install --quiet -e '.[test,ray]'; \
	{ echo "# Every dependency of micro and its test extras, direct and transitive, as resolved"; \
	  echo "# by \`make lock\` on $$("$$tmp/venv/bin/python" --version). Do not edit; run \`make lock\`."; \
	  "$$tmp/venv/bin/python" -m pip freeze --all --exclude micro | sed -E 's/\+[A-Za-z0-9.]+$$//'; \
	} > $(CONSTRAINTS); \
	echo "wrote $(CONSTRAINTS): $$(grep -vc '^#' $(CONSTRAINTS)) packages"

clean-venv:
	rm -rf $(VENV)
