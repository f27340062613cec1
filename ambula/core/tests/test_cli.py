import json
import os
import signal
import ssl
import urllib.request

import pytest

from ambula.testing.processes import (
    ambula_process,
    free_port,
    run_ambula,
    wait_for,
    wait_for_output,
)

STRONG_KEY = "k3Y-" + "a1B2c3D4e5F6g7H8" * 4


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_help_lists_every_command(data_dir):
    result = run_ambula(data_dir, "--help")
    assert result.returncode == 0
    for command in ("run", "serve", "worker", "migrate", "demo", "check", "manage"):
        assert command in result.stdout


def test_migrate_then_demo_prints_the_logins_and_is_idempotent(data_dir):
    assert run_ambula(data_dir, "migrate").returncode == 0
    first = run_ambula(data_dir, "demo")
    assert first.returncode == 0, first.stderr
    assert "Demo practice created, with 200 synthetic patients." in first.stdout
    assert "\r" not in first.stdout  # no progress bar when nobody watches
    assert "physician" in first.stdout
    second = run_ambula(data_dir, "demo")
    assert second.returncode == 0
    assert "created" not in second.stdout
    assert "physician" in second.stdout
    assert (data_dir / "ambula.sqlite3").exists()


def test_manage_passes_through_to_django(data_dir):
    result = run_ambula(data_dir, "manage", "showmigrations", "scheduling")
    assert result.returncode == 0, result.stderr
    assert "0001_initial" in result.stdout


def test_bad_configuration_exits_with_a_clear_message(data_dir):
    result = run_ambula(data_dir, "migrate", AMBULA_DEBUG="maybe")
    assert result.returncode == 2
    assert "AMBULA_DEBUG must be true or false" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_fails_a_development_setup_naming_each_problem(data_dir):
    result = run_ambula(data_dir, "check", AMBULA_DEBUG="true", AMBULA_SECRET_KEY="changeme")
    assert result.returncode == 1
    for check_id in ("ambula.E001", "ambula.E002", "ambula.E003"):
        assert check_id in result.stderr
    assert "AMBULA_DEBUG" in result.stderr
    assert "AMBULA_SECRET_KEY" in result.stderr


def test_check_fails_when_the_data_directory_is_open_to_others(data_dir):
    run_ambula(data_dir, "migrate")
    os.chmod(data_dir, 0o755)
    result = run_ambula(data_dir, "check", AMBULA_HTTPS="true")
    assert result.returncode == 1
    assert "ambula.E004" in result.stderr
    assert f"chmod 700 {data_dir}" in result.stderr


PRODUCTION = {
    "AMBULA_HTTPS": "true",
    "AMBULA_SECRET_KEY": STRONG_KEY,
    "AMBULA_ALLOWED_HOSTS": "clinic.example.org",
}
CHECK_IDS = ("E001", "E002", "E003", "E004", "E005", "E006", "E007", "W001", "W002")


def reported(result) -> set[str]:
    """The ambula.* checks a `check` run reported."""
    return {check_id for check_id in CHECK_IDS if f"ambula.{check_id}" in result.stderr}


def set_up_practice(data_dir, *, mfa_required: bool = True, idle_timeout_minutes: int = 15):
    """Create the practice in a migrated installation, as its administrator would."""
    script = (
        "from ambula.accounts.roles import Role\n"
        "from ambula.accounts.services import user_create\n"
        "from ambula.core.services import practice_create, practice_security_update\n"
        "admin = user_create(actor=None, username='owner', email='owner@clinic.example',"
        " full_name='Owner', roles=[Role.ADMIN])\n"
        "practice = practice_create(actor=None, name='Lakeside Family Practice')\n"
        f"practice_security_update(actor=admin, practice=practice, mfa_required={mfa_required},"
        f" idle_timeout_minutes={idle_timeout_minutes})\n"
    )
    result = run_ambula(data_dir, "manage", "shell", "-c", script, **PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_check_passes_a_production_setup(data_dir):
    assert run_ambula(data_dir, "migrate").returncode == 0
    set_up_practice(data_dir)

    result = run_ambula(data_dir, "check", **PRODUCTION)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "ready for production" in result.stdout
    assert reported(result) == set()


def test_check_passes_a_migrated_installation_before_its_practice_is_set_up(data_dir):
    assert run_ambula(data_dir, "migrate").returncode == 0

    result = run_ambula(data_dir, "check", **PRODUCTION)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "ready for production" in result.stdout


def test_check_refuses_any_host(data_dir):
    assert run_ambula(data_dir, "migrate").returncode == 0

    result = run_ambula(data_dir, "check", **{**PRODUCTION, "AMBULA_ALLOWED_HOSTS": "*"})

    assert result.returncode == 1
    assert reported(result) == {"E005"}
    assert "AMBULA_ALLOWED_HOSTS contains '*'" in result.stderr
    assert "ready for production" not in result.stdout


def test_check_fails_before_migrations(data_dir):
    result = run_ambula(data_dir, "check", **PRODUCTION)

    assert result.returncode == 1
    assert reported(result) == {"E006"}
    assert "The database cannot be read, or is not migrated." in result.stderr
    assert "ambula migrate" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_fails_when_the_database_is_unreachable(data_dir):
    unreachable = f"postgres://ambula@127.0.0.1:{free_port()}/ambula"

    result = run_ambula(data_dir, "check", **PRODUCTION, AMBULA_DATABASE_URL=unreachable)

    assert result.returncode == 1
    assert "ambula.E006" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_refuses_the_demo_practice(data_dir):
    assert run_ambula(data_dir, "demo", "--patients", "5").returncode == 0

    result = run_ambula(data_dir, "check", **PRODUCTION)

    assert result.returncode == 1
    assert "ambula.E007" in result.stderr
    assert "This is the demo practice, with published demo passwords." in result.stderr


def test_check_warns_when_two_step_sign_in_is_not_required(data_dir):
    assert run_ambula(data_dir, "migrate").returncode == 0
    set_up_practice(data_dir, mfa_required=False)

    result = run_ambula(data_dir, "check", **PRODUCTION)

    # A warning fails the check too: production should not start with it.
    assert result.returncode == 1
    assert reported(result) == {"W001"}
    assert "Two-step sign-in is not required for staff." in result.stderr


@pytest.mark.parametrize(("minutes", "warned"), [(30, False), (31, True), (240, True)])
def test_check_warns_when_idle_sessions_last_over_30_minutes(data_dir, minutes, warned):
    assert run_ambula(data_dir, "migrate").returncode == 0
    set_up_practice(data_dir, idle_timeout_minutes=minutes)

    result = run_ambula(data_dir, "check", **PRODUCTION)

    assert result.returncode == (1 if warned else 0), result.stderr
    assert reported(result) == ({"W002"} if warned else set())
    if warned:
        assert f"Idle sessions end only after {minutes} minutes." in result.stderr


def test_serve_answers_healthz_and_logs_one_line_per_request(data_dir):
    run_ambula(data_dir, "migrate")
    port = free_port()
    with ambula_process(
        data_dir, "serve", "--port", str(port), "--workers", "1", AMBULA_LOG_FORMAT="json"
    ) as server:
        assert wait_for(f"http://127.0.0.1:{port}/healthz") == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as response:
            assert b"Sign in" in response.read()
        wait_for_output(server, "/accounts/login/")
    request_lines = [
        json.loads(line)
        for line in server.output_lines
        if line.startswith("{") and '"ambula.request"' in line
    ]
    assert [line["path"] for line in request_lines][-1] == "/accounts/login/"
    assert all(len(line["request_id"]) == 32 for line in request_lines)


def test_serve_reports_503_when_the_database_is_unreachable(data_dir):
    port = free_port()
    unreachable = f"postgres://ambula@127.0.0.1:{free_port()}/ambula"
    with ambula_process(
        data_dir, "serve", "--port", str(port), "--workers", "1", AMBULA_DATABASE_URL=unreachable
    ):
        assert wait_for(f"http://127.0.0.1:{port}/healthz") == 503


def test_serve_reports_503_before_migrations(data_dir):
    port = free_port()
    with ambula_process(data_dir, "serve", "--port", str(port), "--workers", "1"):
        assert wait_for(f"http://127.0.0.1:{port}/healthz") == 503


def test_serve_over_tls_sends_hsts_and_secure_cookies(data_dir, tmp_path):
    from ambula.testing.certificates import write_self_signed_certificate

    certfile, keyfile = write_self_signed_certificate(tmp_path)
    run_ambula(data_dir, "migrate")
    port = free_port()
    context = ssl.create_default_context(cafile=str(certfile))
    with ambula_process(
        data_dir,
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
        AMBULA_ALLOWED_HOSTS="localhost",
    ):
        url = f"https://localhost:{port}/accounts/login/"
        assert wait_for(url, context=context) == 200
        with urllib.request.urlopen(url, context=context) as response:
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            cookie = response.headers["Set-Cookie"]
            assert "Secure" in cookie
            assert "HttpOnly" in cookie


def test_certfile_without_keyfile_is_refused(data_dir, tmp_path):
    certificate = tmp_path / "cert.pem"
    certificate.write_text("x")
    result = run_ambula(data_dir, "serve", "--certfile", str(certificate))
    assert result.returncode == 2
    assert "--certfile and --keyfile go together" in result.stderr


def test_run_serves_with_a_worker_and_ctrl_c_stops_both(data_dir):
    port = free_port()
    with ambula_process(data_dir, "run", "--demo", "--port", str(port), "--workers", "1") as run:
        # First start migrates, loads the ICD-10-CM codes and the demo: a ceiling, not a goal.
        assert wait_for(f"http://127.0.0.1:{port}/healthz", timeout=180) == 200
        wait_for_output(run, "Huey consumer started")
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=30) == 0
    output = "".join(run.output_lines)
    assert f"http://127.0.0.1:{port}/" in output
    assert "physician" in output
    assert "Traceback" not in output
    with pytest.raises(ProcessLookupError):
        os.killpg(run.pid, 0)  # nothing of the group is left: server, its workers, the worker
