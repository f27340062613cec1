import base64
import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_otp.oath import TOTP
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ambula.accounts import mfa
from ambula.accounts.mfa import (
    METHOD_RECOVERY_CODE,
    METHOD_TOTP,
    mfa_is_enrolled,
    mfa_reset,
    mfa_verify,
    recovery_codes_regenerate,
    recovery_codes_remaining,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_provisioning_uri,
    totp_qr_svg,
)
from ambula.accounts.models import RecoveryCode, TOTPDevice
from ambula.accounts.roles import Role
from ambula.accounts.tests.clock import frozen_clock
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.testing.processes import ambula_env, run_ambula

pytestmark = pytest.mark.django_db

ISSUER = "Ambula"
STEP = timedelta(seconds=30)
# The first second of a 30-second step, so that "one step later" is unambiguous.
START = datetime(2025, 3, 3, 9, 0, 0, tzinfo=UTC)
RECOVERY_CODE_SHAPE = r"[a-z2-9]{5}-[a-z2-9]{5}"
MFA_ACTIONS = (
    "auth.mfa_enrolled",
    "auth.mfa_recovery_code_used",
    "auth.mfa_recovery_codes_regenerated",
    "accounts.mfa_reset",
)


@pytest.fixture
def clock(monkeypatch):
    return frozen_clock(monkeypatch, modules=(mfa,), start=START)


def code_at(device: TOTPDevice, moment: datetime) -> str:
    """The code an authenticator app holding the device's key shows at that moment."""
    totp = TOTP(bytes.fromhex(device.key), step=30, t0=0, digits=6, drift=0)
    totp.time = moment.timestamp()
    return f"{totp.token():06d}"


def enrol(user, clock) -> tuple[TOTPDevice, list[str]]:
    device = totp_enrolment_start(user=user)
    codes = totp_enrolment_confirm(user=user, device=device, token=code_at(device, clock()))
    return device, codes


@pytest.fixture
def user():
    return UserFactory(username="jrivera")


@pytest.fixture
def enrolled(user, clock):
    device, codes = enrol(user, clock)
    # Past the step used to confirm, which a sign-in may not reuse.
    clock.advance(STEP)
    return device, codes


def mfa_events(*actions: str):
    """Audit events of this module (other services, such as user_create, record their own)."""
    return AuditEvent.objects.filter(action__in=actions or MFA_ACTIONS)


def device_step(device: TOTPDevice) -> int:
    return TOTPDevice.objects.get(pk=device.pk).last_used_step


# Enrolment


def test_enrolment_start_creates_an_unconfirmed_device_with_a_random_key(user):
    first = totp_enrolment_start(user=user)
    second = totp_enrolment_start(user=user)

    assert not second.confirmed
    assert len(bytes.fromhex(second.key)) == 20
    assert second.key != first.key
    # The abandoned attempt is gone; only the latest can be confirmed.
    assert list(TOTPDevice.objects.filter(user=user)) == [second]
    assert not mfa_is_enrolled(user=user)
    assert not mfa_events().exists()


def test_enrolment_confirms_the_device_and_returns_ten_recovery_codes(user, clock):
    device = totp_enrolment_start(user=user)
    token = code_at(device, clock())

    codes = totp_enrolment_confirm(user=user, device=device, token=token)

    device.refresh_from_db()
    assert device.confirmed
    assert device.last_used_step == int(START.timestamp()) // 30
    assert mfa_is_enrolled(user=user)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(RECOVERY_CODE_SHAPE, code)
        assert not set(code) & set("01oil")
    assert recovery_codes_remaining(user=user) == 10

    event = AuditEvent.objects.get(action="auth.mfa_enrolled")
    assert event.category == "authentication"
    assert event.actor == user
    assert event.actor_roles == Role.PHYSICIAN
    assert (event.target_type, event.target_id) == ("accounts.totpdevice", str(device.pk))


def test_recovery_codes_are_stored_only_as_keyed_hashes(user, clock):
    _device, codes = enrol(user, clock)

    stored = list(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert len(stored) == 10
    assert all(len(code_hash) == 64 for code_hash in stored)
    # No column of any row, audit trail included, holds a code in either written form.
    everything = " ".join(
        str(row)
        for model in (RecoveryCode, TOTPDevice, AuditEvent)
        for row in model.objects.values_list()
    )
    for code in codes:
        assert code not in everything
        assert code.replace("-", "") not in everything
    # Keyed: a plain hash of the code, guessable without SECRET_KEY, is not what is stored.
    plain = {hashlib.sha256(code.replace("-", "").encode()).hexdigest() for code in codes}
    assert not plain & set(stored)


def test_the_code_that_confirmed_enrolment_cannot_also_sign_in(user, clock):
    device = totp_enrolment_start(user=user)
    token = code_at(device, clock())
    totp_enrolment_confirm(user=user, device=device, token=token)

    assert mfa_verify(user=user, code=token) is None


@pytest.mark.parametrize("token", ["wrong", "", "12345", "1234567", "١٢٣٤٥٦", "x" * 500])
def test_a_malformed_code_at_confirmation_changes_nothing(user, clock, token):
    device = totp_enrolment_start(user=user)

    with pytest.raises(ValidationError) as error:
        totp_enrolment_confirm(user=user, device=device, token=token)

    assert error.value.code == "invalid_code"
    assert_nothing_enrolled(user, device)


def test_a_wrong_code_at_confirmation_changes_nothing(user, clock):
    device = totp_enrolment_start(user=user)
    right = code_at(device, clock())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    with pytest.raises(ValidationError) as error:
        totp_enrolment_confirm(user=user, device=device, token=wrong)

    assert error.value.code == "invalid_code"
    assert_nothing_enrolled(user, device)


def test_an_expired_code_at_confirmation_changes_nothing(user, clock):
    device = totp_enrolment_start(user=user)
    stale = code_at(device, clock() - 2 * STEP)

    with pytest.raises(ValidationError) as error:
        totp_enrolment_confirm(user=user, device=device, token=stale)

    assert error.value.code == "invalid_code"
    assert_nothing_enrolled(user, device)


def test_another_users_device_cannot_be_confirmed(user, clock):
    other_device = totp_enrolment_start(user=UserFactory())

    with pytest.raises(ValidationError) as error:
        totp_enrolment_confirm(user=user, device=other_device, token=code_at(other_device, clock()))

    assert error.value.code == "invalid_code"
    assert_nothing_enrolled(user, other_device)


def test_a_confirmed_device_cannot_be_confirmed_again(user, clock):
    device, _codes = enrol(user, clock)
    clock.advance(STEP)

    with pytest.raises(ValidationError) as error:
        totp_enrolment_confirm(user=user, device=device, token=code_at(device, clock()))

    assert error.value.code == "invalid_code"
    # The recovery codes from the real enrolment still stand.
    assert recovery_codes_remaining(user=user) == 10
    assert AuditEvent.objects.filter(action="auth.mfa_enrolled").count() == 1


def test_a_second_authenticator_is_refused_while_one_is_enrolled(user, clock):
    enrol(user, clock)
    clock.advance(STEP)
    second = totp_enrolment_start(user=user)

    with pytest.raises(ValidationError) as error:
        totp_enrolment_confirm(user=user, device=second, token=code_at(second, clock()))

    assert error.value.code == "already_enrolled"
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
    assert AuditEvent.objects.filter(action="auth.mfa_enrolled").count() == 1


def assert_nothing_enrolled(user, device):
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    assert device_step(device) == -1
    assert not mfa_is_enrolled(user=user)
    assert not RecoveryCode.objects.exists()
    assert not mfa_events().exists()


def test_totp_maths_follow_rfc_6238(user, clock, monkeypatch):
    # RFC 6238 appendix B: SHA-1 seed "12345678901234567890" at T=59 gives 94287082, whose
    # last six digits are the 6-digit code.
    monkeypatch.setattr(mfa.secrets, "token_bytes", lambda size: b"12345678901234567890")
    device = totp_enrolment_start(user=user)
    clock.moment = datetime.fromtimestamp(59, tz=UTC)

    totp_enrolment_confirm(user=user, device=device, token="287082")

    assert device_step(device) == 1


# Provisioning


def test_provisioning_uri_carries_the_secret_issuer_and_label(user):
    device = totp_enrolment_start(user=user)

    uri = totp_provisioning_uri(device=device, issuer="Springfield Family Practice")

    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Springfield Family Practice:jrivera"
    assert " " not in uri
    query = parse_qs(parts.query, strict_parsing=True)
    secret = query["secret"][0]
    assert "=" not in secret
    assert secret == base64.b32encode(bytes.fromhex(device.key)).decode()
    assert query == {
        "secret": [secret],
        "issuer": ["Springfield Family Practice"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


def test_provisioning_uri_quotes_characters_that_would_break_it(user):
    device = totp_enrolment_start(user=user)

    uri = totp_provisioning_uri(device=device, issuer="Smith & Jones?#/Clinic")

    parts = urlsplit(uri)
    assert unquote(parts.path) == "/Smith & Jones?#/Clinic:jrivera"
    assert parse_qs(parts.query)["issuer"] == ["Smith & Jones?#/Clinic"]
    assert not parts.fragment


def test_secret_for_display_is_the_base32_key_in_groups_of_four(user):
    device = totp_enrolment_start(user=user)

    shown = mfa.totp_secret_for_display(device=device)

    groups = shown.split(" ")
    assert [len(group) for group in groups] == [4] * 8
    assert "".join(groups) == base64.b32encode(bytes.fromhex(device.key)).decode()


def test_qr_svg_is_inline_markup_sized_by_css(user):
    device = totp_enrolment_start(user=user)

    svg = totp_qr_svg(device=device, issuer="Smith <b>&</b> Jones")

    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
    assert 'viewBox="0 0 ' in svg
    assert 'role="img"' in svg
    assert "aria-label=" in svg
    assert "<path" in svg
    assert ' d="M' in svg
    assert "mm" not in svg
    assert " width=" not in svg.split(">", 1)[0]
    # The issuer travels inside the QR pattern only, never as markup.
    assert "<b>" not in svg
    assert "Jones" not in svg
    # The secret must not leak into text a screen reader or the page source would show.
    assert base64.b32encode(bytes.fromhex(device.key)).decode() not in svg


def test_qr_svg_differs_per_device(user):
    first = totp_qr_svg(device=totp_enrolment_start(user=user), issuer=ISSUER)
    second = totp_qr_svg(device=totp_enrolment_start(user=user), issuer=ISSUER)

    assert first != second


# Sign-in with the authenticator


def test_current_code_signs_in_and_records_its_step(user, clock, enrolled):
    device, _codes = enrolled

    assert mfa_verify(user=user, code=code_at(device, clock())) == METHOD_TOTP

    assert device_step(device) == int(clock().timestamp()) // 30
    # The caller records the sign-in; this service records nothing for a TOTP success.
    assert list(mfa_events().values_list("action", flat=True)) == ["auth.mfa_enrolled"]


def test_code_typed_with_a_space_is_accepted(user, clock, enrolled):
    device, _codes = enrolled
    code = code_at(device, clock())

    assert mfa_verify(user=user, code=f" {code[:3]} {code[3:]} ") == METHOD_TOTP


@pytest.mark.parametrize("steps", [-1, 1])
def test_one_step_of_clock_drift_is_tolerated(user, clock, enrolled, steps):
    device, _codes = enrolled
    clock.advance(2 * STEP)  # keep the step behind "now" newer than the one used to enrol

    assert mfa_verify(user=user, code=code_at(device, clock() + steps * STEP)) == METHOD_TOTP
    assert device_step(device) == int((clock() + steps * STEP).timestamp()) // 30


@pytest.mark.parametrize("steps", [-2, 2, -10])
def test_two_or_more_steps_off_is_refused(user, clock, enrolled, steps):
    device, _codes = enrolled
    clock.advance(5 * STEP)
    before = device_step(device)

    assert mfa_verify(user=user, code=code_at(device, clock() + steps * STEP)) is None
    assert device_step(device) == before


def test_the_same_code_is_refused_the_second_time(user, clock, enrolled):
    device, _codes = enrolled
    code = code_at(device, clock())

    assert mfa_verify(user=user, code=code) == METHOD_TOTP
    assert mfa_verify(user=user, code=code) is None
    # Still refused while the code is within the tolerance window.
    clock.advance(STEP)
    assert mfa_verify(user=user, code=code) is None
    # The next code works.
    assert mfa_verify(user=user, code=code_at(device, clock())) == METHOD_TOTP


def test_a_step_older_than_the_last_used_one_is_refused(user, clock, enrolled):
    device, _codes = enrolled
    clock.advance(2 * STEP)
    newest = code_at(device, clock() + STEP)
    older = code_at(device, clock())  # valid on its own: within the one-step tolerance

    assert mfa_verify(user=user, code=newest) == METHOD_TOTP
    assert mfa_verify(user=user, code=older) is None
    assert device_step(device) == int((clock() + STEP).timestamp()) // 30


def test_a_code_for_another_users_device_is_refused(user, clock, enrolled):
    other = UserFactory()
    other_device, _codes = enrol(other, clock)
    clock.advance(STEP)

    assert mfa_verify(user=user, code=code_at(other_device, clock())) is None
    assert mfa_verify(user=other, code=code_at(other_device, clock())) == METHOD_TOTP


def test_an_unconfirmed_device_cannot_sign_in(user, clock):
    device = totp_enrolment_start(user=user)

    assert mfa_verify(user=user, code=code_at(device, clock())) is None
    assert device_step(device) == -1


def slowed(function, seconds):
    """Wrap a step of mfa_verify that runs between reading the lock-protected rows and writing.

    Concurrent submissions then overlap for certain: without the row lock each would read the
    old state during the pause and both would pass.
    """

    def slow(*args, **kwargs):
        result = function(*args, **kwargs)
        time.sleep(seconds)
        return result

    return slow


def submit_at_once(*, user, code: str, submissions: int = 2) -> tuple[list, list]:
    """Submit one code from several threads, each with its own database connection."""
    start = threading.Barrier(submissions)
    results, errors = [], []

    def submit():
        try:
            start.wait()
            results.append(mfa_verify(user=user, code=code))
        except Exception as error:  # reported by the caller's assertion, not lost in a thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(submissions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


# A shared-cache in-memory SQLite database (Django's default test database) answers a second
# writer with "database table is locked" at once instead of waiting, which a real SQLite file
# never does. test_concurrent_submissions_on_a_sqlite_file_are_accepted_once covers SQLite.
in_memory_sqlite = pytest.mark.skipif(
    connection.vendor == "sqlite" and not connection.settings_dict.get("TEST", {}).get("NAME"),
    reason="SQLite's in-memory test database cannot queue concurrent writers; "
    "the SQLite file variant of this test runs instead",
)


@in_memory_sqlite
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_of_one_code_are_accepted_once(user, clock, monkeypatch):
    device, _codes = enrol(user, clock)
    clock.advance(STEP)
    monkeypatch.setattr(mfa, "_totp_matching_step", slowed(mfa._totp_matching_step, 0.3))

    results, errors = submit_at_once(user=user, code=code_at(device, clock()))

    assert errors == []
    assert sorted(results, key=str) == [None, METHOD_TOTP]
    assert device_step(device) == int(clock().timestamp()) // 30


@in_memory_sqlite
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_of_one_recovery_code_are_accepted_once(user, clock, monkeypatch):
    _device, codes = enrol(user, clock)
    monkeypatch.setattr(mfa, "constant_time_compare", slowed(mfa.constant_time_compare, 0.03))

    results, errors = submit_at_once(user=user, code=codes[0])

    assert errors == []
    assert sorted(results, key=str) == [None, METHOD_RECOVERY_CODE]
    assert recovery_codes_remaining(user=user) == 9
    assert mfa_events("auth.mfa_recovery_code_used").count() == 1


# Runs in a child process against a fresh SQLite file configured as in production (WAL,
# BEGIN IMMEDIATE, busy timeout), whatever database this test session uses.
SQLITE_RACE_SCRIPT = """
import json
import django
django.setup()
from datetime import timedelta
from ambula.accounts import mfa
from ambula.accounts.tests import test_mfa as t
from ambula.accounts.tests.clock import Clock

clock = Clock(t.START)
mfa.timezone_now = clock
user = t.UserFactory(username="racer")
device, codes = t.enrol(user, clock)
clock.advance(t.STEP)
original_matching_step, original_compare = mfa._totp_matching_step, mfa.constant_time_compare
mfa._totp_matching_step = t.slowed(original_matching_step, 0.3)
mfa.constant_time_compare = t.slowed(original_compare, 0.03)
totp = t.submit_at_once(user=user, code=t.code_at(device, clock()))
recovery = t.submit_at_once(user=user, code=codes[0])
print(json.dumps({
    "totp": totp[0], "totp_errors": [repr(error) for error in totp[1]],
    "recovery": recovery[0], "recovery_errors": [repr(error) for error in recovery[1]],
    "step": t.device_step(device), "expected_step": int(clock().timestamp()) // 30,
    "remaining": mfa.recovery_codes_remaining(user=user),
}))
"""


def test_concurrent_submissions_on_a_sqlite_file_are_accepted_once(tmp_path):
    data_dir = tmp_path / "data"
    migrated = run_ambula(data_dir, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_RACE_SCRIPT],
        env=ambula_env(data_dir, DJANGO_SETTINGS_MODULE="ambula.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])

    assert outcome["totp_errors"] == []
    assert sorted(outcome["totp"], key=str) == [None, METHOD_TOTP]
    assert outcome["step"] == outcome["expected_step"]
    assert outcome["recovery_errors"] == []
    assert sorted(outcome["recovery"], key=str) == [None, METHOD_RECOVERY_CODE]
    assert outcome["remaining"] == 9


# Sign-in with a recovery code


@pytest.mark.parametrize(
    "write",
    [
        lambda code: code,
        lambda code: code.upper(),
        lambda code: code.replace("-", ""),
        lambda code: " " + code.replace("-", " ").upper() + " ",
        lambda code: "-".join(code.replace("-", "")),
    ],
    ids=["as-shown", "upper-case", "no-dash", "spaces", "dash-everywhere"],
)
def test_a_recovery_code_works_once_however_it_is_typed(user, clock, enrolled, write):
    _device, codes = enrolled

    assert mfa_verify(user=user, code=write(codes[3])) == METHOD_RECOVERY_CODE

    assert recovery_codes_remaining(user=user) == 9
    used = RecoveryCode.objects.get(used_at__isnull=False)
    assert used.used_at == clock()
    event = AuditEvent.objects.get(action="auth.mfa_recovery_code_used")
    assert event.actor == user
    assert event.category == "authentication"
    assert (event.target_type, event.target_id) == ("accounts.recoverycode", str(used.pk))
    assert changes_of(event) == {"remaining": 9}

    for attempt in (codes[3], write(codes[3]), codes[3].upper()):
        assert mfa_verify(user=user, code=attempt) is None
    assert recovery_codes_remaining(user=user) == 9
    assert AuditEvent.objects.filter(action="auth.mfa_recovery_code_used").count() == 1
    # The others still work.
    assert mfa_verify(user=user, code=codes[4]) == METHOD_RECOVERY_CODE


def test_a_recovery_code_belongs_to_its_user(user, clock, enrolled):
    _device, codes = enrolled
    other = UserFactory()
    enrol(other, clock)

    assert mfa_verify(user=other, code=codes[0]) is None
    assert recovery_codes_remaining(user=user) == 10
    assert recovery_codes_remaining(user=other) == 10


def test_an_unknown_recovery_code_is_refused_and_recorded_nowhere(user, clock, enrolled):
    _device, codes = enrolled
    # Right shape and alphabet, but not one of the user's codes.
    unknown = "abcde-fghjk"
    assert unknown not in codes

    assert mfa_verify(user=user, code=unknown) is None
    assert recovery_codes_remaining(user=user) == 10
    assert list(mfa_events().values_list("action", flat=True)) == ["auth.mfa_enrolled"]


def test_regenerating_recovery_codes_invalidates_the_old_ones(user, clock, enrolled):
    _device, old_codes = enrolled
    assert mfa_verify(user=user, code=old_codes[0]) == METHOD_RECOVERY_CODE

    new_codes = recovery_codes_regenerate(user=user)

    assert len(set(new_codes)) == 10
    assert not set(new_codes) & set(old_codes)
    assert RecoveryCode.objects.filter(user=user).count() == 10
    assert recovery_codes_remaining(user=user) == 10
    assert mfa_verify(user=user, code=old_codes[1]) is None
    assert mfa_verify(user=user, code=new_codes[0]) == METHOD_RECOVERY_CODE
    event = AuditEvent.objects.get(action="auth.mfa_recovery_codes_regenerated")
    assert event.actor == user
    assert event.category == "authentication"
    assert (event.target_type, event.target_id) == ("accounts.user", str(user.pk))


# Administration


def test_mfa_reset_removes_everything_and_records_the_administrator(user, clock, enrolled):
    device, codes = enrolled
    admin = UserFactory(roles=[Role.ADMIN])
    bystander = UserFactory()
    enrol(bystander, clock)

    mfa_reset(actor=admin, user=user)

    assert not mfa_is_enrolled(user=user)
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    clock.advance(STEP)
    assert mfa_verify(user=user, code=code_at(device, clock())) is None
    assert mfa_verify(user=user, code=codes[0]) is None
    # Other users keep their enrolment.
    assert mfa_is_enrolled(user=bystander)
    assert recovery_codes_remaining(user=bystander) == 10

    event = AuditEvent.objects.get(action="accounts.mfa_reset")
    assert event.actor == admin
    assert event.actor_roles == Role.ADMIN
    assert event.category == "accounts"
    assert (event.target_type, event.target_id) == ("accounts.user", str(user.pk))
    assert changes_of(event) == {
        "devices_removed": 1,
        "recovery_codes_removed": 10,
        "sessions_ended": 0,
    }


def test_mfa_reset_needs_the_manage_accounts_capability(user, clock, enrolled):
    physician = UserFactory(roles=[Role.PHYSICIAN])

    with pytest.raises(AccessDenied):
        mfa_reset(actor=physician, user=user)

    assert mfa_is_enrolled(user=user)
    assert recovery_codes_remaining(user=user) == 10
    assert not mfa_events("accounts.mfa_reset").exists()


def test_after_a_reset_the_user_can_enrol_again(user, clock, enrolled):
    mfa_reset(actor=UserFactory(roles=[Role.ADMIN]), user=user)

    device, codes = enrol(user, clock)

    assert mfa_is_enrolled(user=user)
    assert len(codes) == 10
    clock.advance(STEP)
    assert mfa_verify(user=user, code=code_at(device, clock())) == METHOD_TOTP


# Input hygiene


@pytest.mark.parametrize(
    "code",
    [
        "",
        " ",
        "------",
        "000000",
        "12345",
        "1234567",
        "١٢٣٤٥٦",  # Arabic-Indic digits pass str.isdigit
        "\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width digits
        "12345\x00",
        "\x00" * 10,
        "abcde-fghj\x00",
        "' OR 1=1 --",
        "a" * 10_000,
        "1" * 10_000,
        None,
        123456,
    ],
)
def test_garbage_is_refused_without_writing(user, clock, enrolled, code):
    device, _codes = enrolled
    before = device_step(device)

    assert mfa_verify(user=user, code=code) is None

    assert device_step(device) == before
    assert recovery_codes_remaining(user=user) == 10
    assert list(mfa_events().values_list("action", flat=True)) == ["auth.mfa_enrolled"]


# Function-scoped fixtures run once for all examples: fine here, because nothing that fails
# verification changes the enrolled state.
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=st.text(max_size=200))
@example(code="")
@example(code="1" * 200)
@example(code="\uff12\uff13\uff14\uff15\uff16-\uff17\uff18\uff19ab")
def test_mfa_verify_never_raises_on_arbitrary_text(user, clock, enrolled, code):
    result = mfa_verify(user=user, code=code)

    # The odds of arbitrary text being a current code or a recovery code are negligible.
    assert result is None
    assert recovery_codes_remaining(user=user) == 10
