"""Many recordings in one run: ``ecgcnn annotate A B C --output-dir DIR`` (paths, globs, directories or a manifest).

Each record gets ``<name>.csv`` (one row per beat, as for one record) and ``<name>.json`` (its summary), and the run
writes ``archive.csv``: one row per record (status, duration, beats, heart rate, class mix, flagged beats, whether
its beats are like the training beats, model).

**Resumable.** A record is finished when its summary exists and records the same input (size and modification time
of its files), the same model file (sha256) and the same options; a rerun skips it. Every file is written atomically
and the summary last, so a killed run loses at most the records in flight. A record that fails is reported in the
table (``status`` ``failed`` and the one-line reason) and the run goes on.

**Parallel.** Each record is one task: read, detect, window, classify, write. ``jobs`` runs tasks in that many
processes here; ``cluster`` sends them to the workers of an existing Dask cluster (the ``cluster`` extra), which read
the records and write the outputs at the paths given, so both must be reachable from every worker. Each task runs
the model on one thread and the outputs do not depend on where or in which order tasks ran (tested byte for byte).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from functools import cache
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from ..annotate.pipeline import annotate_signal
from ..annotate.readers import TEXT_SUFFIXES, read_recording
from ..annotate.writers import write_csv, write_summary
from ..core.errors import EcgcnnError, optional_import
from ..core.fileio import file_sha256, write_text_atomic
from ..core.provenance import usable_cores
from ..runtimes import Predictor, load_predictor
from ..runtimes.pretrained import measured_fields

RECORD_SUFFIXES = (".hea", ".npy", *sorted(TEXT_SUFFIXES))  # what a directory contributes (a WFDB record: its .hea)
ARCHIVE_FILE = "archive.csv"
ARCHIVE_COLUMNS = ("record", "status", "duration_s", "beats", "classified", "mean_heart_rate_bpm", "class_mix",
                   "unfamiliar", "residual_ratio", "familiar", "rejected", "model", "error")
GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class RecordOptions:
    """What every record of a run is annotated with (recorded in each summary: a change redoes the record)."""

    model: str
    fs: float | None = None
    channel: int | str | None = None
    column: int | str | None = None
    polarity: str = "auto"
    chunk_seconds: float = 600.0


# ----------------------------------------------------------------------------------------------------- the inputs

def expand_records(items: Iterable[str], manifest: str | os.PathLike | None = None) -> list[Path]:
    """Record paths from paths, globs and directories (their ``.hea``, ``.npy``, ``.csv``/``.txt``/``.tsv``/``.asc``
    files, sorted) and from a manifest (one path per line, relative to the manifest's folder; ``#`` comments).
    Every path is checked to exist; duplicates are dropped, the order is kept."""
    found: list[Path] = []
    for item in items:
        found += _expand(item, where=None)
    if manifest is not None:
        manifest = Path(manifest)
        if not manifest.is_file():
            raise EcgcnnError(f"--manifest {manifest}: file not found; expected a text file with one record per line")
        for line_no, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if entry:
                path = entry if Path(entry).is_absolute() else str(manifest.parent / entry)
                found += _expand(path, where=f"{manifest}, line {line_no}")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise EcgcnnError("no records found; expected recording files, directories, globs or --manifest")
    return unique


def _expand(item: str, where: str | None) -> list[Path]:
    at = f" ({where})" if where else ""
    if GLOB_CHARACTERS & set(item):
        matches = sorted(glob.glob(item))
        if not matches:
            raise EcgcnnError(f"{item}{at}: no file matches this pattern")
        return [p for m in matches for p in _expand(m, where)]
    path = Path(item)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in RECORD_SUFFIXES)
        if not files:
            raise EcgcnnError(f"{path}{at}: no recordings in this directory (expected {', '.join(RECORD_SUFFIXES)})")
        return files
    if path.suffix.lower() == ".dat" and path.with_suffix(".hea").is_file():
        return [path.with_suffix(".hea")]
    if not path.exists() and not Path(f"{path}.hea").is_file():
        raise EcgcnnError(f"{path}{at}: file not found; expected a recording, a directory or a glob")
    return [path if path.exists() else Path(f"{path}.hea")]


def output_names(records: list[Path]) -> list[str]:
    """The output name of each record (its file name without the suffix); two records with one name are refused."""
    names: dict[str, Path] = {}
    for record in records:
        name = record.stem if record.suffix else record.name
        if name in names:
            raise EcgcnnError(f"{record} and {names[name]} would both write {name}.csv; expected records with "
                              f"distinct names (run them into separate --output-dir folders)")
        names[name] = record
    return list(names)


def fingerprint(record: Path) -> list[list]:
    """Size and modification time of the files a record is read from (a WFDB record: its header and signal files)."""
    files = [record]
    if record.suffix.lower() == ".hea":
        files += sorted(p for p in record.parent.glob(f"{glob.escape(record.stem)}.*")
                        if p.suffix.lower() == ".dat" or p.suffix.lower() == ".mat")
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.exists()]


# ------------------------------------------------------------------------------------------------------ one record

@cache
def _predictor(model: str, threads: int | None) -> Predictor:
    """One predictor per process, model and thread count (a worker keeps it between tasks)."""
    return load_predictor(model, threads=threads)


def threads_per_record(jobs: int, cluster: str | None) -> int | None:
    """The runtime's threads for each record: every core for a serial run (None: the runtime's default, all of
    them), the cores shared out between ``jobs`` processes, one on a cluster (its workers are sized there)."""
    if cluster is not None:
        return 1
    return None if jobs <= 1 else max(usable_cores() // jobs, 1)


def _run_key(record: Path, options: RecordOptions, model_sha256: str) -> dict:
    return {"input": fingerprint(record), "model_sha256": model_sha256, "options": asdict(options)}


def annotate_record(record: str, name: str, output_dir: str, options: RecordOptions, threads: int | None = 1) -> dict:
    """Annotate one record into ``<output_dir>/<name>.csv`` and ``<name>.json`` (the summary last) and return its
    archive row. A bad record does not raise: its row has status ``failed`` and the reason."""
    try:
        predictor = _predictor(options.model, threads)
        recording = read_recording(record, fs=options.fs, channel=options.channel, column=options.column)
        result = annotate_signal(recording.signal, recording.fs, predictor, polarity=options.polarity,
                                 chunk_seconds=options.chunk_seconds)
        summary = result.summary(source=f"{recording.source} ({recording.channel_name})", model=predictor.describe())
        summary.update(measured_fields(predictor))
        summary["run"] = _run_key(Path(record), options, file_sha256(predictor.path) if predictor.path else "")
        write_csv(result, Path(output_dir) / f"{name}.csv")
        write_summary(summary, Path(output_dir) / f"{name}.json")
        return archive_row(name, summary)
    except Exception as exc:  # noqa: BLE001 - one record's failure is reported in its row; the run goes on
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = message if isinstance(exc, EcgcnnError) else f"{type(exc).__name__}: {message}"
        return {"record": name, "status": "failed", "error": reason}


def archive_row(name: str, summary: dict) -> dict:
    mix = "; ".join(f"{class_name}={entry['count']}" for class_name, entry in summary["beats_per_class"].items())
    familiarity = summary.get("familiarity") or {}  # none: the model has no novelty reference
    familiar = familiarity.get("familiar")
    return {"record": name, "status": "ok", "duration_s": summary["duration_s"], "beats": summary["beats"],
            "classified": summary["classified"], "mean_heart_rate_bpm": summary["mean_heart_rate_bpm"],
            "class_mix": mix, "unfamiliar": summary["unfamiliar"],
            "residual_ratio": familiarity.get("residual_ratio", ""),
            "familiar": "" if familiar is None else ("yes" if familiar else "no"),
            "rejected": summary["rejected"], "model": summary.get("model", ""), "error": ""}


def finished_row(record: Path, name: str, output_dir: Path, options: RecordOptions, model_sha256: str) -> dict | None:
    """The archive row of a record a previous run finished with the same input, model and options, else None."""
    summary_path, csv_path = output_dir / f"{name}.json", output_dir / f"{name}.csv"
    if not (summary_path.is_file() and csv_path.is_file()):
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if summary.get("run") != json.loads(json.dumps(_run_key(record, options, model_sha256))):  # as stored
        return None
    return archive_row(name, summary)


# -------------------------------------------------------------------------------------------------------- the run

def annotate_archive(records: list[Path], output_dir: str | os.PathLike, options: RecordOptions, jobs: int = 1,
                     cluster: str | None = None, progress: bool = True,
                     log: Callable[[str], None] = lambda message: print(message, file=sys.stderr)) -> list[dict]:
    """Annotate every record (see the module docstring); returns the archive rows in the records' order."""
    output_dir = Path(output_dir)
    names = output_names(records)
    if output_dir.exists() and not output_dir.is_dir():
        raise EcgcnnError(f"--output-dir {output_dir}: exists and is not a directory")
    threads = threads_per_record(jobs, cluster)
    predictor = _predictor(options.model, threads)  # refused before any record is read; a serial run reuses it
    model_sha256 = file_sha256(predictor.path) if predictor.path else ""
    output_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(output_dir, names)
    rows: list[dict | None] = [finished_row(r, n, output_dir, options, model_sha256) for r, n in zip(records, names,
                                                                                                     strict=True)]
    todo = [i for i, row in enumerate(rows) if row is None]
    if len(todo) < len(records):
        log(f"{len(records) - len(todo)} of {len(records)} records already finished with this model and these "
            f"options: kept")
    tasks = [(str(records[i]), names[i], str(output_dir), options, threads) for i in todo]
    bar = tqdm(total=len(tasks), desc="records", unit="record", disable=not progress or None)
    try:
        for i, row in zip(todo, _run_tasks(tasks, jobs, cluster), strict=True):
            rows[i] = {**row, "record": names[i]}
            bar.update(1)
            if row["status"] != "ok":
                log(f"{records[i]}: failed: {row['error']}")
    finally:
        bar.close()
    done = [row for row in rows if row is not None]
    write_text_atomic(output_dir / ARCHIVE_FILE, archive_csv(done))
    return done


def _remove_stale_temporaries(output_dir: Path, names: list[str]) -> None:
    """A killed run can leave the temporary file of an atomic write (``.<name>.csv.<random>.csv``); drop those."""
    for name in [*names, Path(ARCHIVE_FILE).stem]:
        for suffix in (".csv", ".json"):
            for stale in output_dir.glob(f".{glob.escape(name)}{suffix}.*{suffix}"):
                stale.unlink(missing_ok=True)


def _run_tasks(tasks: list[tuple], jobs: int, cluster: str | None) -> Iterable[dict]:
    """The rows of ``tasks``, in the tasks' order (each yielded as soon as it and all before it are done)."""
    if cluster is not None:
        yield from _on_dask(tasks, cluster)
    elif jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield annotate_record(*task)
    else:
        # spawn, not fork: a forked child of a process that has run torch or onnxruntime threads can deadlock
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(annotate_record, *task) for task in tasks]
            yield from _in_order(futures, as_completed(futures), lambda future: future.result())


def _on_dask(tasks: list[tuple], address: str) -> Iterable[dict]:
    distributed = optional_import("distributed", "cluster")
    try:
        client = distributed.Client(address, set_as_default=False, timeout="20s")
    except OSError as exc:
        raise EcgcnnError(f"--cluster {address}: no Dask scheduler answers there ({exc})") from None
    with client:
        futures = [client.submit(annotate_record, *task, pure=False, key=f"ecgcnn-annotate-{task[1]}-{i}")
                   for i, task in enumerate(tasks)]
        yield from _in_order(futures, distributed.as_completed(futures, loop=client.loop), _dask_result)


def _dask_result(future) -> dict:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a lost worker fails that record, not the run
        return {"record": "", "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def _in_order(futures: list, completed: Iterable, result: Callable) -> Iterable[dict]:
    position = {id(f): i for i, f in enumerate(futures)}
    ready: dict[int, dict] = {}
    next_index = 0
    for future in completed:
        ready[position[id(future)]] = result(future)
        while next_index in ready:
            yield ready.pop(next_index)
            next_index += 1


def archive_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ARCHIVE_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()
