"""`ambula createuser`: the first administrator, from the command line to a working link."""

import io
import re
import sqlite3
from contextlib import closing

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from ambula.accounts.models import User
from ambula.accounts.roles import Role
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.testing.processes import run_ambula

LINK_PATH = r"/accounts/set-password/[A-Za-z0-9_-]+/[a-z0-9]+-[0-9a-f]+/"
STRONG = "crisp-orbit-lantern-meadow-47"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One migrated installation for the module; each test uses its own usernames."""
    directory = tmp_path_factory.mktemp("createuser") / "data"
    result = run_ambula(directory, "migrate")
    assert result.returncode == 0, result.stderr
    return directory


def accounts(data_dir, username: str) -> list[tuple]:
    """(username, email, full_name, password, roles) rows for the username, read from SQLite."""
    with closing(sqlite3.connect(data_dir / "ambula.sqlite3")) as database:
        return database.execute(
            "SELECT u.username, u.email, u.full_name, u.password,"
            " group_concat(r.role, ',') FROM accounts_user u"
            " LEFT JOIN accounts_roleassignment r ON r.user_id = u.id"
            " WHERE lower(u.username) = lower(?) GROUP BY u.id",
            [username],
        ).fetchall()


def printed_link(output: str) -> str:
    links = [line for line in output.splitlines() if "/accounts/set-password/" in line]
    assert len(links) == 1, output
    return links[0].strip()


def test_createuser_prints_a_one_time_link_with_the_default_base_url(data_dir):
    result = run_ambula(
        data_dir,
        "createuser",
        "firstadmin",
        "--role",
        "admin",
        "--email",
        "a@b.test",
        "--name",
        "First Admin",
    )

    assert result.returncode == 0, result.stderr
    assert "Created firstadmin (admin)." in result.stdout
    assert re.fullmatch(rf"http://127\.0\.0\.1:8000{LINK_PATH}", printed_link(result.stdout))
    [(username, email, full_name, password, roles)] = accounts(data_dir, "firstadmin")
    assert (username, email, full_name, roles) == ("firstadmin", "a@b.test", "First Admin", "admin")
    assert password.startswith("!")  # no usable password until the link is used


@pytest.mark.parametrize("base_url", ["https://clinic.example.org", "https://clinic.example.org/"])
def test_createuser_link_uses_ambula_base_url(data_dir, base_url):
    username = f"based{len(base_url)}"
    result = run_ambula(
        data_dir, "createuser", username, "--role", "admin", AMBULA_BASE_URL=base_url
    )

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"https://clinic\.example\.org{LINK_PATH}", printed_link(result.stdout))


def test_createuser_defaults_email_and_name_to_the_username(data_dir):
    result = run_ambula(data_dir, "createuser", "Plain.User", "--role", "biller")

    assert result.returncode == 0, result.stderr
    [(username, email, full_name, _password, roles)] = accounts(data_dir, "plain.user")
    assert (username, email, full_name, roles) == (
        "plain.user",
        "plain.user@localhost",
        "Plain.User",
        "biller",
    )


def test_createuser_refuses_a_bad_base_url_clearly(data_dir):
    result = run_ambula(
        data_dir, "createuser", "ftpuser", "--role", "admin", AMBULA_BASE_URL="ftp://clinic.test"
    )
    assert result.returncode == 2
    assert "AMBULA_BASE_URL must be like https://clinic.example.org." in result.stderr
    assert "Traceback" not in result.stderr
    assert accounts(data_dir, "ftpuser") == []


def test_createuser_refuses_an_unknown_role_without_a_traceback(data_dir):
    result = run_ambula(data_dir, "createuser", "heroic", "--role", "superhero")

    assert result.returncode != 0
    assert "invalid choice: 'superhero'" in result.stderr
    assert "admin" in result.stderr  # the message lists the roles there are
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert accounts(data_dir, "heroic") == []


def test_createuser_refuses_the_patient_role(data_dir):
    result = run_ambula(data_dir, "createuser", "portaluser", "--role", "patient")
    assert result.returncode != 0
    assert "invalid choice: 'patient'" in result.stderr
    assert accounts(data_dir, "portaluser") == []


def test_createuser_refuses_a_taken_username_whatever_its_case(data_dir):
    first = run_ambula(data_dir, "createuser", "dupe", "--role", "nurse", "--email", "d1@x.test")
    assert first.returncode == 0, first.stderr

    second = run_ambula(data_dir, "createuser", "DUPE", "--role", "admin", "--email", "d2@x.test")

    assert second.returncode == 2
    assert "already in use" in second.stderr
    assert second.stderr.startswith("ambula: ")
    assert "Traceback" not in second.stderr
    assert "/accounts/set-password/" not in second.stdout
    [(_username, email, _name, _password, roles)] = accounts(data_dir, "dupe")
    assert (email, roles) == ("d1@x.test", "nurse")


def test_createuser_needs_a_role(data_dir):
    result = run_ambula(data_dir, "createuser", "roleless")

    assert result.returncode == 2
    assert "usage: ambula createuser" in result.stderr
    assert "the following arguments are required: --role" in result.stderr
    assert "Traceback" not in result.stderr
    assert accounts(data_dir, "roleless") == []


def test_createuser_grants_several_roles(data_dir):
    result = run_ambula(data_dir, "createuser", "multi", "--role", "admin", "--role", "physician")

    assert result.returncode == 0, result.stderr
    assert "Created multi (admin, physician)." in result.stdout
    assert accounts(data_dir, "multi")[0][4].split(",") == ["admin", "physician"]


# In process: the printed link really works.


@pytest.mark.django_db
@pytest.mark.usefixtures("practice")
def test_the_printed_link_sets_the_password_and_signs_in(client):
    out = io.StringIO()
    call_command(
        "createuser",
        "firstadmin",
        role=["admin"],
        email="a@b.test",
        full_name="First Admin",
        stdout=out,
    )
    link = printed_link(out.getvalue())
    assert link.startswith(settings.BASE_URL + "/accounts/set-password/")
    path = link.removeprefix(settings.BASE_URL)
    user = User.objects.get(username="firstadmin")
    assert user.roles == [Role.ADMIN]
    created = AuditEvent.objects.get(action="accounts.user_created", target_id=str(user.pk))
    assert created.actor is None
    assert changes_of(created) == {"roles": ["admin"]}

    page = client.get(path)
    assert page.status_code == 200
    assert "firstadmin" in page.content.decode()
    response = client.post(path, {"new_password": STRONG, "new_password_again": STRONG})

    assert response.status_code == 302
    assert client.get("/accounts/users/").status_code == 200
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert client.get(path).status_code == 400  # used once


@pytest.mark.django_db
def test_call_command_refuses_a_taken_username():
    call_command("createuser", "twin", role=["nurse"], stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"This username is already in use\."):
        call_command("createuser", "TWIN", role=["nurse"], email="x@y.test", stdout=io.StringIO())
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_call_command_grants_several_roles():
    call_command("createuser", "multi", role=["admin", "physician"], stdout=io.StringIO())
    assert User.objects.get(username="multi").roles == [Role.ADMIN, Role.PHYSICIAN]
