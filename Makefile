# Set-up and everyday commands. Every install step lives here so that a fresh clone works.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cvxnn-installed

.PHONY: demo test test-slow test-gpu install bench bench-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cvxnn demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu

# scnn (the comparison in benchmarks/bench_solvers.py): its wheel asks for torchvision, which it
# never imports, so it is installed without dependencies and its real ones are listed here.
bench-deps: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps pyscnn==0.0.10 linalg_backends==0.0.1b0
	$(BIN)/python -m pip install -q -c constraints.txt tqdm opt_einsum

bench: bench-deps
	$(BIN)/python benchmarks/bench_solvers.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
