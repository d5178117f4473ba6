# Two commands for a newcomer: `make demo` and `make test`. Everything is installed into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := tools/constraints.txt
PACKAGES := dicttensor agents batchers logging algos
EDITABLES := $(foreach p,$(PACKAGES),-e packages/$(p))
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck layering pytest bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-installs when any pyproject or the constraints change.
$(STAMP): $(PY) pyproject.toml $(CONSTRAINTS) $(foreach p,$(PACKAGES),packages/$(p)/pyproject.toml)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c $(CONSTRAINTS) $(EDITABLES) -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# PPO on CartPole-v1 until an evaluation reaches 475; everything lands in runs/demo/.
demo: $(STAMP)
	rm -rf runs/demo
	$(VENV)/bin/rlstructures-train ppo --env CartPole-v1 --target-return 475 \
		--logdir runs/demo --save-trajectories

layering: $(STAMP)
	$(PY) tools/check_layering.py

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP)
	$(PY) -m pytest -q --hypothesis-profile=ci

test: layering lint typecheck pytest

bench: $(STAMP)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[test,bench]"
	for b in dicttensor agents logs batchers; do $(PY) tools/bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) runs .mypy_cache .ruff_cache .hypothesis
