VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test train bench-speed

$(PY):
	python3 -m venv $(VENV)

install: $(PY)
	$(VENV)/bin/pip install -e '.[test]'

test: install
	$(PY) -m pytest

train: $(PY)
	$(VENV)/bin/pip install -e . && $(VENV)/bin/ddpgx train

# Speed against Stable-Baselines3, measured in one run (needs the bench extra: torch CPU + SB3).
bench-speed: $(PY)
	$(VENV)/bin/pip install -e '.[bench]' && $(PY) benchmarks/speed.py
