# BAT OS set-up and entry points. Every target creates or reuses .venv at the repo root.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.batos-installed
RUN_HOME ?= var/run-$(shell date +%Y%m%d-%H%M%S)

.PHONY: run test venv clean bench

run: $(STAMP)  ## start a ZEO server on a fresh data directory, awaken the image, show it
	$(VENV)/bin/batos awaken --home $(RUN_HOME)

test: $(STAMP)  ## run the whole test suite against real ZEO servers
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info

bench: $(STAMP)  ## print benchmark figures against raw baselines
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done
