"""Run the real `ambula` command in a child process with its own data directory (tests, bench)."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def ambula_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AMBULA_", "DJANGO_"))
    }
    env["AMBULA_DATA_DIR"] = str(data_dir)
    env.update(overrides)
    return env


def run_ambula(data_dir: Path, *args: str, timeout: float = 120, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "ambula", *args],
        env=ambula_env(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, *, timeout: float = 30, context=None) -> int:
    """Poll until the server answers; return the first status code it gives."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_for_output(process: subprocess.Popen, text: str, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in process.output_lines):
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"{text!r} not in output:\n" + "".join(process.output_lines))
        time.sleep(0.1)


@contextmanager
def ambula_process(data_dir: Path, *args: str, **env: str):
    """Start `ambula ARGS` in its own process group; stop it as Ctrl-C would.

    Its output is collected line by line in `process.output_lines` as it arrives.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "ambula", *args],
        env=ambula_env(data_dir, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    process.output_lines = []
    reader = threading.Thread(target=lambda: process.output_lines.extend(process.stdout))
    reader.start()
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(timeout=5)
