"""The machine, the versions and the code a benchmark ran on, for the header of its report; and the
pieces every benchmark's report shares."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ddpgx", "jax", "jaxlib", "flax", "optax", "gymnasium", "mujoco", "numpy", "torch", "stable-baselines3",
            "sbx-rl", "gymnax", "brax", "rejax")


def spread(values: list[float]) -> str:
    """Median (min-max) of repeated measurements."""
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def write_results(out: Path, name: str, results: dict[str, Any], lines: list[str]) -> None:
    """out/name.json (every figure) and out/name.md (the report's lines), then print the report."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def machine() -> dict[str, Any]:
    """CPU model, core count, platform, the installed versions of PACKAGES, the code's commit and the time."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(), "versions": versions,
            "git": code_commit(), "date": datetime.datetime.now().isoformat(timespec="seconds")}


def cpu_model() -> str:
    """The CPU's name, with its family and model and its widest vector instructions: under a
    hypervisor the name alone is often just "AMD EPYC", and two machines of that name can differ
    threefold in matrix-product rate (AVX2 on Zen 1 against AVX-512 on Zen 4)."""
    if not os.path.exists("/proc/cpuinfo"):
        return platform.processor() or "unknown"
    fields: dict[str, str] = {}
    for line in open("/proc/cpuinfo"):
        if not line.strip():
            break  # the first processor describes them all
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    vector = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")) if flag in flags),
                  "no AVX")
    details = [f"family {fields['cpu family']} model {fields['model']}"] if "cpu family" in fields else []
    return f"{fields.get('model name', 'unknown')} ({', '.join(details + [vector])})"


def code_commit() -> str | None:
    """The commit of the code, marked '-dirty' if the package or the benchmarks' code differ from it
    (results and docs written since, a report's own included, do not count)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:  # a copy of the code made with git archive, which records its commit in COMMIT
        return (ROOT / "COMMIT").read_text().strip() if (ROOT / "COMMIT").exists() else None
    changed = git("status", "--porcelain", "--", "src", "benchmarks/*.py", "pyproject.toml")
    return commit + ("-dirty" if changed else "")


if __name__ == "__main__":  # `python benchmarks/host.py > SWEEP_DIR/host.json`: what a sweep ran on
    print(json.dumps(machine(), indent=2))
