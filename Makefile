# linetwin — two commands: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-long lint bench clean venv

venv: $(STAMP)

# torch is installed first, pinned to the CPU build on this machine's disk, so that the open
# range in pyproject (torch>=2.3) does not pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@echo "set-up: creating $(VENV) with $(PYTHON) (once; later runs reuse it)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo "set-up: installing torch 2.13.0 first (neural surrogates; pinned so that the open range does not pull a multi-GB CUDA build)"
	$(PY) -m pip install -q torch==2.13.0
	@echo "set-up: installing linetwin and its dependencies (asyncua, pymodbus, casadi, ...) with the dev extra" \
		"(pytest, ruff, do-mpc) into $(VENV)"
	$(PY) -m pip install -q -e '.[dev]'
	@echo "set-up: byte-compiling the installed packages and linetwin into $(VENV)/pycache, the bytecode cache of" \
		"make test (PYTEST_ENV below), so that the suite's first run does not compile them in every process"
	$(PYTEST_ENV) $(PY) -m compileall -q -j 0 -x '/torch/testing/_internal/' \
		"$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
		twin_server process_models controllers plc_adapters hil linetwin_cli linetwin_examples linetwin_lazy benchmarks \
		> $(VENV)/compileall.log 2>&1 \
		|| echo "set-up: some files could not be byte-compiled (see $(VENV)/compileall.log); they compile when imported"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/linetwin demo $(DEMO_ARGS)

# The suite runs on PYTEST_WORKERS pytest-xdist workers (default 4 on this 2-core machine: most tests wait on
# sockets and servers, so two workers per core keep both cores busy; `make test PYTEST_WORKERS=0` runs it in one
# process). `--dist loadgroup`: tests marked `serial` share one worker; `--durations=25` lists the slowest tests. Tests marked
# `long` (the long forms of short default tests) are deselected by pyproject's addopts; `make test-long` runs them.
PYTEST_WORKERS ?= 4
# Bytecode cache for the suite: it starts ~150 Python processes (the CLI commands, benchmark smoke runs, peers and
# clusters it tests), and where the environment sets PYTHONDONTWRITEBYTECODE (this machine does) every one of them,
# and every xdist worker, compiled linetwin's modules (and pytest its rewritten tests) from source again: ~45 CPU s
# of a run. The compiled files go to $(VENV)/pycache (PYTHONPYCACHEPREFIX, absolute: the processes run from many
# folders), never beside the sources; `make clean` removes them with the venv. The venv's set-up fills it once
# (compileall, ~30 CPU s; pip's own compiled files sit beside the sources, where this prefix does not look), so that a
# fresh clone's first `make test` does not compile the same modules in four workers at once. torch's internal test
# helpers are left out (one is Python 3.12 syntax; nothing imports them).
PYTEST_ENV := PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/$(VENV)/pycache

test: $(STAMP)
	bash tools/test_setup.sh
	$(VENV)/bin/ruff check .
	$(PYTEST_ENV) $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

test-long: $(STAMP)
	bash tools/test_setup.sh
	$(PYTEST_ENV) $(PY) -m pytest -q -m long $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/mirror_throughput.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
