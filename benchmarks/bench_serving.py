"""Load benchmark of `recforge serve` on loopback: throughput and latency of single-user GETs.

    python benchmarks/bench_serving.py --workers 2 --seconds 10 --rates 250,500,1000

A script, not a pytest-benchmark suite (collected by benchmarks/conftest.py, it holds no tests).

Serves (each by uvicorn with the same worker count, one process per worker):

* ``itemknn``  — ItemKNN(k=40, cosine) fitted on MovieLens-100K (u.data, implicit counts);
* ``embedding`` — a 64-factor truncated-SVD model of Gowalla's LightGCN train split, wrapped in
  a small EmbeddingRecommender subclass (``--skip-embedding`` to leave it out);
* ``constant`` — a FastAPI endpoint returning a constant 10-item list of the same shape, its
  parameters read and its answer encoded as recforge's GET does: the ceiling of FastAPI +
  uvicorn on this machine, measured in the same run (``constant-fastapi``, not run by default:
  the same list through FastAPI's parameter solving and dict serialisation, the earlier ceiling).

The load generator is one separate process (asyncio + uvloop, raw HTTP/1.1 keep-alive sockets,
far cheaper per request than an HTTP library), on the same cores as the servers. Two modes:

* closed loop: ``--connections`` connections, each sending its next request when the previous
  answer arrives, for ``--seconds``: the maximum throughput;
* open loop at fixed offered rates (``--rates``): requests are due at a constant rate spread
  over the connections; latency is measured from when a request was *due* (not when it could be
  sent), so a server that falls behind shows its queueing delay (no coordinated omission).
  Sending stops at the end of the window; requests still due then are counted as ``unsent``.

Every answer must be 200 with a non-empty list; anything else counts as an error. Events
ingestion (``POST /v1/events``, batches of ``--event-batch``) is measured closed-loop against
SQLite and, when a PostgreSQL URL is given (``--postgres-url`` or RECFORGE_TEST_POSTGRES_URL, or
one started with .ci/postgres.sh when ``--start-postgres``), against PostgreSQL.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))            # serving_svd_model
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))     # the benchmarks package
from benchmarks.harness import REPO, data_root  # noqa: E402

TOP_N = 10
REQUEST_TIMEOUT = 30.0      # seconds; a request without an answer by then counts as an error
CONSTANT = [{"item_id": 1000 + k, "score": 1.0 - k / 100} for k in range(TOP_N)]


def constant_app():
    """The ceiling: FastAPI returning a constant list shaped like a recommendation answer, served
    the same way as recforge's GET (parameters read from the request, the answer written to JSON
    bytes per request by recforge.serving.encoding), so the ratio measures the model's work."""
    from fastapi import FastAPI, Request

    from recforge.serving.encoding import json_response

    app = FastAPI()

    async def constant(request):
        user_id = request.path_params["user_id"]
        n = int(request.query_params.get("n", TOP_N))
        return json_response({"user_id": user_id, "items": CONSTANT[:n], "model_version": "constant"})

    constant.__annotations__ = {"request": Request}     # a real class: this module's annotations are strings
    app.get("/v1/recommendations/{user_id}")(constant)

    @app.get("/readyz")
    async def ready():
        return {"status": "ready"}

    return app


def constant_fastapi_app():
    """The earlier ceiling (target ``constant-fastapi``): FastAPI's parameter solving and a dict
    answer serialised by FastAPI — heavier per request than recforge's GET path now is."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/v1/recommendations/{user_id}")
    async def constant(user_id: str, n: int = 10):
        return {"user_id": user_id, "items": CONSTANT, "model_version": "constant"}

    @app.get("/readyz")
    async def ready():
        return {"status": "ready"}

    return app


# ---------------------------------------------------------------------------- models
def itemknn_artifact(folder: Path) -> tuple[Path, list]:
    import pandas as pd

    from recforge.data import Interactions
    from recforge.models import ItemKNN
    from recforge.serving import save_artifact

    df = pd.read_csv(data_root() / "ml-100k" / "u.data", sep="\t", names=["user", "item", "rating", "ts"])
    inter = Interactions.from_arrays(df.user.to_numpy(), df.item.to_numpy(), None, df.ts.to_numpy())
    model = ItemKNN(k=40, progress=False, num_threads=1).fit(inter)
    save_artifact(model, folder / "itemknn", training_data=inter)
    return folder / "itemknn", inter.user_ids.to_numpy().tolist()


def embedding_artifact(folder: Path, factors: int = 64) -> tuple[Path, list]:
    """BenchTruncatedSVD (serving_svd_model.py) with 64 factors on Gowalla's LightGCN train split."""
    from recforge.datasets import lightgcn
    from recforge.serving import save_artifact
    from serving_svd_model import BenchTruncatedSVD

    train, _ = lightgcn("gowalla", data_dir=data_root(), download=False)
    model = BenchTruncatedSVD(factors=factors, num_threads=1).fit(train)
    save_artifact(model, folder / "embedding", training_data=train)
    return folder / "embedding", train.user_ids.to_numpy().tolist()


# ---------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kind: str, target: str, workers: int, log: Path, extra=()) -> tuple[subprocess.Popen, int]:
    port = free_port()
    here = str(Path(__file__).resolve().parent)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    if kind.startswith("constant"):
        factory = "bench_serving:constant_fastapi_app" if kind == "constant-fastapi" else "bench_serving:constant_app"
        command = [sys.executable, "-m", "uvicorn", factory, "--factory", "--app-dir",
                   here, "--workers", str(workers), "--port", str(port),
                   "--log-level", "warning", "--no-access-log"]
    else:
        command = [sys.executable, "-m", "recforge", "serve", target, "--workers", str(workers), "--port",
                   str(port), "--log-level", "warning", "--partial-fit-events", "0", "--partial-fit-seconds", "0",
                   "--import", "serving_svd_model", *extra]
    process = subprocess.Popen(command, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    SERVER_GROUPS[port] = process.pid
    deadline = time.monotonic() + 180
    import httpx

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process, port
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{kind} server did not start: {log.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- load generator
async def _request(reader, writer, payload: bytes) -> int:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length)
    if status == 200 and b'"items":[]' in body:
        return -1
    return status


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _run_load(port: int, payloads: list, seconds: float, connections: int, rate: float | None) -> dict:
    latencies, errors, done, unsent = [], 0, 0, 0
    start = time.perf_counter() + 0.2
    stop_at = start + seconds

    async def connection(index: int):
        nonlocal errors, done, unsent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        k = index
        sent = 0
        while True:
            if rate:
                due = start + (sent * connections + index) / rate
                if due >= stop_at or time.perf_counter() >= stop_at:
                    unsent += due < stop_at and int((stop_at - due) * rate / connections) + 1
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                due = time.perf_counter()
                if due >= stop_at:
                    break
            sent += 1
            try:
                status = await asyncio.wait_for(_request(reader, writer, payloads[k % len(payloads)]), REQUEST_TIMEOUT)
            except (OSError, asyncio.IncompleteReadError, ValueError, asyncio.TimeoutError):
                errors += 1
                writer.close()
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:             # the server is gone: the rest of this connection's requests fail
                    return
                continue
            k += connections
            latencies.append(time.perf_counter() - due)
            if status != 200:
                errors += 1
            done += 1
        writer.close()

    await asyncio.gather(*(connection(i) for i in range(connections)))
    elapsed = max(time.perf_counter() - start, 1e-9)
    lat = np.asarray(latencies) * 1000
    return {"requests": done, "errors": errors, "unsent": unsent, "seconds": elapsed, "throughput": done / elapsed,
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else None}


def _load_process(queue, *args):
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    cpu = time.process_time()
    result = asyncio.run(_run_load(*args))
    result["generator_cpu_s"] = time.process_time() - cpu
    queue.put(result)


#: the process group of the server listening on each port (start_server runs each in its own)
SERVER_GROUPS: dict = {}


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:               # fields[0] is the state: pgrp is field 5 of stat
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_load(port: int, payloads: list, seconds: float, connections: int, rate: float | None = None) -> dict:
    """Run the load in a separate process (so the generator never shares this one's GIL)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    group = SERVER_GROUPS.get(port)
    server_cpu = group_cpu_seconds(group) if group else None
    process = ctx.Process(target=_load_process, args=(queue, port, payloads, seconds, connections, rate))
    process.start()
    result = queue.get(timeout=seconds + 120)
    process.join()
    # CPU per answered request, server and load generator: unlike throughput, hardly changed by
    # what else the machine runs, so its ratios predict those of a quiet machine
    done = max(result["requests"], 1)
    if server_cpu is not None:
        result["server_cpu_ms_per_request"] = (group_cpu_seconds(group) - server_cpu) * 1000 / done
    result["generator_cpu_ms_per_request"] = result["generator_cpu_s"] * 1000 / done
    return result


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_gets(name: str, port: int, users: list, args, results: dict) -> None:
    rng = random.Random(0)
    payloads = [_get(f"/v1/recommendations/{rng.choice(users)}?n={TOP_N}") for _ in range(5000)]
    run_load(port, payloads, 1.0, args.connections)                       # warm-up
    entry = {"closed": run_load(port, payloads, args.seconds, args.connections), "load_before": load_average()}
    for rate in args.rates:
        entry[f"open_{rate:g}"] = run_load(port, payloads, args.seconds, args.connections, rate)
    entry["load_after"] = load_average()
    results[name] = entry
    closed = entry["closed"]
    print(f"{name:10s} closed loop: {closed['throughput']:7.0f} req/s  p50 {closed['p50_ms']:.2f} ms  "
          f"p99 {closed['p99_ms']:.2f} ms  errors {closed['errors']}  (load {entry['load_before']}); CPU per "
          f"request: server {closed.get('server_cpu_ms_per_request', float('nan')):.3f} ms, load generator "
          f"{closed['generator_cpu_ms_per_request']:.3f} ms", flush=True)
    for rate in args.rates:
        r = entry[f"open_{rate:g}"]
        print(f"{name:10s} offered {rate:6g}/s: {r['throughput']:7.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
              f"p99 {r['p99_ms']:.2f} ms  errors {r['errors']}", flush=True)


def cpu_ratio(runs: list, ceiling_runs: list) -> float | None:
    """Throughput ratio that the CPU per request implies when the cores are the bottleneck:
    (server + generator CPU of the ceiling) / (server + generator CPU of the target), medians."""
    def median_cpu(rs):
        totals = sorted(r["server_cpu_ms_per_request"] + r["generator_cpu_ms_per_request"] for r in rs
                        if "server_cpu_ms_per_request" in r)
        return totals[len(totals) // 2] if totals else None

    target, ceiling = median_cpu(runs), median_cpu(ceiling_runs)
    return ceiling / target if target and ceiling else None


def bench_interleaved(servers: dict, args, results: dict) -> None:
    """Closed-loop rounds taken in turn across the running servers (``--rounds``): on a machine
    whose other load changes from minute to minute, the ratio of two targets measured seconds
    apart is far steadier than that of measurements taken minutes apart. Reports each target's
    median round and, per round, every target's ratio to the constant ceiling."""
    payloads = {}
    for name, (port, users) in servers.items():
        rng = random.Random(0)
        payloads[name] = [_get(f"/v1/recommendations/{rng.choice(users)}?n={TOP_N}") for _ in range(5000)]
        run_load(port, payloads[name], 1.0, args.connections)            # warm-up
    rounds = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, (port, _) in servers.items():
            rounds[name].append(run_load(port, payloads[name], args.seconds, args.connections))
    for name, runs in rounds.items():
        cpu = sorted(r.get("server_cpu_ms_per_request", float("nan")) for r in runs)
        gen = sorted(r["generator_cpu_ms_per_request"] for r in runs)
        print(f"{name:10s} CPU per request (median of rounds): server {cpu[len(cpu) // 2]:.3f} ms, "
              f"load generator {gen[len(gen) // 2]:.3f} ms", flush=True)
        ordered = sorted(runs, key=lambda r: r["throughput"])
        results[name] = {"closed": ordered[len(ordered) // 2], "rounds": [r["throughput"] for r in runs],
                         "errors_all_rounds": sum(r["errors"] for r in runs), "load_after": load_average()}
        print(f"{name:10s} closed loop, {args.rounds} interleaved rounds: "
              + ", ".join(f"{r['throughput']:.0f}" for r in runs) + " req/s; errors "
              f"{results[name]['errors_all_rounds']}", flush=True)
    if "constant" in rounds:
        for name, runs in rounds.items():
            if name.startswith("constant"):
                continue
            ratios = sorted(r["throughput"] / c["throughput"] for r, c in zip(runs, rounds["constant"]))
            results[name]["ratio_rounds"] = ratios
            print(f"{name} / constant per round: " + ", ".join(f"{x:.0%}" for x in ratios)
                  + f"; median {ratios[len(ratios) // 2]:.0%}", flush=True)
            predicted = cpu_ratio(rounds[name], rounds["constant"])
            if predicted is not None:
                results[name]["cpu_predicted_ratio"] = predicted
                print(f"{name} / constant predicted from CPU per request (server + load generator, medians): "
                      f"{predicted:.0%}", flush=True)
    for name, (port, _) in servers.items():
        for rate in args.rates:
            r = run_load(port, payloads[name], args.seconds, args.connections, rate)
            results[name][f"open_{rate:g}"] = r
            print(f"{name:10s} offered {rate:6g}/s: {r['throughput']:7.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
                  f"p99 {r['p99_ms']:.2f} ms  errors {r['errors']}", flush=True)


def bench_events(name: str, port: int, args, results: dict) -> None:
    payloads = []
    for k in range(200):
        events = [{"user_id": 900000 + (k * args.event_batch + j) % 5000, "item_id": 1 + (k + j) % 1600}
                  for j in range(args.event_batch)]
        payloads.append(_post("/v1/events", json.dumps({"events": events}).encode()))
    r = run_load(port, payloads, args.seconds, args.event_connections)
    r["events_per_second"] = r["throughput"] * args.event_batch
    r["load"] = load_average()
    results[name] = r
    print(f"{name:10s} events: {r['events_per_second']:7.0f} events/s acknowledged ({r['throughput']:.0f} "
          f"requests/s of {args.event_batch})  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
          f"errors {r['errors']}  (load {r['load']})", flush=True)


def postgres_url(args) -> str | None:
    url = args.postgres_url or os.environ.get("RECFORGE_TEST_POSTGRES_URL")
    if url or not args.start_postgres:
        return url
    out = subprocess.run(["bash", str(REPO / ".ci" / "postgres.sh"), str(os.getpid())], capture_output=True,
                         text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--event-batch", type=int, default=10)
    parser.add_argument("--event-connections", type=int, default=8)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--start-postgres", action="store_true")
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument("--targets", default="constant,itemknn,embedding,postgresql",
                        help="which of constant, itemknn (+ SQLite events), embedding, postgresql (events), "
                             "constant-fastapi (the earlier, heavier ceiling) to run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="> 1: start every GET server at once and take this many closed-loop rounds of "
                             "--seconds in turn across them (steadier ratios on a busy machine)")
    parser.add_argument("--quick", action="store_true", help="2-second runs, one rate")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rates = 2.0, "500"
    args.rates = [float(x) for x in args.rates.split(",") if x]
    results: dict = {"workers": args.workers, "cores": os.cpu_count(), "seconds": args.seconds,
                     "connections": args.connections}
    print(f"{os.cpu_count()} cores, {args.workers} workers, {args.connections} connections, {args.seconds:g} s "
          f"per measurement, load {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        tmp = Path(tmp)
        chosen = set(args.targets.split(","))
        targets = [(name, None, None) for name in ("constant", "constant-fastapi") if name in chosen]
        path, users = itemknn_artifact(tmp)
        if "itemknn" in chosen:
            targets.append(("itemknn", path, users))
        if not args.skip_embedding and "embedding" in chosen:
            path, users = embedding_artifact(tmp)
            targets.append(("embedding", path, users))
        if args.rounds > 1:                 # every server up at once, closed loops taken in turn
            running = {}
            try:
                for name, path, users in targets:
                    running[name] = (start_server(name, str(path), args.workers, tmp / f"{name}.log"),
                                     users or list(range(1, 944)))
                bench_interleaved({name: (proc_port[1], users) for name, (proc_port, users) in running.items()},
                                  args, results)
                if "itemknn" in running:
                    bench_events("sqlite", running["itemknn"][0][1], args, results)
            finally:
                for (process, _), _users in running.values():
                    stop_server(process)
            targets = []
        for name, path, users in targets:
            process, port = start_server(name, str(path), args.workers, tmp / f"{name}.log")
            try:
                bench_gets(name, port, users or list(range(1, 944)), args, results)
                if name == "itemknn":
                    bench_events("sqlite", port, args, results)
            except Exception as exc:        # report the failure and the server's log, go on with the rest
                results[name] = {"failed": repr(exc)}
                print(f"{name}: FAILED ({exc!r}); server log:\n{(tmp / f'{name}.log').read_text()[-3000:]}")
            finally:
                stop_server(process)
        url = postgres_url(args) if "postgresql" in chosen else None
        if url:
            process, port = start_server("itemknn-pg", str(tmp / "itemknn"), args.workers, tmp / "pg.log",
                                         extra=("--events-url", url))
            try:
                bench_events("postgresql", port, args, results)
            finally:
                stop_server(process)
        else:
            print("postgresql events: skipped (no --postgres-url, RECFORGE_TEST_POSTGRES_URL or --start-postgres)")
    for ceiling_name in ("constant", "constant-fastapi"):
        if "closed" not in results.get(ceiling_name, {}):
            continue
        ceiling = results[ceiling_name]["closed"]["throughput"]
        for name in ("itemknn", "embedding"):
            if "closed" in results.get(name, {}):
                rate = results[name]["closed"]["throughput"]
                print(f"{name} top-{TOP_N}: {rate:.0f} req/s = {rate / ceiling:.0%} of the {ceiling_name} ceiling "
                      f"({ceiling:.0f} req/s)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
