"""TFLite Micro export (ecgcnn.export.micro) of the shipped full-INT8 models: the C array is the flatbuffer byte for
byte, header and source compile as C and C++, and the operator list is what the LiteRT interpreter runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ecgcnn.core.errors import EcgcnnError
from ecgcnn.export.micro import add_method, export_micro, measure_arena_bytes, model_ops
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.pretrained import resolve_model_path

pytest.importorskip("ai_edge_litert")

MODELS = ["pretrained:edge.tflite", "pretrained:best.tflite"]


@pytest.fixture(scope="module", params=MODELS)
def exported(request, tmp_path_factory):
    path = resolve_model_path(request.param)
    directory = tmp_path_factory.mktemp("micro")
    files = export_micro(path, directory)
    return path, directory, files


def _array_bytes(source: str, symbol: str) -> bytes:
    match = re.search(rf"alignas\(16\) const unsigned char {symbol}\[\] = \{{(.*?)\}};", source, re.S)
    assert match, f"no alignas(16) array {symbol} in the source"
    return bytes(int(token, 16) for token in re.findall(r"0x([0-9a-f]{2})", match.group(1)))


def _interpreter_ops(path: Path) -> dict[str, int]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: PLC0415 - optional extra

    # Without the default XNNPACK delegate the interpreter lists the model's own nodes (no DELEGATE nodes).
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return dict(Counter(op["op_name"] for op in interpreter._get_ops_details()))


def test_files_written(exported):
    path, directory, files = exported
    prefix = path.name.split("_")[0]  # the run name: edge, best
    assert [f.name for f in files] == [f"{prefix}_model.h", f"{prefix}_model.cc", "README.md"]
    assert all(f.parent == directory and f.is_file() for f in files)
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]  # atomic writes left no temp files


def test_array_is_the_flatbuffer(exported):
    path, _, (header, source, _) = exported
    prefix = header.name[:-len("_model.h")]
    text = source.read_text()
    data = path.read_bytes()
    assert _array_bytes(text, f"{prefix}_model_data") == data
    assert f"const unsigned int {prefix}_model_data_len = {len(data)};" in text


def test_constants_match_the_model(exported):
    path, _, (header, source, _) = exported
    predictor = load_predictor(path)
    text = header.read_text()
    up = header.name[:-len("_model.h")].upper()

    def define(name):
        return re.search(rf"#define {up}_MODEL_{name} \(?([^)\s]+)\)?", text).group(1)

    (scale_in, zp_in), (scale_out, zp_out) = predictor._in["quantization"], predictor._out["quantization"]
    assert int(define("INPUT_LENGTH")) == predictor.input_length == 140
    assert int(define("NUM_CLASSES")) == 5
    assert float(define("INPUT_SCALE").rstrip("f")) == pytest.approx(scale_in, rel=1e-7)
    assert int(define("INPUT_ZERO_POINT")) == zp_in
    assert float(define("OUTPUT_SCALE").rstrip("f")) == pytest.approx(scale_out, rel=1e-7)
    assert int(define("OUTPUT_ZERO_POINT")) == zp_out
    body = source.read_text()
    assert "= {1, 2, 3, 4, 5};" in body
    for name in predictor.class_names:
        assert f'"{name}"' in body


def test_op_list_equals_the_interpreter(exported):
    path, _, (header, _, readme) = exported
    ops, customs = model_ops(path.read_bytes())
    assert ops == _interpreter_ops(path)
    assert customs == []
    text = header.read_text()
    up = header.name[:-len("_model.h")].upper()
    assert f"#define {up}_MODEL_OP_COUNT {len(ops)}" in text
    registered = re.findall(r"resolver\.(Add\w+)\(\)", text)
    assert registered == [add_method(name) for name in ops]
    assert len(set(registered)) == len(ops)
    for call in registered:
        assert f"`{call}()`" in readme.read_text()


def test_add_method_names():
    assert add_method("CONV_2D") == "AddConv2D"
    assert add_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert add_method("MAX_POOL_2D") == "AddMaxPool2D"
    assert add_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert add_method("EXPAND_DIMS") == "AddExpandDims"
    assert add_method("BATCH_TO_SPACE_ND") == "AddBatchToSpaceNd"
    assert add_method("RELU6") == "AddRelu6"
    assert add_method("UNIDIRECTIONAL_SEQUENCE_LSTM") == "AddUnidirectionalSequenceLSTM"


def _compiler(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"no {name} on this machine")
    return exe


def test_compiles_as_cpp17_and_c(exported, tmp_path):
    gcc, gxx = _compiler("gcc"), _compiler("g++")
    _, directory, (header, source, _) = exported
    prefix = header.name[:-len("_model.h")]
    up = prefix.upper()
    flags = ["-Wall", "-Wextra", "-Werror", "-I", str(directory)]
    # The source as C++17, with both compilers' drivers.
    subprocess.run([gxx, "-std=c++17", "-c", str(source), "-o", str(tmp_path / "model.o"), *flags], check=True,
                   capture_output=True, timeout=300)
    subprocess.run([gcc, "-c", str(source), "-o", str(tmp_path / "model_gcc.o"), *flags], check=True,
                   capture_output=True, timeout=300)
    # The header from C, and the registration template instantiated with a stand-in resolver from C++.
    c_user = tmp_path / "user.c"
    c_user.write_text(f'#include "{header.name}"\n'
                      f"int first_label(void) {{ return {prefix}_model_labels[0] + {up}_MODEL_INPUT_LENGTH"
                      f" + {up}_MODEL_INPUT_ZERO_POINT + (int)({up}_MODEL_INPUT_SCALE > 0); }}\n"
                      f"unsigned int size(void) {{ return {prefix}_model_data_len + {up}_MODEL_OP_COUNT; }}\n")
    subprocess.run([gcc, "-std=c11", "-c", str(c_user), "-o", str(tmp_path / "user.o"), *flags], check=True,
                   capture_output=True, timeout=120)
    calls = re.findall(r"resolver\.(Add\w+)\(\)", header.read_text())
    methods = "".join(f"  int {call}() {{ return count++ < N ? 0 : 1; }}\n" for call in calls)
    cpp_user = tmp_path / "user.cc"
    cpp_user.write_text(f'#include "{header.name}"\n'
                        f"template <int N> struct FakeResolver {{\n  int count = 0;\n{methods}}};\n"
                        f"int ok() {{ FakeResolver<{up}_MODEL_OP_COUNT> r; return {prefix}_model_register_ops(r); }}\n"
                        f"int too_small() {{ FakeResolver<{up}_MODEL_OP_COUNT - 1> r; "
                        f"return {prefix}_model_register_ops(r); }}\n"
                        "int main() { return ok() == 0 && too_small() == 1 ? 0 : 1; }\n")
    exe = tmp_path / "user"
    subprocess.run([gxx, "-std=c++17", str(cpp_user), str(tmp_path / "model.o"), "-o", str(exe), *flags],
                   check=True, capture_output=True, timeout=300)
    assert subprocess.run([str(exe)], timeout=30).returncode == 0
    # The array is 16-byte aligned in the object file and its symbols have C linkage.
    nm = shutil.which("nm")
    if nm:
        symbols = subprocess.run([nm, str(tmp_path / "model.o")], capture_output=True, text=True).stdout
        address = int(re.search(rf"^([0-9a-f]+) R {prefix}_model_data$", symbols, re.M).group(1), 16)
        assert address % 16 == 0


def test_arena_size_is_written_when_given(tmp_path):
    header, _, readme = export_micro("pretrained:edge.tflite", tmp_path, name="ecg beat", arena_size=20480,
                                     arena_note="measured")
    assert header.name == "ecg_beat_model.h"
    assert "#define ECG_BEAT_MODEL_TENSOR_ARENA_SIZE 20480" in header.read_text()
    assert "20480 bytes (measured)" in readme.read_text()


def test_arena_measurement_when_tflite_micro_is_installed():
    pytest.importorskip("tflite_micro", reason="PyPI tflite-micro (nightly only) is not a dependency")
    size = measure_arena_bytes(resolve_model_path("pretrained:edge.tflite"))
    assert size is not None and 1024 < size < 1 << 20 and size % 16 == 0


# ------------------------------------------------------------------------------------------------------- refusals

def _float_io_copy(path: Path, target: Path) -> Path:
    """The int8 model with its input tensor retyped to float32: what an fp32/dynamic-range model looks like."""
    import flatbuffers  # noqa: PLC0415
    from ai_edge_litert import schema_py_generated as schema  # noqa: PLC0415

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    subgraph = model.subgraphs[0]
    subgraph.tensors[subgraph.inputs[0]].type = schema.TensorType.FLOAT32
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target.write_bytes(bytes(builder.Output()))
    return target


def test_float_model_is_refused(tmp_path):
    source = _float_io_copy(resolve_model_path("pretrained:edge.tflite"), tmp_path / "edge_fp32.tflite")
    with pytest.raises(EcgcnnError, match=r"needs a full-integer INT8 model .*--quantize int8-full") as info:
        export_micro(source, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", ["pretrained:edge.onnx", "pretrained:edge"])
def test_non_tflite_is_refused(spec, tmp_path):
    with pytest.raises(EcgcnnError, match=r"needs a \.tflite model"):
        export_micro(spec, tmp_path)


def test_garbage_tflite_is_refused(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(np.arange(64, dtype=np.uint8).tobytes())
    with pytest.raises(EcgcnnError, match="not a TFLite model"):
        export_micro(bad, tmp_path / "out")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(EcgcnnError, match="not found"):
        export_micro(tmp_path / "nope.tflite", tmp_path / "out")


@pytest.mark.parametrize("arena", [None, 20480])
def test_readme_arena_line_compiles_against_the_header(tmp_path, arena):
    """The README's example declares the tensor arena with a name the generated header defines (given a size) or
    refuses to compile until the user defines it (no size): compiled here with the real header."""
    gxx = _compiler("g++")
    header, _, readme = export_micro("pretrained:edge.tflite", tmp_path, arena_size=arena)
    lines = readme.read_text().split("```cpp\n", 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if "ARENA_SIZE" in line or "alignas" in line)
    last = next(i for i, line in enumerate(lines) if "tensor_arena[" in line)
    unit = tmp_path / "arena.cc"
    unit.write_text(f'#include <cstdint>\n#include "{header.name}"\n' + "\n".join(lines[first:last + 1])
                    + "\nint size() { return sizeof(tensor_arena); }\n")
    done = subprocess.run([gxx, "-std=c++17", "-c", str(unit), "-o", str(tmp_path / "a.o"), "-I", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    if arena is None:
        assert done.returncode != 0 and "define ARENA_SIZE" in done.stderr
        defined = subprocess.run([gxx, "-std=c++17", "-DARENA_SIZE=16384", "-c", str(unit), "-o",
                                  str(tmp_path / "b.o"), "-I", str(tmp_path)], capture_output=True, timeout=120)
        assert defined.returncode == 0, defined.stderr
    else:
        assert done.returncode == 0, done.stderr


def test_readme_preprocessing_quantises_a_beat_as_the_model_expects(tmp_path, dataset):
    """The README's preprocessing lines, compiled and run on official test beats, give the int8 input the model was
    calibrated for: z-normalised with the sample standard deviation (ddof = 1, as in training), computed here with
    NumPy, then quantised with the input tensor's scale and zero point read from the model file."""
    gxx = _compiler("g++")
    header, _, readme = export_micro("pretrained:edge.tflite", tmp_path)
    code = readme.read_text().split("```cpp\n", 1)[1]
    block = code[code.index("  float mean = 0, var = 0;"):code.index("  if (interpreter.Invoke()")]
    block = block.replace("int8_t* in = interpreter.input(0)->data.int8;", "int8_t* in = out;")
    unit = tmp_path / "pre.cc"
    unit.write_text('#include <cmath>\n#include <cstdint>\n#include <cstdio>\n#include "' + header.name + '"\n'
                    "static void preprocess(const float* beat, int8_t* out) {\n" + block + "}\n"
                    "int main() {\n  float beat[4096]; int8_t q[4096]; int n = 0;\n"
                    "  while (scanf(\"%f\", &beat[n % 140]) == 1) {\n    if (++n % 140 == 0) {\n"
                    "      preprocess(beat, q);\n      for (int i = 0; i < 140; ++i) printf(\"%d \", q[i]);\n"
                    "      printf(\"\\n\");\n    }\n  }\n}\n")
    binary = tmp_path / "pre"
    subprocess.run([gxx, "-std=c++17", "-O1", str(unit), "-o", str(binary), "-I", str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    beats = dataset.x_test[:200].astype(np.float32)
    text = "\n".join(" ".join(repr(float(v)) for v in row) for row in beats)
    done = subprocess.run([str(binary)], input=text, capture_output=True, text=True, check=True, timeout=60)
    from_c = np.array([[int(v) for v in line.split()] for line in done.stdout.splitlines()])

    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 - optional extra

    scale, zero_point = Interpreter(model_path=str(resolve_model_path("pretrained:edge.tflite"))
                                    ).get_input_details()[0]["quantization"]
    x = beats.astype(np.float64)
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, ddof=1, keepdims=True)
    expected = np.clip(np.round(z / scale) + zero_point, -128, 127)
    assert from_c.shape == expected.shape
    assert np.abs(from_c - expected).max() <= 1  # float32 in C, float64 here: a rounding tie may go either way
    assert np.mean(from_c == expected) >= 0.995


@pytest.mark.parametrize("arena", [0, -1])
def test_an_arena_that_is_not_positive_is_refused_before_anything_is_written(tmp_path, arena):
    out = tmp_path / "bundle"
    with pytest.raises(EcgcnnError) as info:
        export_micro("pretrained:edge.tflite", out, arena_size=arena)
    assert str(info.value) == f"arena_size must be a positive number of bytes, got {arena}"
    assert not out.exists()
    header, _, _ = export_micro("pretrained:edge.tflite", out, arena_size=1)  # the smallest size is a size
    assert "_MODEL_TENSOR_ARENA_SIZE 1\n" in header.read_text()


def test_the_readme_pairs_each_label_with_its_class_name(tmp_path):
    """Labels and names as the runtime reads them from the file's own metadata (not the exporter's reading)."""
    predictor = load_predictor("pretrained:edge.tflite")
    _, _, readme = export_micro("pretrained:edge.tflite", tmp_path)
    pairs = ", ".join(f"{label} = {name}" for label, name in zip(predictor.labels, predictor.class_names, strict=True))
    assert predictor.labels[0] != predictor.class_names[0]
    assert pairs in readme.read_text()
