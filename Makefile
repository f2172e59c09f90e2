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

# Returns against Stable-Baselines3 DDPG: each spec of benchmarks/specs/ run by `ddpgx sweep` (hours
# for all of them; SPECS="benchmarks/specs/pendulum.yaml ..." picks some), then one table per task
# by benchmarks/report.py. Ray runs inside a loopback-only network namespace (unshare -n, as root).
# A sweep whose directory holds results.md is done and skipped (delete the directory to run it again);
# one without is resumed where its driver stopped.
SPECS ?= $(wildcard benchmarks/specs/*.yaml)
SWEEPS := benchmarks/results/sweeps
IN_LOOPBACK := unshare -n sh -c 'ip link set lo up && exec "$$@"' sh

bench-returns: $(PY)
	$(VENV)/bin/pip install -e '.[bench,ray]'
	@for spec in $(SPECS); do \
	  name=$$(basename $$spec .yaml); \
	  if [ -f $(SWEEPS)/$$name/results.md ]; then echo "$$spec: done in $(SWEEPS)/$$name"; continue; fi; \
	  if [ -f $(SWEEPS)/$$name/spec.json ]; then resume=--resume; else resume=; fi; \
	  $(IN_LOOPBACK) $(VENV)/bin/ddpgx sweep $$spec --storage-path $(SWEEPS) $$resume || exit 1; \
	  $(PY) benchmarks/host.py > $(SWEEPS)/$$name/host.json; \
	done
	$(PY) benchmarks/report.py $(SWEEPS)/*/ --out benchmarks/results/returns
