VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test train bench-speed bench-returns

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

# Returns against Stable-Baselines3 DDPG, the whole list of issue 4 (hours; rerun to resume where it stopped).
bench-returns: $(PY)
	$(VENV)/bin/pip install -e '.[bench]' && $(PY) benchmarks/returns.py --suite issue4
