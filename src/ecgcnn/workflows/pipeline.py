"""``ecgcnn pipeline``: train → export every format → evaluate every file → benchmark → ``results/``.

Each stage that fails is recorded with its model/format and the pipeline goes on with the rest; the command then
exits non-zero. Test beats are used only by the evaluation stage, to score finished files.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..bench.run import BATCH_SIZES, RUNS, WARMUP, bench
from ..core.errors import EcgcnnError
from ..core.formats import FORMAT_NAMES, TFLITE_FORMATS
from ..core.layout import run_paths, seed_root
from ..data.dataset import DataSpec, load_dataset
from ..evaluation.metrics import evaluate_predictor
from ..export.chain import export_chain
from ..reporting.results import write_results
from ..runtimes import load_predictor
from ..training import train
from ..training.config import run_config
from .held_out import held_out_check

DEFAULT_MODELS = ("base-cnn", "vgg", "inception", "tcn")  # the seed's four CNNs


@dataclass
class PipelineConfig:
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    epochs: int | None = None  # None: 50 for a model, the recipe's own for a recipe
    output_dir: str = "outputs"
    results_dir: str = "outputs/results"
    data: DataSpec = field(default_factory=DataSpec)
    skip_train: bool = False
    threads: int = 1
    bench_runs: int = RUNS
    bench_warmup: int = WARMUP
    bench_seconds: float | None = 3.0
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    readme: str | None = None  # a Markdown file whose section is replaced (docs/results.md for the committed run)
    readme_section: str = "results"  # README part between <!-- SECTION:start --> and <!-- SECTION:end -->


@dataclass
class Failure:
    stage: str
    model: str
    seed: int | None
    fmt: str | None
    message: str


def run_pipeline(cfg: PipelineConfig, log=print) -> int:
    started = time.perf_counter()
    failures: list[Failure] = []
    timings: dict[str, float] = {}
    evaluations: list[dict] = []
    results_dir = Path(cfg.results_dir)
    dataset = load_dataset(cfg.data)
    log(f"data: {dataset.source}")

    def stage(name: str, model: str, seed: int | None, fmt: str | None, fn):
        t0 = time.perf_counter()
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a failed stage is reported, the rest goes on
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not isinstance(exc, EcgcnnError):
                message = f"{type(exc).__name__}: {message}"
                traceback.print_exc()
            failures.append(Failure(name, model, seed, fmt, message))
            log(f"FAILED {name} {model} seed {seed} {fmt or ''}: {message}")
            return None
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0

    jobs = [(seed, model) for seed in cfg.seeds for model in cfg.models]
    for seed, model in tqdm(jobs, desc="pipeline", unit="model"):
        root = seed_root(cfg.output_dir, seed)
        paths = run_paths(root, model)
        if not (cfg.skip_train and paths["pytorch"].is_file()):
            config = run_config(model, seed, str(root), cfg.data, cfg.epochs)
            stage("train", model, seed, "pytorch", lambda config=config: train(config))
        else:
            log(f"reusing {paths['pytorch']}")
        if not paths["pytorch"].is_file():
            continue
        # calibration (int8-full), verification and the held-out twin use training beats only
        with held_out_check(paths["pytorch"], dataset, log=log) as held_out:
            export_chain(paths["pytorch"], paths["onnx"].parent, paths[TFLITE_FORMATS[0].name].parent,
                         [fmt.quantize for fmt in TFLITE_FORMATS], dataset.x_train,
                         step=lambda name, fmt, fn, model=model, seed=seed: stage(name, model, seed, fmt, fn),
                         held_out=held_out)
        for fmt in FORMAT_NAMES:
            if not paths[fmt].is_file():
                continue

            def score(fmt=fmt, paths=paths, model=model, seed=seed):
                predictor = load_predictor(paths[fmt], threads=cfg.threads)
                metrics = evaluate_predictor(predictor, dataset.x_test, dataset.index_test)
                return {"model": model, "seed": seed, "format": fmt, "file": str(paths[fmt]),
                        "size_bytes": paths[fmt].stat().st_size, **metrics}

            result = stage("evaluate", model, seed, fmt, score)
            if result is not None:
                evaluations.append(result)
                log(f"{model} seed {seed} {fmt}: accuracy {result['accuracy']:.4f} macro-F1 {result['macro_f1']:.4f}")

    # Speed does not depend on the weights: benchmark the first seed's files.
    bench_rows: list[dict] = []
    first = seed_root(cfg.output_dir, cfg.seeds[0])
    for model in cfg.models:
        files = [str(p) for fmt, p in run_paths(first, model).items() if p.is_file()]
        if files:
            rows = stage("bench", model, cfg.seeds[0], None,
                         lambda files=files: bench(files, threads=cfg.threads, batch_sizes=cfg.batch_sizes,
                                                   warmup=cfg.bench_warmup, runs=cfg.bench_runs,
                                                   data=cfg.data.as_dict(), max_seconds=cfg.bench_seconds,
                                                   log=lambda m: None))
            bench_rows.extend(rows or [])

    timings["total"] = time.perf_counter() - started
    stage("report", "all", None, None,
          lambda: write_results(results_dir, cfg, evaluations, bench_rows, failures, timings, readme=cfg.readme,
                                section=cfg.readme_section))
    log(f"pipeline finished in {timings['total'] / 60:.1f} min; results in {results_dir}/")
    if failures:
        log(f"{len(failures)} stage(s) failed:")
        for failure in failures:
            log(f"  {failure.stage} {failure.model} seed {failure.seed} {failure.fmt or ''}: {failure.message}")
        return 1
    return 0
