"""Full INT8: which graphs are converted, and which file is kept.

1. The beats' input range: the training beats' values, clipped at a percentile where a spike would coarsen the int8
   grid (``parity.input_range``); the gates still compare on the beats as they are.
2. One int8 input: the graph itself and, for Hydra, the graph with one winner per competition
   (:mod:`ecgcnn.export.competition`: at int8 resolution near-equal responses tie); the one that passes, then keeps
   more of ONNX Runtime's classes on the training beats, is kept (ties: the graph itself).
3. Only where every one-input file is refused and the graph takes the beat's first difference (Hydra): the same two
   once more with that difference as a second int8 input on its own grid (:mod:`ecgcnn.export.difference`), the beat's
   clip chosen with the difference exact, then the difference's own (``parity.difference_range``). A file that passes
   with one input keeps one (TFLite Micro takes one input).

Every candidate is converted and gated by :meth:`ecgcnn.export.converter.Conversion.build`; the log says what each
kept and why one input was refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import ExportError
from .competition import single_winner_competitions
from .converter import Conversion, ort_error
from .difference import difference_input
from .parity import difference_range, input_range, input_resolution_note, on_int8_grid, onnx_logits


def _rewritten(onnx, rewrite, source: Path, target: Path):
    """``rewrite`` (changes an ``onnx.ModelProto`` in place; a falsy result: nothing to change) applied to ``source``,
    saved as ``target`` only where it changed something; its result."""
    proto = onnx.load(str(source))
    result = rewrite(proto)
    if result:
        target.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, str(target))
    return result


def describe(built: dict) -> str:
    return (f"{'one winner each' if built['competitions'] else 'every tie counted'}"
            f"{', the difference as a second input' if built['two_inputs'] else ''}")


def choose(built: list[dict]) -> dict:
    """A passing file before a refused one, then the larger share of ONNX Runtime's classes (ties: the graph itself):
    neither way of counting ties wins everywhere (see export/competition.py)."""
    return max(built, key=lambda b: (b["problem"] is None, b["agreement"]))


def _build_all(conversion: Conversion, group: list[dict], clips: dict) -> tuple[list[dict], list[ExportError]]:
    built, refusals = [], []
    for candidate in group:
        try:
            built.append(conversion.build(candidate, clips))
        except ExportError as exc:
            refusals.append(exc)
    return built, refusals


def _with_single_winners(onnx, conversion: Conversion, source: Path, target: Path, two_inputs: bool,
                         reference: Path | None = None) -> list[dict]:
    """``source`` as a candidate and, where it has competitions, its one-winner rewrite saved as ``target``; what
    onnx2tf must reproduce is ONNX Runtime's logits of ``reference`` (default: ``source``) and of the rewrite."""
    group = [dict(source=source, competitions=0, two_inputs=two_inputs,
                  expected=onnx_logits(reference or source, conversion.verify))]
    if rewritten := _rewritten(onnx, single_winner_competitions, source, target):
        group.append(dict(source=target, competitions=rewritten, two_inputs=two_inputs,
                          expected=onnx_logits(target, conversion.verify)))
    return group


def _two_input_clips(two: Path, calibration: np.ndarray, expected: np.ndarray) -> dict:
    """The int8 ranges of a two-input graph: the beat's clip chosen with the difference exact, then the difference's
    own on the beat's int8 grid."""
    difference = np.diff(calibration, axis=1)
    beat_clip = input_range(two, calibration, expected, difference)
    on_grid = (on_int8_grid(calibration, beat_clip["low"], beat_clip["high"]) if beat_clip else
               on_int8_grid(calibration, calibration.min(), calibration.max()))
    return {"beats": beat_clip, "difference": difference_range(two, on_grid, difference, expected)}


def convert_like(onnx, conversion: Conversion, raw: Path, folded: Path, like: dict) -> dict:
    """The graph ``raw`` (``folded``: its constant-folded copy) converted the way the file ``like`` was (the same
    tie rule, the same inputs), its inputs' ranges chosen on ``conversion``'s own calibration beats, and gated by
    :meth:`Conversion.build`; as that returns it."""
    tmp, calibration = conversion.tmp, conversion.calibration
    try:
        fitted = onnx_logits(raw, calibration)
        if like["two_inputs"]:
            source = tmp / "two" / folded.name
            _rewritten(onnx, difference_input, folded, source)
            clips = _two_input_clips(source, calibration, fitted)
        else:
            source, clips = folded, {"beats": input_range(raw, calibration, fitted)}
        group = _with_single_winners(onnx, conversion, source, tmp / "single" / folded.name, like["two_inputs"],
                                     reference=None if like["two_inputs"] else raw)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise ort_error(conversion.onnx_path, "load the model", exc) from None
    same = [c for c in group if bool(c["competitions"]) == bool(like["competitions"])]
    if not same:
        raise ExportError(f"{conversion.onnx_path}: has no competitions to convert with {describe(like)}")
    return conversion.build(same[0], clips)


def export_full_int8(onnx, conversion: Conversion, raw: Path, folded: Path, log=print) -> dict:
    """The kept full-INT8 candidate of the graph ``raw`` (``folded``: its constant-folded copy, which is converted),
    as :meth:`Conversion.build` returns it; its ``problem`` is None or says why even the kept file is refused (with
    what the int8 inputs alone already change)."""
    tmp, calibration, expected = conversion.tmp, conversion.calibration, conversion.expected
    try:
        candidates = _with_single_winners(onnx, conversion, folded, tmp / "single" / folded.name, two_inputs=False,
                                          reference=raw)
        clip = input_range(raw, calibration, expected)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise ort_error(conversion.onnx_path, "load the model", exc) from None
    if clip:
        log(f"full INT8 input calibrated on the training beats' values clipped at the {clip['percentile']:g} and "
            f"{100 - clip['percentile']:g} percentiles ({clip['low']:.3g} .. {clip['high']:.3g}): ONNX Runtime "
            f"keeps its class on {100 * clip['kept']:.1f} % of them at that int8 grid, {100 * clip['full']:.1f} % "
            f"at the full range's")
    built, refusals = _build_all(conversion, candidates, {"beats": clip})
    if built and len(candidates) > 1:
        log("full INT8, Hydra's competitions: " + "; ".join(
            f"{describe(b)}: ONNX Runtime's class on {100 * b['agreement']:.1f} % of the training beats"
            for b in built) + f" -> kept {describe(choose(built))}")
    two = tmp / "two" / folded.name
    if not any(b["problem"] is None for b in built) and _rewritten(onnx, difference_input, folded, two):
        try:
            clips = _two_input_clips(two, calibration, expected)
            group = _with_single_winners(onnx, conversion, two, tmp / "two-single" / folded.name, two_inputs=True)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise ort_error(conversion.onnx_path, "run the two-input graph", exc) from None
        more, more_refusals = _build_all(conversion, group, clips)
        if more:
            why = f" ({choose(built)['problem']})" if built else ""
            log(f"full INT8 refused with one int8 input{why}; the beat's first difference as a second int8 input: "
                + "; ".join(f"{describe(b)}: ONNX Runtime's class on {100 * b['agreement']:.1f} % of the "
                            f"training beats" for b in more) + f" -> best {describe(choose(more))}")
        built, refusals = built + more, refusals + more_refusals
    if not built:
        raise refusals[0]
    kept = choose(built)
    if kept["problem"]:
        kept = dict(kept, problem=kept["problem"] + input_resolution_note(
            kept["source"], conversion.gate_beats, expected, kept["info"]["quantization"]))
    return kept
