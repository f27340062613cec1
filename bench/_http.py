"""What the benchmarks that talk to `ambula serve` share: signing in, timing GETs, percentiles.

Not a benchmark itself (`make bench` skips files whose name starts with an underscore).
"""

import http.client
import statistics
import time


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def line(label: str, latencies: list[float]) -> str:
    return (
        f"{label:<44} p50 {statistics.median(latencies):6.2f} ms   "
        f"p95 {percentile(latencies, 0.95):6.2f} ms   p99 {percentile(latencies, 0.99):6.2f} ms"
    )


def signed_in_cookie(username: str, password: str) -> str:
    """Sign in through the real sign-in view and return the session cookie header."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    response = client.post("/accounts/login/", {"username": username, "password": password})
    if response.status_code != 302:
        raise SystemExit(f"Sign-in for the benchmark failed ({response.status_code}).")
    return "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())


def measure_http(port: int, label: str, paths: list[str], cookie: str, htmx: bool) -> None:
    """GET each path in turn on one keep-alive connection (after 10 to warm up); print."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Cookie": cookie, "Host": "127.0.0.1"}
    if htmx:
        headers["HX-Request"] = "true"
    for path in paths[:10]:
        connection.request("GET", path, headers=headers)
        connection.getresponse().read()
    latencies = []
    for path in paths:
        begun = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - begun) * 1000)
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}")
    connection.close()
    print(line(label, latencies))
