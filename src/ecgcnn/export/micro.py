"""Full-INT8 ``.tflite`` → C/C++ sources for TensorFlow Lite for Microcontrollers (TFLM).

:func:`export_micro` writes three files into ``output_dir``:

* ``<name>_model.h`` - C and C++ compatible declarations: the model array and its length, the input/output scale
  and zero point, input length, classes, the label table and class names, ``<NAME>_MODEL_OP_COUNT`` (the ``N`` of
  ``tflite::MicroMutableOpResolver<N>``) and, for C++, ``<name>_model_register_ops(resolver)`` with the
  ``AddXxx()`` call of every builtin operator the graph uses (a template: the header does not include TFLM);
* ``<name>_model.cc`` - the flatbuffer as ``alignas(16) const unsigned char`` (TFLM reads it in place, and its
  tensors need 16-byte alignment), the tables;
* ``README.md`` - how to wire it into a TFLM application, preprocessing included.

The operators are read from the flatbuffer itself (every operator of every subgraph, through the schema module shipped
by ``ai_edge_litert``), not from a list kept by hand.

Only full-integer INT8 models (``ecgcnn export tflite ... --quantize int8-full``: int8 input and output) are
accepted; anything else raises :class:`~ecgcnn.core.errors.EcgcnnError`. Float (FP32/FP16) and dynamic-range models are
refused rather than exported with a warning: TFLM's float kernels are slow reference code, it has no hybrid
(dynamic-range) kernels and no FP16 weights, and a microcontroller build is where int8 pays.

Tensor arena: TFLM needs a caller-provided arena whose size depends on the TFLM version and the target's pointer size.
``arena_size`` (bytes) is written into the header as ``<NAME>_MODEL_TENSOR_ARENA_SIZE`` when given;
:func:`measure_arena_bytes` finds the smallest arena the TFLM Python interpreter (PyPI ``tflite-micro``, optional
and not a dependency: it is published only as nightly builds) can allocate the model in, and returns ``None``
when that package is not installed.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from string import Template

from ..core.errors import EcgcnnError, ModelFileError
from ..core.fileio import file_sha256, write_text_atomic
from ..runtimes.flatbuffer import has_tflite_identifier, read_tflite_metadata, schema
from ..runtimes.metadata import run_name
from ..runtimes.pretrained import resolve_model_path
from ..runtimes.tflite import quiet_native_stderr

BYTES_PER_LINE = 12
_ARENA_FLOOR = 1024
# TFLM MicroMutableOpResolver method names that plain CamelCase of the schema name does not give.
_ADD_METHOD_EXCEPTIONS = {
    "BATCH_MATMUL": "AddBatchMatMul",
    "CUMSUM": "AddCumSum",
    "PADV2": "AddPadV2",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "SELECT_V2": "AddSelectV2",
}


# ------------------------------------------------------------------------------------------------------ operators

def add_method(op_name: str) -> str:
    """TFLM's ``MicroMutableOpResolver`` method for a builtin: ``CONV_2D`` → ``AddConv2D``, ``MEAN`` → ``AddMean``."""
    if op_name in _ADD_METHOD_EXCEPTIONS:
        return _ADD_METHOD_EXCEPTIONS[op_name]
    parts = []
    for part in op_name.split("_"):
        if re.fullmatch(r"\d+D", part):
            parts.append(part)  # 2D stays 2D
        elif part == "ND":
            parts.append("Nd")
        else:
            parts.append(part[:1] + part[1:].lower())
    return "Add" + "".join(parts)


def _builtin_names(schema_module) -> dict[int, str]:
    return {value: name for name, value in vars(schema_module.BuiltinOperator).items()
            if not name.startswith("_") and isinstance(value, int)}


def model_ops(data: bytes) -> tuple[dict[str, int], list[str]]:
    """Builtin operators the graph executes (name → node count, every subgraph) and its custom op names."""
    schema_module = schema()
    names = _builtin_names(schema_module)
    custom_code = schema_module.BuiltinOperator.CUSTOM
    model = schema_module.Model.GetRootAs(data, 0)
    builtins: dict[str, int] = {}
    customs: list[str] = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            code = model.OperatorCodes(subgraph.Operators(o).OpcodeIndex())
            # Schema v3a: the real code is the larger of the deprecated int8 field and the int32 one.
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == custom_code:
                name = (code.CustomCode() or b"?").decode("utf-8", "replace")
                if name not in customs:
                    customs.append(name)
            else:
                name = names.get(builtin, f"BUILTIN_{builtin}")
                builtins[name] = builtins.get(name, 0) + 1
    return dict(sorted(builtins.items())), customs


def _io_tensors(data: bytes):
    """(input tensor, output tensor) of subgraph 0, as flatbuffer objects."""
    schema_module = schema()
    model = schema_module.Model.GetRootAs(data, 0)
    subgraph = model.Subgraphs(0)
    if subgraph.InputsLength() != 1 or subgraph.OutputsLength() != 1:
        return None, None
    return subgraph.Tensors(subgraph.Inputs(0)), subgraph.Tensors(subgraph.Outputs(0))


def _quantization(tensor) -> tuple[float, int] | None:
    q = tensor.Quantization()
    if q is None or q.ScaleLength() != 1 or q.ZeroPointLength() != 1:
        return None
    return float(q.Scale(0)), int(q.ZeroPoint(0))


# -------------------------------------------------------------------------------------------------- tensor arena

def measure_arena_bytes(tflite_path: str | os.PathLike, granularity: int = 16) -> int | None:
    """Smallest tensor arena (bytes, a multiple of ``granularity``) in which TFLM allocates the model, found by
    bisection with the ``tflite-micro`` Python interpreter; ``None`` when that package is not installed.

    The figure is for that TFLM build on this host (64-bit pointers); a 32-bit microcontroller needs a little less.
    """
    try:
        from tflite_micro import runtime  # noqa: PLC0415 - optional, never a dependency
    except ImportError:
        return None
    data = Path(tflite_path).read_bytes()

    def fits(size: int) -> bool:
        try:
            with quiet_native_stderr():
                runtime.Interpreter.from_bytes(data, arena_size=size)
            return True
        except (RuntimeError, ValueError):
            return False

    high = max(2 * _ARENA_FLOOR, len(data))
    while not fits(high):
        high *= 2
        if high > 1 << 30:
            return None
    # Probes stay above 1 KB: TFLM crashes (rather than failing) when the arena cannot hold even its allocator's
    # own few hundred bytes; every model needs more than that anyway.
    low = _ARENA_FLOOR
    while high - low > granularity:
        middle = (low + high) // 2 // granularity * granularity
        if middle <= low:
            break
        if fits(middle):
            high = middle
        else:
            low = middle
    return high


# ---------------------------------------------------------------------------------------------------------- export

def _identifier(text: str) -> str:
    ident = re.sub(r"[^0-9a-zA-Z_]", "_", text).strip("_").lower() or "model"
    return ident if not ident[0].isdigit() else f"m_{ident}"


def _c_string(text: str) -> str:
    """A C string literal; non-ASCII bytes (UTF-8) as hex escapes, each closing its literal piece."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '\\"':
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f'\\x{byte:02x}" "')
    return '"' + "".join(out) + '"'


def _float_literal(value: float) -> str:
    return f"{value:.9g}f" if any(c in f"{value:.9g}" for c in ".e") else f"{value:.9g}.0f"


def _check_int8(path: Path, data: bytes, metadata: dict) -> tuple[tuple[float, int], tuple[float, int]]:
    schema_module = schema()
    inp, out = _io_tensors(data)
    if inp is None and metadata.get("tflite_second_input"):
        raise EcgcnnError(f"{path}: TFLite Micro export needs a model with one input, and this file also takes the "
                          f"beat's first difference ('{metadata['tflite_second_input']['name']}'; written where the "
                          f"one-input full-INT8 file was refused)")
    if inp is None:
        raise EcgcnnError(f"{path}: TFLite Micro export needs a model with one input and one output tensor")
    int8 = schema_module.TensorType.INT8
    mode = metadata.get("quantize", "?")
    if inp.Type() != int8 or out.Type() != int8:
        raise EcgcnnError(f"{path}: TFLite Micro export needs a full-integer INT8 model (int8 input and output), "
                          f"but this one is '{mode}' with non-int8 I/O; export it with "
                          f"'ecgcnn export tflite MODEL --quantize int8-full'")
    qin, qout = _quantization(inp), _quantization(out)
    if qin is None or qout is None:
        raise EcgcnnError(f"{path}: the int8 input or output tensor has no per-tensor scale and zero point")
    return qin, qout


def _header(prefix: str, guard: str, info: dict) -> str:
    up = prefix.upper()
    ops = info["ops"]
    customs = info["customs"]
    lines = [
        f"// {prefix}_model.h - generated by ecgcnn (ecgcnn.export.micro) from {info['source']}.",
        f"// sha256 of the flatbuffer: {info['sha256']}. Do not edit; re-export instead.",
        f"// Model: {info['model']} ({info['architecture']}), full-integer INT8. See README.md beside this file.",
        "//",
        f"// Input:  int8 [1, {info['input_shape_text']}] = one beat of {info['input_length']} samples, z-normalised",
        "//         (minus its mean, divided by its sample standard deviation, ddof=1), then",
        f"//         q = clamp(round(x / {up}_MODEL_INPUT_SCALE) + {up}_MODEL_INPUT_ZERO_POINT, -128, 127).",
        f"// Output: int8 [1, {info['num_classes']}] logits; logit = (q - {up}_MODEL_OUTPUT_ZERO_POINT) * "
        f"{up}_MODEL_OUTPUT_SCALE.",
        f"//         The predicted class is the argmax; its dataset label is {prefix}_model_labels[argmax].",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        f"#define {up}_MODEL_INPUT_LENGTH {info['input_length']}",
        f"#define {up}_MODEL_NUM_CLASSES {info['num_classes']}",
        f"#define {up}_MODEL_INPUT_SCALE {_float_literal(info['input_scale'])}",
        f"#define {up}_MODEL_INPUT_ZERO_POINT ({info['input_zero_point']})",
        f"#define {up}_MODEL_OUTPUT_SCALE {_float_literal(info['output_scale'])}",
        f"#define {up}_MODEL_OUTPUT_ZERO_POINT ({info['output_zero_point']})",
        f"// The N of tflite::MicroMutableOpResolver<N>: {len(ops)} builtin + {len(customs)} custom operator(s).",
        f"#define {up}_MODEL_OP_COUNT {len(ops) + len(customs)}",
    ]
    if info["arena_size"] is not None:
        lines += [f"// Tensor arena in bytes ({info['arena_note']}).",
                  f"#define {up}_MODEL_TENSOR_ARENA_SIZE {info['arena_size']}"]
    lines += [
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        "// The .tflite flatbuffer, 16-byte aligned (TFLM uses it in place).",
        f"extern const unsigned char {prefix}_model_data[];",
        f"extern const unsigned int {prefix}_model_data_len;",
        "// Dataset label (ECG5000: 1..5; a string where the dataset's labels are text) and name of each class.",
        f"extern {_label_type(info)} {prefix}_model_labels[{up}_MODEL_NUM_CLASSES];",
        f"extern const char* const {prefix}_model_class_names[{up}_MODEL_NUM_CLASSES];",
        f"// Builtin operators the graph uses (schema names), {len(ops)} of them.",
        f"extern const char* const {prefix}_model_op_names[];",
        "",
        "#ifdef __cplusplus",
        '}  // extern "C"',
        "",
        "// Registers every operator the model uses; returns 0 (kTfLiteOk) on success. Use with",
        f"//   tflite::MicroMutableOpResolver<{up}_MODEL_OP_COUNT> resolver;",
        f"//   if ({prefix}_model_register_ops(resolver) != 0) {{ /* resolver too small */ }}",
        "template <typename Resolver>",
        f"inline int {prefix}_model_register_ops(Resolver& resolver) {{",
    ]
    for name in ops:
        lines.append(f"  if (resolver.{add_method(name)}() != 0) return 1;  // {name} ({ops[name]} node(s))")
    for name in customs:
        lines.append(f"  // custom operator {_c_string(name)}: register it with resolver.AddCustom(name, registration)")
    lines += [
        "  return 0;",
        "}",
        "#endif  // __cplusplus",
        "",
        f"#endif  // {guard}",
        "",
    ]
    return "\n".join(lines)


def _label_type(info: dict) -> str:
    return "const char* const" if any(isinstance(v, str) for v in info["labels"]) else "const int"


def _source(prefix: str, data: bytes, info: dict) -> str:
    lines = [
        f"// {prefix}_model.cc - generated by ecgcnn (ecgcnn.export.micro) from {info['source']}. Do not edit.",
        f'#include "{prefix}_model.h"',
        "",
        f"{_label_type(info)} {prefix}_model_labels[{prefix.upper()}_MODEL_NUM_CLASSES] = "
        f"{{{', '.join(_c_string(v) if isinstance(v, str) else str(v) for v in info['labels'])}}};",
        f"const char* const {prefix}_model_class_names[{prefix.upper()}_MODEL_NUM_CLASSES] = "
        f"{{{', '.join(_c_string(n) for n in info['class_names'])}}};",
        f"const char* const {prefix}_model_op_names[] = {{{', '.join(_c_string(n) for n in info['ops'])}}};",
        "",
        f"alignas(16) const unsigned char {prefix}_model_data[] = {{",
    ]
    for start in range(0, len(data), BYTES_PER_LINE):
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in data[start:start + BYTES_PER_LINE]) + ",")
    lines += ["};", f"const unsigned int {prefix}_model_data_len = {len(data)};", ""]
    return "\n".join(lines)


def _readme(prefix: str, info: dict) -> str:
    up = prefix.upper()
    label_text = ", ".join(f"{label} = {name}" for label, name in zip(info["labels"], info["class_names"], strict=True))
    ops_table = "\n".join(f"| `{name}` | {count} | `{add_method(name)}()` |" for name, count in info["ops"].items())
    customs = ("\n\nCustom operators (register each with `AddCustom`): "
               + ", ".join(f"`{c}`" for c in info["customs"])) if info["customs"] else ""
    arena = (f"`{up}_MODEL_TENSOR_ARENA_SIZE` = {info['arena_size']} bytes ({info['arena_note']}). Keep some "
             f"headroom (for example 10 %) for another TFLM version or target."
             if info["arena_size"] is not None else
             "No size is written into the header: it depends on the TFLM version and target. Measure it once: build "
             "with `tflite::RecordingMicroInterpreter` and print `GetMicroAllocator().PrintAllocations()`, or, on a "
             "PC, `pip install --pre tflite-micro` and call `ecgcnn.export.micro.measure_arena_bytes(path)` "
             "(then re-export with `ecgcnn export micro ... --arena-size BYTES`). Until then the example below "
             "does not compile: it asks for `ARENA_SIZE`.")
    arena_line = (f"alignas(16) static uint8_t tensor_arena[{up}_MODEL_TENSOR_ARENA_SIZE];  // see \"Tensor arena\""
                  if info["arena_size"] is not None else
                  "#ifndef ARENA_SIZE\n#error \"define ARENA_SIZE: measure the tensor arena (see 'Tensor arena')\"\n"
                  "#endif\nalignas(16) static uint8_t tensor_arena[ARENA_SIZE];")
    page = resources.files(__package__).joinpath("templates", "micro_README.md").read_text(encoding="utf-8")
    fields = {k: v for k, v in info.items() if isinstance(v, (str, int, float))}
    return Template(page).substitute(fields, prefix=prefix, up=up, label_text=label_text, ops_table=ops_table,
                                     customs=customs, arena=arena, arena_line=arena_line,
                                     bytes_text=f"{info['bytes']:,}")


def export_micro(tflite_path: str | os.PathLike, output_dir: str | os.PathLike, name: str | None = None,
                 arena_size: int | None = None, arena_note: str = "given at export") -> list[Path]:
    """Write ``<name>_model.h``, ``<name>_model.cc`` and ``README.md`` for TFLM into ``output_dir``.

    ``tflite_path``: a full-INT8 ``.tflite`` written by ``ecgcnn export tflite --quantize int8-full`` (or
    ``pretrained:NAME.tflite``). ``name``: the C prefix (default: the run name, e.g. ``edge``). Returns the paths.
    """
    path = resolve_model_path(tflite_path)
    if path.suffix.lower() != ".tflite":
        raise EcgcnnError(f"{path}: TFLite Micro export needs a .tflite model (full-integer INT8), "
                          f"not a {path.suffix or 'suffix-less'} file")
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    data = path.read_bytes()
    if not has_tflite_identifier(data):
        raise ModelFileError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")
    metadata = read_tflite_metadata(path, data)
    try:
        qin, qout = _check_int8(path, data, metadata)
        ops, customs = model_ops(data)
    except EcgcnnError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer raises struct/index errors
        raise ModelFileError(f"{path}: the flatbuffer is unreadable ({type(exc).__name__})") from None
    if arena_size is not None and arena_size < 1:
        raise EcgcnnError(f"arena_size must be a positive number of bytes, got {arena_size}")
    prefix = _identifier(name or run_name(metadata))
    shape = metadata.get("tflite_input_shape") or [1, metadata["input_length"], 1]
    info = {
        "source": path.name, "sha256": file_sha256(path), "bytes": len(data),
        "model": run_name(metadata), "architecture": metadata["model"],
        "input_length": int(metadata["input_length"]), "num_classes": len(metadata["labels"]),
        "input_shape_text": ", ".join(str(int(d)) for d in shape[1:]),
        "labels": [label if isinstance(label, str) else int(label) for label in metadata["labels"]],
        "class_names": list(metadata.get("class_names") or [str(label) for label in metadata["labels"]]),
        "input_scale": qin[0], "input_zero_point": qin[1], "output_scale": qout[0], "output_zero_point": qout[1],
        "ops": ops, "customs": customs, "op_count": len(ops) + len(customs),
        "arena_size": arena_size, "arena_note": arena_note,
    }
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise EcgcnnError(f"{output_dir}: exists and is not a directory")
    header = output_dir / f"{prefix}_model.h"
    source = output_dir / f"{prefix}_model.cc"
    readme = output_dir / "README.md"
    write_text_atomic(header, _header(prefix, f"ECGCNN_{prefix.upper()}_MODEL_H_", info))
    write_text_atomic(source, _source(prefix, data, info))
    write_text_atomic(readme, _readme(prefix, info))
    return [header, source, readme]
