# ecgcnn image: Python 3.11 (the interpreter constraints.txt is locked for) with the project installed from that
# lock file and the extras of the README Quickstart's main job (train,onnx,tflite,serve,annotate,cluster; the test-only 'dev' extra is left out).
# Used by docker-compose.yml (GPU) and docker-compose.cpu.yml (CPU only); see README.md (section "Docker").
#
# GPU or CPU is chosen by one build argument, TORCH_INDEX_URL:
#   ""  (default)                           torch==2.13.0 from PyPI. On Linux x86_64 that wheel IS the CUDA build
#                                           (CUDA 13.0): the CUDA runtime, cuBLAS, cuDNN and NCCL arrive as pip
#                                           packages whose versions torch's own metadata pins exactly. The host needs
#                                           only an NVIDIA driver new enough for CUDA 13.0 (>= 580); the NVIDIA
#                                           Container Toolkit mounts it into the container at run time.
#   "https://download.pytorch.org/whl/cpu"  torch==2.13.0+cpu, CPU only and several GB smaller
#                                           (docker-compose.cpu.yml). "==2.13.0" in constraints.txt accepts the
#                                           "+cpu" local version, and pip prefers it over the plain one.
#   Another CUDA flavour of the same release, where PyTorch publishes it (for older drivers), works the same way,
#   e.g. https://download.pytorch.org/whl/cu126.
#
# Why a python:3.11 base for both and not nvidia/cuda or pytorch/pytorch: the torch wheel already carries its CUDA
# libraries, so a CUDA base image would only add a second, possibly different, copy of them (GBs); pytorch/pytorch
# ships its own torch and its own Python, whose versions would have to match the lock file by luck; and the Ubuntu
# releases behind nvidia/cuda ship Python 3.10 or 3.12, not 3.11. With one base the GPU and CPU images differ only
# in the torch wheel. PYTHON_IMAGE is an argument so that it can be pinned by digest or taken from a mirror.
ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm

# ---------------------------------------------------------------------------------------------------------------------
# builder: resolves and installs everything into /opt/venv; only that venv reaches the final image.
FROM ${PYTHON_IMAGE} AS builder

ARG TORCH_INDEX_URL=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /build

# Same two steps as the Makefile's setup: pip itself from the lock file, then the project with the lock file.
COPY constraints.txt ./
RUN python -m pip install --no-cache-dir -c constraints.txt pip

COPY pyproject.toml README.md ./
COPY src/ src/

# Non-editable install: the image must work without the source mounted (docker run ... ecgcnn train). The extra
# index, when given, is only another source of wheels: every package listed in constraints.txt still gets its pinned
# version. The checks after the install fail the build if the dependency set is inconsistent or the torch flavour is
# not the one asked for (a CPU index must give a CPU build, anything else a CUDA build).
RUN set -eu; \
    set --; \
    if [ -n "$TORCH_INDEX_URL" ]; then set -- --extra-index-url "$TORCH_INDEX_URL"; fi; \
    python -m pip install --no-cache-dir -c constraints.txt "$@" ".[train,onnx,tflite,serve,annotate,cluster]"; \
    python -m pip check; \
    python -c 'import os, torch; cpu = os.environ.get("TORCH_INDEX_URL", "").rstrip("/").endswith("/cpu"); assert (torch.version.cuda is None) == cpu, ("unexpected torch flavour", torch.__version__, torch.version.cuda); print("torch", torch.__version__, "CUDA", torch.version.cuda)'; \
    ecgcnn --version

# ---------------------------------------------------------------------------------------------------------------------
# runtime: the same base, the venv, a non-root user. No apt packages are needed: every wheel in the lock file bundles
# its native libraries (manylinux) and the slim base provides libc, libstdc++ and zlib.
FROM ${PYTHON_IMAGE} AS runtime

# Match these to the host user (docker compose passes ECGCNN_UID/ECGCNN_GID) so that files written to the mounted
# ./outputs belong to that user and the container can write there.
ARG UID=1000
ARG GID=1000

LABEL org.opencontainers.image.title="ecgcnn" \
      org.opencontainers.image.description="1D-CNN heartbeat (ECG5000) classifiers, exported to ONNX and TFLite" \
      org.opencontainers.image.licenses="MIT"

# PYTHONPATH=/workspace/src: compose mounts the checkout at /workspace, and entries of PYTHONPATH come before
# site-packages, so the `ecgcnn` command and `import ecgcnn` run the mounted, live-edited source; without the mount
# the directory does not exist and the copy installed in /opt/venv is used. An editable install (pip install -e
# /workspace at build time) would not survive the mount: the bind mount hides what the build wrote under /workspace,
# and the editable finder would point at paths from the build context instead of the mount.
# PYTHONDONTWRITEBYTECODE=1 keeps the container from writing __pycache__ files (owned by the container user) into
# the mounted checkout. NVIDIA_DRIVER_CAPABILITIES asks the NVIDIA Container Toolkit for the CUDA driver libraries
# (compute) and nvidia-smi (utility); it is ignored when no GPU is reserved.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/workspace/src \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

RUN set -eu; \
    getent group "$GID" >/dev/null || groupadd --gid "$GID" ecg; \
    useradd --no-log-init --create-home --shell /bin/bash --uid "$UID" --gid "$GID" ecg; \
    mkdir -p /workspace/outputs /data/ECG5000; \
    chown -R "$UID:$GID" /workspace /data

COPY --from=builder /opt/venv /opt/venv

# Numeric, so that runtimes that enforce a non-root user (e.g. Kubernetes runAsNonRoot) can check it.
USER ${UID}:${GID}
WORKDIR /workspace

# docker compose overrides this with `sleep infinity` so that `docker compose exec` has a container to enter.
CMD ["ecgcnn", "--help"]
