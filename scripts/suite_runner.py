"""What both sides of the bake-off share (scripts/suite.py, scripts/peers_suite.py): one process per dataset, killed
after a time box, one JSON per dataset, datasets already measured skipped (the run resumes)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from ecgcnn.core.fileio import write_json_atomic


def partial_path(out: Path, name: str) -> Path:
    """Where a dataset's process leaves what it has measured so far (kept when the time box kills it)."""
    return out / f"{name}.partial"


def run_child(measure: Callable[[], dict]) -> int:
    """Inside a dataset's process: print the result as the last line of stdout."""
    try:
        result = measure()
    except Exception:  # noqa: BLE001 - the parent records it
        traceback.print_exc()
        return 1
    print(json.dumps(result))
    return 0


def _why(done: subprocess.CompletedProcess) -> str:
    """A failed dataset process's reason: the signal that ended it (the kernel's out-of-memory killer sends SIGKILL,
    and the process writes nothing about it), else the last line it wrote on stderr."""
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return " ".join([line for line in done.stderr.strip().splitlines() if line.strip()][-1:])


def _partial(out: Path, name: str, system: str) -> dict:
    partial = partial_path(out, name)
    return json.loads(partial.read_text()) if partial.is_file() else {"dataset": name, "system": system}


def run_all(script: str, names: list[str], out: Path, time_box: float, system: str,
            extra: tuple[str, ...] = ()) -> None:
    """``python script --one NAME *extra`` for each dataset without a result in ``out``."""
    for k, name in enumerate(names, start=1):
        target = out / f"{name}.json"
        if target.is_file():
            continue
        t0 = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, script, "--one", name, "--partial", str(partial_path(out, name)),
                                   *extra], capture_output=True, text=True, timeout=time_box, check=False)
            if done.returncode == 0:
                result = json.loads(done.stdout.strip().splitlines()[-1])
            else:  # what finished before the failure is kept, as after a timeout
                result = {**_partial(out, name, system), "status": "failed", "reason": _why(done)}
        except subprocess.TimeoutExpired:
            result = _partial(out, name, system)
            result.update(status="timed out", reason=f"not finished within the time box of {time_box:g} s"
                          + (" (the runs that finished are kept)" if result.get("runs") else ""))
        partial_path(out, name).unlink(missing_ok=True)
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        write_json_atomic(target, result)
        print(f"[{k}/{len(names)}] {name}: {result['status']} in {result['wall_s']} s", flush=True)
