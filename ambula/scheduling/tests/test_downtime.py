"""The downtime kit: what goes in, how it is sealed, who may make it, and what is recorded."""

import base64
import gzip
import io
import json
import os
import re
import stat
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path
from unittest.mock import Mock

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.utils import timezone

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit import chain
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.cli import build_parser
from ambula.cli import downtime_kit as downtime_kit_handler
from ambula.core.errors import AccessDenied
from ambula.patients.allergies import allergies_none_known, allergy_add
from ambula.patients.coverage import coverage_add, payer_create
from ambula.patients.demographics import contact_add, patient_restriction_set
from ambula.patients.medications import medication_add
from ambula.patients.problems import problem_add
from ambula.patients.tests.factories import registered_patient
from ambula.scheduling.availability import practice_zone, wall_clock
from ambula.scheduling.booking import appointment_book, appointment_cancel
from ambula.scheduling.downtime import downtime_kit_contents
from ambula.scheduling.downtime_kit import (
    PASSPHRASE_VARIABLE,
    PBKDF2_ITERATIONS,
    downtime_kit_export,
    passphrase_generate,
)
from ambula.scheduling.tests.factories import (
    make_block,
    make_location,
    make_provider,
    make_room,
    make_type,
)
from ambula.terminology.tests.factories import load_sample_codes

pytestmark = pytest.mark.django_db

PASSPHRASE = "correct horse battery"
MEMBER_ID = "XQZ884412907"


# --- Helpers --------------------------------------------------------------------------------------


def envelope_of(html: str) -> dict:
    found = re.search(r'<script id="kit-envelope" type="application/json">(.*?)</script>', html)
    return json.loads(found.group(1))


def open_kit(path: Path, passphrase: str = PASSPHRASE) -> dict:
    """Decrypt the kit as the page does: PBKDF2-SHA256, AES-256-GCM with the format as AAD, gzip."""
    envelope = envelope_of(path.read_text())
    key = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=32,
        salt=base64.b64decode(envelope["salt"]),
        iterations=envelope["iterations"],
    ).derive(passphrase.encode())
    compressed = AESGCM(key).decrypt(
        base64.b64decode(envelope["nonce"]),
        base64.b64decode(envelope["ciphertext"]),
        envelope["format"].encode(),
    )
    return json.loads(gzip.decompress(compressed))


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


def book(clinic, day, at=time(9, 30), patient=None, location=None):
    return appointment_book(
        actor=clinic["clerk"],
        patient=patient or clinic["patient"],
        provider=clinic["provider"],
        location=location or clinic["location"],
        appointment_type=clinic["type"],
        starts_at=wall_clock(day, at, practice_zone()),
    )


def export(tmp_path, name="kit.html", **options):
    options = {"actor": None, "days": 2, "passphrase": PASSPHRASE, **options}
    return downtime_kit_export(path=tmp_path / name, **options)


class Terminal(io.StringIO):
    """Standard output that says it is a terminal, as a person running the command has."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def clinic(practice):
    load_sample_codes()
    location = make_location("Lakeside Main", phone="(217) 555-0100")
    make_room(location, "Room 1")
    provider = make_provider(full_name="Dr. Ada Quill")
    make_block(provider, location, weekdays=range(7), starts_at=time(9), ends_at=time(12))
    clerk = UserFactory(username="desk9", roles=[Role.FRONT_DESK])
    nurse = UserFactory(username="nurse9", roles=[Role.NURSE])
    patient = registered_patient(
        actor=clerk,
        given_name="Mira",
        family_name="Holt",
        mobile_phone="(217) 555-0142",
        address_line="12 Elm St",
        city="Springfield",
        state="IL",
        postal_code="62701",
    )
    allergy_add(
        actor=nurse, patient=patient, substance="Penicillin", reaction="Hives", severity="severe"
    )
    problem_add(actor=nurse, patient=patient, code="E11.9")
    medication_add(actor=nurse, patient=patient, name="Metformin", dose="500 mg", route="oral")
    contact_add(
        actor=clerk,
        patient=patient,
        kind="emergency",
        name="Tom Holt",
        relationship="Brother",
        phone="(217) 555-0199",
    )
    payer = payer_create(actor=clerk, name="Prairie Health", payer_id="PRH01", phone="800-555-0101")
    coverage_add(
        actor=clerk,
        patient=patient,
        payer=payer,
        member_id=MEMBER_ID,
        plan_name="Gold PPO",
        priority=1,
        relationship="18",
        copay=Decimal("25"),
    )
    return {
        "location": location,
        "provider": provider,
        "type": make_type("Follow-up", duration=30),
        "clerk": clerk,
        "nurse": nurse,
        "patient": patient,
    }


# --- What goes in ---------------------------------------------------------------------------------


def test_the_kit_opens_with_its_passphrase_and_holds_the_schedule_and_summary(tmp_path, clinic):
    book(clinic, tomorrow())
    later = book(clinic, tomorrow() + timedelta(days=1))  # the third day: outside two days

    kit = export(tmp_path)

    assert (kit.appointment_count, kit.patient_count) == (1, 1)
    assert (kit.first_day, kit.last_day) == (timezone.localdate(), tomorrow())
    data = open_kit(kit.path)
    assert [day["date"] for day in data["days"]] == [
        timezone.localdate().isoformat(),
        tomorrow().isoformat(),
    ]
    assert data["days"][0]["locations"] == []
    [location] = data["days"][1]["locations"]
    assert (location["name"], location["phone"]) == ("Lakeside Main", "(217) 555-0100")
    [provider] = location["providers"]
    assert provider["name"] == "Dr. Ada Quill, MD"
    [visit] = provider["appointments"]
    assert (visit["starts"], visit["ends"], visit["type"]) == ("09:30", "10:00", "Follow-up")
    assert visit["status"] == "Scheduled"
    [summary] = data["patients"]
    assert visit["patient"] == summary["key"]
    assert summary["name"] == "Holt, Mira"
    assert summary["mrn"] == clinic["patient"].mrn
    assert summary["phones"] == [{"label": "Mobile", "number": "(217) 555-0142"}]
    assert summary["address"] == "12 Elm St, Springfield, IL 62701"
    assert summary["allergies"] == {
        "state": "listed",
        "entries": [{"substance": "Penicillin", "reaction": "Hives", "severity": "Severe"}],
    }
    assert summary["problems"] == [
        {"code": "E11.9", "description": "Type 2 diabetes mellitus without complications"}
    ]
    assert [medication["name"] for medication in summary["medications"]] == ["Metformin"]
    [plan] = summary["coverage"]
    assert (plan["payer"], plan["plan"], plan["member_id"]) == (
        "Prairie Health",
        "Gold PPO",
        MEMBER_ID,
    )
    assert (plan["priority"], plan["copay"]) == ("Primary", "25.00")
    assert summary["emergency_contacts"] == [
        {"name": "Tom Holt", "relationship": "Brother", "phone": "(217) 555-0199"}
    ]
    assert len(summary["visits"]) == 1
    assert later.starts_at.astimezone(practice_zone()).date() > kit.last_day


def test_the_file_holds_no_phi_in_clear(tmp_path, clinic):
    book(clinic, tomorrow())
    html = export(tmp_path).path.read_text()
    for secret in ("Holt", "Mira", MEMBER_ID, clinic["patient"].mrn, "Penicillin", "Metformin"):
        assert secret not in html
    assert (
        "Lakeside Family Practice" in html
    )  # the practice's name is not PHI: the lock page shows it


def test_a_wrong_passphrase_does_not_open_it(tmp_path, clinic):
    kit = export(tmp_path)
    with pytest.raises(InvalidTag):
        open_kit(kit.path, "correct horse battery!")


def test_the_sealing_parameters_are_the_documented_ones(tmp_path, clinic):
    envelope = envelope_of(export(tmp_path).path.read_text())
    assert envelope["iterations"] == PBKDF2_ITERATIONS == 600_000
    assert len(base64.b64decode(envelope["salt"])) == 16
    assert len(base64.b64decode(envelope["nonce"])) == 12
    other = envelope_of(export(tmp_path, "other.html").path.read_text())
    assert (other["salt"], other["nonce"]) != (envelope["salt"], envelope["nonce"])


def test_cancelled_and_no_show_visits_stay_out(tmp_path, clinic):
    visit = book(clinic, tomorrow())
    appointment_cancel(actor=clinic["clerk"], appointment=visit, reason="Patient called")
    kit = export(tmp_path)
    assert (kit.appointment_count, kit.patient_count) == (0, 0)
    data = open_kit(kit.path)
    assert data["patients"] == []
    assert all(day["locations"] == [] for day in data["days"])


def test_an_empty_schedule_gives_a_kit_that_says_so(tmp_path, clinic):
    kit = export(tmp_path, days=1)
    data = open_kit(kit.path)
    assert [day["locations"] for day in data["days"]] == [[]]
    assert data["labels"]["nothing_booked"].startswith("No appointments are booked")
    exported = AuditEvent.objects.get(action="scheduling.downtime_kit_exported")
    assert changes_of(exported)["appointments"] == 0
    assert not AuditEvent.objects.filter(action="scheduling.downtime_kit_patient_included").exists()


def test_no_known_allergies_and_never_asked_are_told_apart(tmp_path, clinic):
    asked = registered_patient(actor=clinic["clerk"], given_name="Ann", family_name="Asked")
    allergies_none_known(actor=clinic["nurse"], patient=asked)
    never = registered_patient(actor=clinic["clerk"], given_name="Ned", family_name="Never")
    book(clinic, tomorrow(), time(10), patient=asked)
    book(clinic, tomorrow(), time(11), patient=never)
    contents = downtime_kit_contents(actor=None, days=2)
    states = {summary["name"]: summary["allergies"] for summary in contents.data["patients"]}
    assert states["Asked, Ann"] == {"state": "none_known", "entries": []}
    assert states["Never, Ned"] == {"state": "not_recorded", "entries": []}


def test_restricted_records_are_included(clinic):
    patient_restriction_set(actor=clinic["nurse"], patient=clinic["patient"], restricted=True)
    book(clinic, tomorrow())
    [summary] = downtime_kit_contents(actor=None, days=2).data["patients"]
    assert summary["restricted"] is True
    assert summary["allergies"]["state"] == "listed"


def test_one_location_or_all(clinic):
    other = make_location("Riverside")
    make_room(other, "Room A")
    make_block(clinic["provider"], other, weekdays=range(7), starts_at=time(13), ends_at=time(17))
    elsewhere = registered_patient(actor=clinic["clerk"], given_name="Rae", family_name="River")
    book(clinic, tomorrow())
    book(clinic, tomorrow(), time(14), patient=elsewhere, location=other)

    everywhere = downtime_kit_contents(actor=None, days=2)
    assert everywhere.appointment_count == 2
    assert [place["name"] for place in everywhere.data["days"][1]["locations"]] == [
        "Lakeside Main",
        "Riverside",
    ]
    riverside = downtime_kit_contents(actor=None, days=2, location=other)
    assert [summary["name"] for summary in riverside.data["patients"]] == ["River, Rae"]


@pytest.mark.parametrize("days", [0, -1, 15, 100])
def test_days_outside_one_to_fourteen_are_refused(clinic, days):
    with pytest.raises(ValidationError) as caught:
        downtime_kit_contents(actor=None, days=days)
    assert caught.value.code == "days_out_of_range"


@pytest.mark.parametrize("days", [1, 14])
def test_one_and_fourteen_days_are_allowed(clinic, days):
    assert len(downtime_kit_contents(actor=None, days=days).data["days"]) == days


def test_a_user_needs_the_clinical_chart_and_the_schedule(clinic):
    with pytest.raises(AccessDenied):
        downtime_kit_contents(actor=clinic["clerk"], days=2)  # the front desk: no clinical chart
    biller = UserFactory(username="biller9", roles=[Role.BILLER])
    with pytest.raises(AccessDenied):
        downtime_kit_contents(actor=biller, days=2)
    book(clinic, tomorrow())
    assert downtime_kit_contents(actor=clinic["nurse"], days=2).appointment_count == 1


# --- The file and the audit trail -----------------------------------------------------------------


def test_the_file_is_readable_by_its_owner_only(tmp_path, clinic):
    previous = os.umask(0)
    try:
        kit = export(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(kit.path.stat().st_mode) == 0o600


def test_an_existing_file_is_kept_unless_forced(tmp_path, clinic):
    target = tmp_path / "kit.html"
    target.write_text("yesterday's kit")
    target.chmod(0o644)
    with pytest.raises(ValidationError) as caught:
        export(tmp_path)
    assert caught.value.code == "target_exists"
    assert target.read_text() == "yesterday's kit"
    assert not AuditEvent.objects.filter(action="scheduling.downtime_kit_exported").exists()

    export(tmp_path, force=True)
    assert open_kit(target)["days"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["kit.html"]  # no temporary left


@pytest.mark.django_db(transaction=True)
def test_a_forced_kit_leaves_the_old_one_whole_when_its_export_cannot_be_recorded(
    tmp_path, clinic, monkeypatch
):
    target = tmp_path / "kit.html"
    target.write_text("last night's kit")
    # The audit events' commit fails (a locked database, a full disk): nothing may be replaced.
    monkeypatch.setattr(connection, "commit", Mock(side_effect=OperationalError("locked")))
    with pytest.raises(OperationalError):
        export(tmp_path, force=True)
    monkeypatch.undo()

    assert target.read_text() == "last night's kit"
    assert [path.name for path in tmp_path.iterdir()] == ["kit.html"]  # no temporary left
    assert not AuditEvent.objects.filter(category="export").exists()


def test_a_missing_directory_writes_and_records_nothing(tmp_path, clinic):
    with pytest.raises(ValidationError) as caught:
        export(tmp_path, name="no-such-dir/kit.html")
    assert caught.value.code == "no_such_directory"
    assert not AuditEvent.objects.filter(category="export").exists()


@pytest.mark.parametrize("passphrase", ["", "short", "elevenchars"])
def test_a_short_passphrase_is_refused(tmp_path, clinic, passphrase):
    with pytest.raises(ValidationError) as caught:
        export(tmp_path, passphrase=passphrase)
    assert caught.value.code == "passphrase_too_short"
    assert not (tmp_path / "kit.html").exists()


def test_the_export_and_each_patients_read_are_audited_in_one_intact_chain(tmp_path, clinic):
    other = registered_patient(actor=clinic["clerk"], given_name="Rae", family_name="River")
    book(clinic, tomorrow())
    book(clinic, tomorrow(), time(11), patient=other)
    book(clinic, tomorrow(), time(10))  # Mira twice: still one read for her

    kit = export(tmp_path, location_name="lakeside main")

    exported = AuditEvent.objects.get(action="scheduling.downtime_kit_exported")
    assert (exported.kind, exported.category, exported.actor_username) == (
        "export",
        "export",
        "system",
    )
    assert exported.target_id == str(clinic["location"].pk)
    details = changes_of(exported)
    assert details["file"] == str(kit.path)
    assert (details["days"], details["location"]) == (2, "Lakeside Main")
    assert (details["appointments"], details["patients"]) == (3, 2)
    assert details["system_user"]
    reads = AuditEvent.objects.filter(action="scheduling.downtime_kit_patient_included")
    assert sorted(event.patient_id for event in reads) == sorted([clinic["patient"].pk, other.pk])
    assert {event.kind for event in reads} == {"read"}
    # Written as one batch: consecutive links, the export last.
    sequences = sorted([*(event.sequence for event in reads), exported.sequence])
    assert sequences == list(range(sequences[0], sequences[0] + 3))
    assert exported.sequence == sequences[-1]
    assert chain.verify().intact


def test_an_unknown_location_names_the_choices(tmp_path, clinic):
    with pytest.raises(ValidationError) as caught:
        export(tmp_path, location_name="Hilltop")
    assert caught.value.code == "unknown_location"
    assert "Lakeside Main" in caught.value.messages[0]


def test_the_page_allows_only_its_own_script_and_style(tmp_path, clinic):
    import hashlib

    html = export(tmp_path).path.read_text()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert policy.startswith("default-src 'none';")
    for tag in ("script", "style"):
        [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched from anywhere


# --- The command ----------------------------------------------------------------------------------


def test_the_command_takes_the_passphrase_from_the_environment(tmp_path, clinic, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_VARIABLE, PASSPHRASE)
    book(clinic, tomorrow())
    out = io.StringIO()
    call_command("downtime_kit", str(tmp_path / "kit.html"), days=3, stdout=out)
    assert "1 appointment, 1 patient" in out.getvalue()
    assert PASSPHRASE not in out.getvalue()
    assert len(open_kit(tmp_path / "kit.html")["days"]) == 3


def test_the_command_reads_the_first_line_of_a_passphrase_file(tmp_path, clinic, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_VARIABLE, "the environment loses to the file")
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE + "\nnot this line\n")
    call_command(
        "downtime_kit",
        str(tmp_path / "kit.html"),
        passphrase_file=str(secret),
        stdout=io.StringIO(),
    )
    assert open_kit(tmp_path / "kit.html")["days"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "Cannot read the passphrase file"),
        ("", "is empty"),
        ("\n", "is empty"),
        ("short\n", "too short"),
    ],
)
def test_the_command_refuses_a_bad_passphrase_file(tmp_path, clinic, content, message):
    secret = tmp_path / "passphrase.txt"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("downtime_kit", str(tmp_path / "kit.html"), passphrase_file=str(secret))
    assert not (tmp_path / "kit.html").exists()


def test_the_command_refuses_a_short_passphrase_in_the_environment(tmp_path, clinic, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_VARIABLE, "tooshort")
    with pytest.raises(CommandError, match="at least 12 characters"):
        call_command("downtime_kit", str(tmp_path / "kit.html"))


def test_without_a_passphrase_the_command_makes_one_and_shows_it_once(
    tmp_path, clinic, monkeypatch
):
    monkeypatch.delenv(PASSPHRASE_VARIABLE, raising=False)
    out = Terminal()
    call_command("downtime_kit", str(tmp_path / "kit.html"), stdout=out)
    [passphrase] = re.findall(r"^    (\S+)$", out.getvalue(), re.M)
    assert re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){4}", passphrase)
    assert out.getvalue().count(passphrase) == 1
    assert "apart from the file" in out.getvalue()
    assert open_kit(tmp_path / "kit.html", passphrase)["days"]


def test_without_a_passphrase_or_a_terminal_the_command_writes_nothing(
    tmp_path, clinic, monkeypatch
):
    monkeypatch.delenv(PASSPHRASE_VARIABLE, raising=False)
    with pytest.raises(CommandError, match="no terminal"):
        call_command("downtime_kit", str(tmp_path / "kit.html"), stdout=io.StringIO())
    assert not (tmp_path / "kit.html").exists()


def test_the_command_refuses_to_overwrite_and_bad_days(tmp_path, clinic, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_VARIABLE, PASSPHRASE)
    (tmp_path / "kit.html").write_text("keep me")
    with pytest.raises(CommandError, match="--force"):
        call_command("downtime_kit", str(tmp_path / "kit.html"))
    with pytest.raises(CommandError, match="1 to 14 days"):
        call_command("downtime_kit", str(tmp_path / "new.html"), days=15)
    assert (tmp_path / "kit.html").read_text() == "keep me"


def test_generated_passphrases_are_long_and_differ():
    made = {passphrase_generate() for _ in range(50)}
    assert len(made) == 50
    assert all(len(passphrase) == 24 for passphrase in made)


def test_ambula_downtime_kit_runs_the_command(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("ambula.cli.setup_django", lambda: None)
    monkeypatch.setattr("ambula.cli.call", lambda *args, **options: calls.append((args, options)))
    args = build_parser().parse_args(
        ["downtime-kit", "--days", "3", "--location", "Riverside", "--force", "kit.html"]
    )
    assert args.handler is downtime_kit_handler
    args.handler(args)
    assert calls == [
        (
            ("downtime_kit", "kit.html"),
            {"days": 3, "location": "Riverside", "passphrase_file": None, "force": True},
        )
    ]
