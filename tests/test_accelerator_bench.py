"""benchmarks/accelerator.py, the GPU's benchmark, runs at tiny settings on a CPU, so that it is
known to work before a GPU is at hand."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gymnax")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
def test_accelerator_benchmark_runs_at_tiny_settings_on_a_cpu(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "accelerator.py"), "--tiny", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=1200, cwd=BENCHMARKS)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "accelerator_tiny.json").read_text())
    assert results["device"].startswith("cpu")
    [point] = results["grid"]
    assert (point["num_envs"], point["batch_size"]) == (16, 32) and point["steps_per_s"] > 0
    assert results["race"]["curve"] and results["race"]["steps"] >= 2_048  # evaluated at least once
    assert results["host"]["steps_per_s"] > 0
    report = (tmp_path / "accelerator_tiny.md").read_text()
    assert "| 16 | 32 |" in report and "Host loop on Pendulum-v1" in report
