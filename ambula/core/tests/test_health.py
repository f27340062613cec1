import pytest
from django.core.management import call_command

from ambula.core import health


def test_healthz_answers_ok_when_database_and_migrations_are_ready(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "migrations": "ok",
        "version": response.json()["version"],
    }
    assert "no-store" in response["Cache-Control"]


def test_healthz_needs_no_sign_in_and_no_session(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "sessionid" not in response.cookies
    assert "ambula_session" not in response.cookies


def test_healthz_answers_503_while_migrations_are_pending(client, transactional_db, monkeypatch):
    monkeypatch.setattr(health, "_migrations_seen_applied", False)
    call_command("migrate", "scheduling", "zero", verbosity=0)
    try:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert response.json()["migrations"] == "pending"
    finally:
        call_command("migrate", verbosity=0)
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_healthz_only_answers_get(client, db, method):
    assert getattr(client, method)("/healthz").status_code == 405
