"""Where a result came from: library versions, the git commit, the machine."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path

REPORTED_PACKAGES = ("ecgcnn", "torch", "numpy", "onnx", "onnxruntime", "tensorflow", "onnx2tf", "ai-edge-litert")


def package_version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def library_versions() -> dict:
    """What a model file records about the code that wrote it."""
    return {"ecgcnn": package_version("ecgcnn"), "torch": package_version("torch"),
            "numpy": package_version("numpy"), "python": platform.python_version()}


def report_versions() -> dict:
    return {name: package_version(name) for name in REPORTED_PACKAGES}


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=cwd)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, cwd=cwd).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or ``taskset``'s limit), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        return max(os.cpu_count() or 1, 1)
