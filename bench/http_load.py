"""Requests per second and latency of /healthz and the login page under concurrent clients.

Starts `ambula serve` on a free loopback port with a throw-away data directory, then drives it
from client processes on the same machine (so the clients share its cores: the figures are a
floor, not a ceiling). Bounded in time; only 127.0.0.1 is contacted.

    python bench/http_load.py [--clients 8] [--seconds 10] [--workers N]
"""

import argparse
import http.client
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from ambula.testing.processes import ambula_process, free_port, run_ambula, wait_for

PATHS = ["/healthz", "/accounts/login/"]


def client_loop(port: int, path: str, seconds: float) -> tuple[list[float], int]:
    """Send requests on one keep-alive connection until time is up; return latencies (ms)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    return latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(port: int, path: str, clients: int, seconds: float) -> None:
    client_loop(port, path, 1.0)  # warm every worker's caches first
    with multiprocessing.Pool(clients) as pool:
        results = pool.starmap(client_loop, [(port, path, seconds)] * clients)
    latencies = [latency for result, _ in results for latency in result]
    errors = sum(errors for _, errors in results)
    print(
        f"{path:<18} {len(latencies) / seconds:8.0f} req/s   "
        f"p50 {statistics.median(latencies):6.1f} ms   "
        f"p95 {percentile(latencies, 0.95):6.1f} ms   "
        f"p99 {percentile(latencies, 0.99):6.1f} ms   "
        f"errors {errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ambula-bench-") as directory:
        data_dir = Path(directory) / "data"
        run_ambula(data_dir, "demo")
        port = free_port()
        serve_args = ["serve", "--port", str(port)]
        if args.workers:
            serve_args += ["--workers", str(args.workers)]
        # Request logging off: the benchmark measures serving, not writing to a pipe.
        with ambula_process(data_dir, *serve_args, AMBULA_LOG_LEVEL="WARNING"):
            wait_for(f"http://127.0.0.1:{port}/healthz")
            print(
                f"ambula serve, {args.clients} concurrent clients, {args.seconds:.0f} s per path "
                f"({multiprocessing.cpu_count()} cores shared by server and clients)"
            )
            for path in PATHS:
                measure(port, path, args.clients, args.seconds)


if __name__ == "__main__":
    main()
