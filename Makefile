VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test train bench-speed bench-returns bench-extensions bench-budgets bench-repro bench-sweep-speed bench-workers

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
# The sweeps run in SWEEP_RUNS (every run directory, checkpoints included; not in git); each is then
# written in compact form to benchmarks/results/sweeps (spec, tables, trials, configs, one curves CSV),
# which the report reads. A sweep that has a directory in SWEEP_RUNS is resumed where its driver
# stopped (a finished one only rewrites its table); delete the directory to run it again.
SPECS ?= $(wildcard benchmarks/specs/*.yaml)
SWEEP_RUNS ?= sweeps
SWEEPS := benchmarks/results/sweeps
REPORT ?= benchmarks/results/returns
IN_LOOPBACK := unshare -n sh -c 'ip link set lo up && exec "$$@"' sh

bench-returns: $(PY)
	$(VENV)/bin/pip install -e '.[bench,ray]'
	@for spec in $(SPECS); do \
	  name=$$(sed -n 's/^name: *//p' $$spec); \
	  if [ -f $(SWEEP_RUNS)/$$name/spec.json ]; then resume=--resume; else resume=; fi; \
	  $(IN_LOOPBACK) $(VENV)/bin/ddpgx sweep $$spec --storage-path $(SWEEP_RUNS) $$resume || exit 1; \
	  $(PY) benchmarks/host.py > $(SWEEP_RUNS)/$$name/host.json; \
	  rm -rf $(SWEEPS)/$$name.new; \
	  $(PY) benchmarks/compact.py $(SWEEP_RUNS)/$$name $(SWEEPS)/$$name.new || exit 1; \
	  rm -rf $(SWEEPS)/$$name && mv $(SWEEPS)/$$name.new $(SWEEPS)/$$name; \
	done
	$(PY) benchmarks/report.py $(foreach spec,$(SPECS),$(SWEEPS)/$(shell sed -n 's/^name: *//p' $(spec))) --out $(REPORT)

# Each extension alone against default (Pendulum-v1, Hopper-v5), and a task far from unit scale:
# the specs of benchmarks/specs/extensions/, run as bench-returns runs its specs.
bench-extensions: $(PY)
	$(MAKE) bench-returns SPECS="$(wildcard benchmarks/specs/extensions/*.yaml)" REPORT=benchmarks/results/extensions

# What a sweep costs against one process and against SB3 processes (8 seeds of Pendulum-v1).
bench-sweep-speed: $(PY)
	$(VENV)/bin/pip install -e '.[bench,ray]' && $(PY) benchmarks/sweep_speed.py

# ddpgx at 100,000, 300,000 and 1,000,000 environment steps beside the published DDPG and TD3 curves
# (benchmarks/references/mujoco_ddpg.csv): BUDGET_SWEEPS="DIR ..." names the sweeps (compact or full,
# finished or still running).
bench-budgets: $(PY)
	@test -n "$(BUDGET_SWEEPS)" || { echo 'name the sweeps: make bench-budgets BUDGET_SWEEPS="$(SWEEPS)/NAME ..."'; exit 2; }
	$(VENV)/bin/pip install -e '.[ray]' && $(PY) benchmarks/budgets.py $(BUDGET_SWEEPS) --out benchmarks/results/budgets

# The reproduction of Tianshou's DDPG curve (benchmarks/specs/mujoco/tianshou-repro.yaml), seed by seed
# against its 10 seeds (benchmarks/references/tianshou_ddpg_seeds.csv).
bench-repro: $(PY)
	$(VENV)/bin/pip install -e '.[ray]' && $(PY) benchmarks/repro.py benchmarks/results/sweeps/tianshou-repro --out benchmarks/results/repro

# Rollout workers: throughput on a slow simulator, and learning beside the single-process loop.
bench-workers: $(PY)
	$(VENV)/bin/pip install -e '.[ray]' && $(PY) benchmarks/workers.py
