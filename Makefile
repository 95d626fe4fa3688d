# The two commands: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TYPECHECK := .herald/typecheck
PYTEST_ARGS ?=

.PHONY: all bootstrap controlplane tools lint typecheck layers check test demo bench down clean

all: test

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

bootstrap: $(INSTALLED)
	./dev/bootstrap.sh

controlplane: bootstrap
	$(BIN)/herald dev build-controlplane

# helm and kstatus for the chart and health tests, built the same way.
tools: bootstrap
	$(BIN)/herald dev build-tools

# mypy and import-linter resolve modules from folders, not from the editable install's
# import hook, so they read the folders through a `herald/` tree of links, made again when
# the list of folders here changes.
$(TYPECHECK)/herald: Makefile
	mkdir -p $@
	for d in core kube telegram operator sender bot emulator cli api; do ln -sfn ../../../$$d $@/$$d; done
	ln -sfn ../../../dev/herald_dev $@/dev

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED) $(TYPECHECK)/herald
	MYPYPATH=$(TYPECHECK) $(BIN)/mypy -p herald.core -p herald.kube -p herald.telegram \
		-p herald.operator -p herald.sender -p herald.bot -p herald.emulator -p herald.dev -p herald.cli -p herald.api
	MYPYPATH=$(TYPECHECK):tests $(BIN)/mypy --explicit-package-bases tests

layers: $(INSTALLED) $(TYPECHECK)/herald
	PYTHONPATH=$(TYPECHECK) $(BIN)/lint-imports

check: lint typecheck layers

test: controlplane tools check
	$(BIN)/pytest $(PYTEST_ARGS)

demo: controlplane
	./dev/demo.sh

# Herald's sender side by side with the seeds' designs (bench/README.md); BENCH_ARGS=--rounds 3
BENCH_ARGS ?=
bench: bootstrap
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/side_by_side.py $(BENCH_ARGS)

down:
	-$(BIN)/herald dev down

clean: down
	rm -rf $(VENV) .herald build *.egg-info
