"""Failed sign-ins slow down, then lock: a username from one address, a username, an address.

The thresholds come from LOGIN_THROTTLE; `ambula/accounts/throttling.py` explains the design.
"""

import re
import threading
from html import unescape

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.signals import user_login_failed
from django.db import connection
from django.test import Client
from django.utils.timezone import now as timezone_now

from ambula.accounts import throttling
from ambula.accounts.models import LoginThrottle, User
from ambula.accounts.roles import Role
from ambula.accounts.tests.clock import frozen_clock
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory
from ambula.accounts.throttling import (
    address_key,
    sign_in_attempt_reserve,
    sign_in_attempt_succeeded,
    sign_in_completed,
    sign_in_failure_record,
    throttles_purge,
    user_is_locked,
    user_unlock,
)
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("practice")]

LOGIN = "/accounts/login/"
WRONG_PASSWORD = "not-the-right-passphrase-17"
NOT_MATCHED = "That username and password do not match. Check them and try again."
TOO_MANY = "Too many attempts. Please wait"
ADDRESS = "127.0.0.1"
OTHER_ADDRESS = "10.20.30.40"
PAIR = LoginThrottle.Scope.PAIR
USERNAME = LoginThrottle.Scope.USERNAME
BY_ADDRESS = LoginThrottle.Scope.ADDRESS


@pytest.fixture
def clock(monkeypatch):
    return frozen_clock(monkeypatch)


@pytest.fixture
def limits():
    return django_settings.LOGIN_THROTTLE


def attempt(client, username, password, address=ADDRESS):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def shown(response) -> tuple[int, str]:
    """The status and the form's error as the visitor sees them ("" when there is none)."""
    if response.status_code != 200:
        return response.status_code, ""
    errors = re.findall(
        r'<div class="alert alert-error" role="alert">\s*<p>(.*?)</p>',
        response.content.decode(),
        re.DOTALL,
    )
    return response.status_code, unescape(" ".join(errors))


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, username, times, *, clock=None, wait_seconds=0, address=ADDRESS):
    """Make `times` wrong-password attempts, waiting `wait_seconds` before each one."""
    for _ in range(times):
        if clock is not None:
            clock.advance(seconds=wait_seconds)
        assert shown(attempt(client, username, WRONG_PASSWORD, address)) == (200, NOT_MATCHED)


def refused_for_minutes(response) -> bool:
    status, error = shown(response)
    return status == 200 and error.startswith(TOO_MANY) and error.endswith("minutes and try again.")


def refused_for_seconds(response) -> bool:
    status, error = shown(response)
    return status == 200 and bool(re.fullmatch(rf"{TOO_MANY} \d+ seconds? and try again\.", error))


@pytest.fixture
def passwords_checked():
    """Count the credential checks that failed: `authenticate` signals each one."""
    checked = []

    def receiver(sender, credentials, **kwargs):
        checked.append(credentials["username"])

    user_login_failed.connect(receiver)
    yield checked
    user_login_failed.disconnect(receiver)


def counter(scope, key) -> LoginThrottle:
    return LoginThrottle.objects.get(scope=scope, key=key)


def username_counter(username) -> LoginThrottle:
    return counter(USERNAME, username)


def pair_counter(username, address=ADDRESS) -> LoginThrottle:
    return counter(PAIR, f"{username}|{address_key(address)}")


def address_counter(address=ADDRESS) -> LoginThrottle:
    return counter(BY_ADDRESS, address_key(address))


def sign_in_failed_events():
    return AuditEvent.objects.filter(action="auth.sign_in_failed")


def reasons(events) -> list[str]:
    return [changes_of(event)["reason"] for event in events.order_by("sequence")]


def lock_events():
    return AuditEvent.objects.filter(action="auth.sign_in_locked").order_by("sequence")


# Counting before checking


def test_an_attempt_is_counted_before_its_credential_is_checked_and_success_takes_it_back():
    assert sign_in_attempt_reserve(username=" DrWho ", address=ADDRESS) is None

    # Counted already, as a failure, in all three counters.
    assert pair_counter("drwho").failures == 1
    assert username_counter("drwho").failures == 1
    assert address_counter().failures == 1

    sign_in_attempt_succeeded(username="drwho", address=ADDRESS)

    # Only this attempt's own count is taken back, in every counter.
    assert pair_counter("drwho").failures == 0
    assert username_counter("drwho").failures == 0
    assert address_counter().failures == 0


def test_a_completed_sign_in_forgets_the_username_but_not_the_address():
    for _ in range(2):
        sign_in_failure_record(username="drwho", address=ADDRESS)
    sign_in_completed(username="drwho", address=ADDRESS)
    assert not LoginThrottle.objects.filter(scope__in=[PAIR, USERNAME]).exists()
    assert address_counter().failures == 2


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", ""),
        ("not-an-address", ""),
    ],
)
def test_address_keys_count_an_ipv6_64_as_one_address(address, key):
    assert address_key(address) == key


def test_an_attempt_without_an_address_counts_the_username_only():
    assert sign_in_attempt_reserve(username="drwho", address="") is None

    assert username_counter("drwho").failures == 1
    assert pair_counter("drwho", "").failures == 1
    assert not LoginThrottle.objects.filter(scope=BY_ADDRESS).exists()


# Slowing down


def test_failures_below_the_threshold_only_get_the_generic_error(client, clock, limits, physician):
    fail(client, physician.username, limits["slow_down_after"] - 1)

    assert not signed_in(client)
    # No wait yet: the right password is heard at once.
    response = attempt(client, physician.username, TEST_PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_from_the_threshold_the_next_attempt_waits_and_is_not_checked(
    client, clock, limits, physician, passwords_checked
):
    fail(client, physician.username, limits["slow_down_after"])
    assert len(passwords_checked) == limits["slow_down_after"]
    failures = username_counter(physician.username).failures
    events = sign_in_failed_events().count()

    # Within the delay even the right password is refused, and it is not checked.
    status, error = shown(attempt(client, physician.username, TEST_PASSWORD))
    assert (status, error) == (200, "Too many attempts. Please wait 1 second and try again.")
    assert not signed_in(client)
    # A wrong password within the delay is not heard either: not counted, only recorded.
    assert refused_for_seconds(attempt(client, physician.username, WRONG_PASSWORD))
    assert username_counter(physician.username).failures == failures
    assert pair_counter(physician.username).failures == failures
    refused = sign_in_failed_events().order_by("sequence")[events:]
    assert [changes_of(event) for event in refused] == [{"reason": "throttled"}] * 2
    assert {event.actor_username for event in refused} == {physician.username}
    assert len(passwords_checked) == limits["slow_down_after"]

    clock.advance(seconds=1)
    response = attempt(client, physician.username, TEST_PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_the_delay_doubles_with_each_further_failure(client, clock, limits, physician):
    fail(client, physician.username, limits["slow_down_after"])
    clock.advance(seconds=1)
    fail(client, physician.username, 1)

    error = shown(attempt(client, physician.username, TEST_PASSWORD))[1]
    assert error == "Too many attempts. Please wait 2 seconds and try again."
    clock.advance(seconds=1)
    error = shown(attempt(client, physician.username, TEST_PASSWORD))[1]
    assert error == "Too many attempts. Please wait 1 second and try again."
    clock.advance(seconds=1)
    assert attempt(client, physician.username, TEST_PASSWORD).status_code == 302


def test_the_delay_stops_growing_at_max_delay_seconds(client, clock, limits, physician):
    wait = limits["max_delay_seconds"] + 1
    # Just short of the lock, far enough for 2 ** n seconds to pass the cap.
    failures = limits["lock_after"] - 1
    assert 2 ** (failures - limits["slow_down_after"]) > limits["max_delay_seconds"]
    fail(client, physician.username, failures, clock=clock, wait_seconds=wait)

    error = shown(attempt(client, physician.username, TEST_PASSWORD))[1]

    assert (
        error
        == f"Too many attempts. Please wait {limits['max_delay_seconds']} seconds and try again."
    )


def test_usernames_in_another_case_or_with_spaces_share_the_counters(
    client, clock, limits, physician
):
    fail(client, physician.username.upper(), 1)
    fail(client, f"  {physician.username.title()} ", limits["slow_down_after"] - 1)

    assert username_counter(physician.username).failures == limits["slow_down_after"]
    assert pair_counter(physician.username).failures == limits["slow_down_after"]
    assert LoginThrottle.objects.filter(scope=USERNAME).count() == 1
    assert LoginThrottle.objects.filter(scope=PAIR).count() == 1
    assert refused_for_seconds(attempt(client, physician.username, TEST_PASSWORD))
    # Each attempt is recorded with the username as it was typed (trimmed).
    typed = [event.actor_username for event in sign_in_failed_events().order_by("sequence")]
    assert typed == ["DRWHO", "Drwho", "Drwho", "drwho"]
    assert reasons(sign_in_failed_events()) == ["password"] * 3 + ["throttled"]


# Locking one address out of one username


def test_lock_after_failures_from_one_address_lock_the_username_there_for_lock_minutes(
    client, clock, limits, physician
):
    wait = limits["max_delay_seconds"] + 1
    fail(client, physician.username, limits["lock_after"], clock=clock, wait_seconds=wait)
    assert user_is_locked(user=physician)
    assert pair_counter(physician.username).locked_until is not None
    assert username_counter(physician.username).locked_until is None

    clock.advance(seconds=wait)  # past any slow-down delay: only the lock remains
    remaining = limits["lock_minutes"] * 60 - wait
    status, error = shown(attempt(client, physician.username, TEST_PASSWORD))
    assert status == 200
    assert error == (
        f"Too many attempts. Please wait {round(remaining / 60)} minutes and try again."
    )
    assert not signed_in(client)

    clock.advance(seconds=remaining - 1)
    assert refused_for_seconds(attempt(client, physician.username, TEST_PASSWORD))
    assert not signed_in(client)

    clock.advance(seconds=1)
    assert not user_is_locked(user=physician)
    assert attempt(client, physician.username, TEST_PASSWORD).status_code == 302
    assert signed_in(client)


def test_a_new_lock_is_audited_once_with_its_scope(client, clock, limits, physician):
    wait = limits["max_delay_seconds"] + 1
    fail(client, physician.username, limits["lock_after"], clock=clock, wait_seconds=wait)
    # Refused attempts while locked set no new lock.
    for _ in range(3):
        clock.advance(seconds=wait)
        assert refused_for_minutes(attempt(client, physician.username, WRONG_PASSWORD))

    event = lock_events().get()
    assert changes_of(event) == {"scope": "pair"}
    assert event.changed_fields == ["scope"]
    assert event.actor is None
    assert event.actor_username == physician.username
    assert event.category == "authentication"
    assert event.kind == "login_failed"
    assert event.ip_address == ADDRESS


def test_another_address_is_slowed_but_not_locked_out_by_one_addresss_failures(
    clock, limits, physician
):
    attacker, colleague = Client(), Client()
    wait = limits["max_delay_seconds"] + 1
    fail(attacker, physician.username, limits["lock_after"], clock=clock, wait_seconds=wait)
    assert pair_counter(physician.username).locked_until is not None

    # Elsewhere the username's failures only slow: a wait in seconds, never a lock.
    assert refused_for_seconds(attempt(colleague, physician.username, TEST_PASSWORD, OTHER_ADDRESS))
    assert not signed_in(colleague)
    clock.advance(seconds=limits["max_delay_seconds"])
    response = attempt(colleague, physician.username, TEST_PASSWORD, OTHER_ADDRESS)
    assert response.status_code == 302
    assert signed_in(colleague)

    # The colleague's success does not lift the lock on the guessing address.
    assert refused_for_minutes(attempt(attacker, physician.username, TEST_PASSWORD))
    assert not signed_in(attacker)


def test_after_username_lock_after_failures_from_many_addresses_the_username_is_locked_everywhere(
    client, clock, limits, physician
):
    wait = limits["max_delay_seconds"] + 1
    for number in range(limits["username_lock_after"]):
        address = f"10.1.{number // 200}.{number % 200 + 1}"
        fail(client, physician.username, 1, clock=clock, wait_seconds=wait, address=address)
    # Each address failed once only: no pair or address lock, the username's own.
    assert not LoginThrottle.objects.filter(scope__in=[PAIR, BY_ADDRESS], failures__gt=1).exists()
    assert username_counter(physician.username).locked_until is not None
    assert user_is_locked(user=physician)
    assert changes_of(lock_events().get()) == {"scope": "username"}

    clock.advance(seconds=wait)
    fresh = Client()
    assert refused_for_minutes(attempt(fresh, physician.username, TEST_PASSWORD, "192.0.2.99"))
    assert not signed_in(fresh)

    clock.advance(minutes=limits["lock_minutes"])
    assert attempt(fresh, physician.username, TEST_PASSWORD, "192.0.2.99").status_code == 302


def test_an_ipv6_64_counts_as_one_address(client, clock, limits, physician):
    wait = limits["max_delay_seconds"] + 1
    for number in range(limits["lock_after"]):
        address = f"2001:db8:1:2:{number + 1:x}::{number + 7:x}"
        fail(client, physician.username, 1, clock=clock, wait_seconds=wait, address=address)

    assert address_counter("2001:db8:1:2::1").failures == limits["lock_after"]
    assert pair_counter(physician.username, "2001:db8:1:2::1").locked_until is not None
    clock.advance(seconds=wait)
    # Any address in that /64 is the same source, and locked.
    assert refused_for_minutes(
        attempt(client, physician.username, TEST_PASSWORD, "2001:db8:1:2::ff")
    )
    assert not signed_in(client)
    # The next /64 is another source.
    elsewhere = Client()
    assert (
        attempt(elsewhere, physician.username, TEST_PASSWORD, "2001:db8:1:3::1").status_code == 302
    )
    assert signed_in(elsewhere)


def test_an_unknown_username_is_answered_exactly_like_a_known_one(clock, limits, physician):
    def answers(username, address):
        """Fail to the lock, trying once more at once after each failure; collect the answers."""
        client = Client()
        seen = []
        for _ in range(limits["lock_after"]):
            clock.advance(seconds=limits["max_delay_seconds"] + 1)
            seen.append(shown(attempt(client, username, WRONG_PASSWORD, address)))
            seen.append(shown(attempt(client, username, WRONG_PASSWORD, address)))
        seen.append(shown(attempt(client, username, TEST_PASSWORD, address)))
        assert not signed_in(client)
        return seen

    known = answers(physician.username, "10.0.0.1")
    unknown = answers("nobody-by-this-name", "10.0.0.2")

    assert unknown == known
    # Both went through every stage, so the comparison covered them all.
    errors = [error for _status, error in known]
    assert NOT_MATCHED in errors
    assert any(error.startswith(TOO_MANY) and "second" in error for error in errors)
    assert errors[-1].startswith(TOO_MANY) and errors[-1].endswith("minutes and try again.")
    assert {status for status, _error in known} == {200}
    assert pair_counter("nobody-by-this-name", "10.0.0.2").locked_until is not None


# Look-alike and overlong usernames


@pytest.mark.parametrize("typed", ["\u0131rina", "\u0130rina", "IR\u0130NA"])
def test_a_look_alike_username_does_not_find_the_real_user(
    client, clock, limits, passwords_checked, typed
):
    """A dotless or dotted capital i is another name, on every database, not "irina"."""
    irina = UserFactory(username="irina")

    response = attempt(client, typed, TEST_PASSWORD)

    assert shown(response) == (200, NOT_MATCHED)
    assert not signed_in(client)
    assert passwords_checked == [typed]
    # Counted under the name as typed (normalised), not under the real account's.
    assert not LoginThrottle.objects.filter(scope=USERNAME, key=irina.username).exists()
    assert username_counter(typed.strip().lower()).failures == 1
    # The real name, in any ASCII case, still finds the account.
    assert User.objects.get_by_natural_key(" IRINA ") == irina
    assert attempt(Client(), "IRINA", TEST_PASSWORD).status_code == 302


def test_the_longest_username_the_form_accepts_is_answered_normally(client, clock):
    longest = "x" * 150

    response = attempt(client, longest, WRONG_PASSWORD, "2001:db8:aaaa:bbbb:cccc::1")

    assert shown(response) == (200, NOT_MATCHED)
    assert username_counter(longest).failures == 1


# Resetting and forgetting


def test_a_successful_sign_in_resets_the_username_count(client, clock, limits, physician):
    below = limits["slow_down_after"] - 1
    fail(client, physician.username, below)
    assert attempt(client, physician.username, TEST_PASSWORD).status_code == 302
    assert not LoginThrottle.objects.filter(
        scope__in=[USERNAME, PAIR], key__startswith=physician.username
    ).exists()
    # The address keeps its count: signing in to one account must not wipe out the evidence
    # of guessing at others.
    assert address_counter().failures == below
    client.post("/accounts/logout/")

    # From a fresh address, so only the username's count could slow the next sign-in.
    fail(client, physician.username, below, address=OTHER_ADDRESS)
    assert username_counter(physician.username).failures == below
    response = attempt(client, physician.username, TEST_PASSWORD, OTHER_ADDRESS)
    assert response.status_code == 302


def test_failures_older_than_forget_after_are_forgotten(client, clock, limits, physician):
    fail(client, physician.username, limits["slow_down_after"] - 1)
    clock.advance(minutes=limits["forget_after_minutes"], seconds=1)

    fail(client, physician.username, 1)

    assert username_counter(physician.username).failures == 1
    assert username_counter(physician.username).blocked_until is None
    assert pair_counter(physician.username).failures == 1
    assert attempt(client, physician.username, TEST_PASSWORD).status_code == 302


def test_failures_within_forget_after_still_count(client, clock, limits, physician):
    fail(client, physician.username, limits["slow_down_after"] - 1)
    clock.advance(minutes=limits["forget_after_minutes"])

    fail(client, physician.username, 1)

    assert username_counter(physician.username).failures == limits["slow_down_after"]
    assert refused_for_seconds(attempt(client, physician.username, TEST_PASSWORD))


def test_throttles_purge_forgets_counters_untouched_for_a_day(clock, limits):
    for number in range(3):
        sign_in_failure_record(username=f"guess{number}", address=ADDRESS)
    counters = LoginThrottle.objects.count()
    assert counters == 3 * 2 + 1  # a pair and a username each, one address

    clock.advance(days=1, minutes=-1)
    assert throttles_purge() == 0
    assert LoginThrottle.objects.count() == counters

    clock.advance(minutes=2)
    assert throttles_purge() == counters
    assert not LoginThrottle.objects.exists()


# The source address


def test_failures_over_many_usernames_slow_then_lock_the_address(client, clock, limits):
    valid = UserFactory(username="validnurse", roles=[Role.NURSE])
    slow_after, lock_after = limits["address_slow_down_after"], limits["address_lock_after"]
    for number in range(slow_after):
        fail(client, f"guess{number}", 1)
    # Each username failed once, so only the address can be slowing this fresh one.
    assert refused_for_seconds(attempt(client, valid.username, TEST_PASSWORD))

    wait = limits["max_delay_seconds"] + 1
    for number in range(slow_after, lock_after):
        fail(client, f"guess{number}", 1, clock=clock, wait_seconds=wait)
    assert not LoginThrottle.objects.filter(
        scope__in=[USERNAME, PAIR], locked_until__isnull=False
    ).exists()
    assert address_counter().locked_until is not None
    assert changes_of(lock_events().get()) == {"scope": "address"}

    clock.advance(seconds=wait)
    assert refused_for_minutes(attempt(client, valid.username, TEST_PASSWORD))
    assert not signed_in(client)
    assert not user_is_locked(user=valid)

    # The same user from another address is not held up.
    elsewhere = Client()
    assert attempt(elsewhere, valid.username, TEST_PASSWORD, OTHER_ADDRESS).status_code == 302
    assert signed_in(elsewhere)


# The audit trail


def test_every_failed_attempt_is_audited_without_the_password(client, clock, limits, physician):
    attempts = [(physician.username, WRONG_PASSWORD), ("Nobody-By-This-Name", TEST_PASSWORD)]
    for username, password in attempts:
        clock.advance(seconds=limits["max_delay_seconds"] + 1)
        response = client.post(
            LOGIN,
            {"username": username, "password": password},
            REMOTE_ADDR=ADDRESS,
            HTTP_USER_AGENT="Mozilla/5.0 (Front desk)",
        )
        assert shown(response) == (200, NOT_MATCHED)

    events = list(sign_in_failed_events().order_by("sequence"))
    assert [event.actor_username for event in events] == [
        physician.username,
        "Nobody-By-This-Name",
    ]
    for event in events:
        assert changes_of(event) == {"reason": "password"}
        assert event.changed_fields == ["reason"]
        assert event.outcome == AuditEvent.Outcome.FAILURE
        assert event.category == "authentication"
        assert event.kind == "login_failed"
        assert event.actor is None
        assert event.actor_roles == ""
        assert event.ip_address == ADDRESS
        assert event.user_agent == "Mozilla/5.0 (Front desk)"
    everything = " ".join(str(row) for row in AuditEvent.objects.values_list())
    everything += " ".join(str(changes_of(event)) for event in AuditEvent.objects.all())
    assert WRONG_PASSWORD not in everything
    assert TEST_PASSWORD not in everything


def test_a_successful_sign_in_records_no_failure(client, physician):
    assert attempt(client, physician.username, TEST_PASSWORD).status_code == 302
    assert not sign_in_failed_events().exists()
    assert not LoginThrottle.objects.filter(scope__in=[USERNAME, PAIR]).exists()


def test_a_refused_attempt_is_audited_as_throttled_and_not_counted(
    client, limits, physician, passwords_checked
):
    for _ in range(limits["lock_after"]):
        sign_in_failure_record(username=physician.username, address=ADDRESS)
    counts = sorted(LoginThrottle.objects.values_list("scope", "key", "failures"))
    events = sign_in_failed_events().count()

    assert refused_for_minutes(attempt(client, physician.username, TEST_PASSWORD))
    assert refused_for_minutes(attempt(client, physician.username, WRONG_PASSWORD))

    assert reasons(sign_in_failed_events())[events:] == ["throttled", "throttled"]
    assert sorted(LoginThrottle.objects.values_list("scope", "key", "failures")) == counts
    assert passwords_checked == []


# Unlocking


def test_unlock_needs_the_manage_accounts_capability_and_lifts_the_lock(
    client, clock, limits, physician, admin_user
):
    colleague = UserFactory(roles=[Role.PHYSICIAN])
    for _ in range(limits["lock_after"]):
        sign_in_failure_record(username=physician.username, address=ADDRESS)
    assert user_is_locked(user=physician)

    with pytest.raises(AccessDenied):
        user_unlock(actor=colleague, user=physician)
    assert user_is_locked(user=physician)
    assert not AuditEvent.objects.filter(action="accounts.user_unlocked").exists()

    user_unlock(actor=admin_user, user=physician)

    assert not user_is_locked(user=physician)
    assert not LoginThrottle.objects.filter(scope__in=[USERNAME, PAIR]).exists()
    event = AuditEvent.objects.get(action="accounts.user_unlocked")
    assert event.actor == admin_user
    assert event.category == "accounts"
    assert (event.target_type, event.target_id) == ("accounts.user", str(physician.pk))
    # The address is still slowed for a second by its own failures (unlock is per user).
    assert refused_for_seconds(attempt(client, physician.username, TEST_PASSWORD))
    clock.advance(seconds=1)
    assert attempt(client, physician.username, TEST_PASSWORD).status_code == 302


def test_unlock_lifts_a_username_lock_too(limits, physician, admin_user):
    for number in range(limits["username_lock_after"]):
        sign_in_failure_record(username=physician.username, address=f"10.2.0.{number + 1}")
    assert username_counter(physician.username).locked_until is not None
    assert user_is_locked(user=physician)

    user_unlock(actor=admin_user, user=physician)

    assert not user_is_locked(user=physician)
    assert attempt(Client(), physician.username, TEST_PASSWORD, "10.2.0.1").status_code == 302


def test_a_lock_on_another_username_does_not_lock_this_user(limits, physician):
    for _ in range(limits["lock_after"]):
        sign_in_failure_record(username=f"{physician.username}x", address=ADDRESS)

    assert not user_is_locked(user=physician)


# Concurrency

# A shared-cache in-memory SQLite database (Django's default test database) answers a second
# writer with "database table is locked" at once instead of waiting; PostgreSQL and a SQLite
# file (BEGIN IMMEDIATE, busy timeout) queue the writers as production does.
postgresql_only = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's in-memory test database cannot queue concurrent writers; "
    "run with AMBULA_DATABASE_URL=postgres://... to cover this",
)


def all_at_once(calls: int, work) -> list[Exception]:
    """Run `work(number)` in `calls` threads released together; return what they raised."""
    start = threading.Barrier(calls)
    errors = []

    def run(number):
        try:
            start.wait()
            work(number)
        except Exception as error:  # reported by the caller's assertion, not lost in a thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return errors


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_all_counted():
    calls = 8

    errors = all_at_once(
        calls, lambda _number: sign_in_failure_record(username="contested", address=ADDRESS)
    )

    assert errors == []
    assert username_counter("contested").failures == calls
    assert pair_counter("contested").failures == calls
    assert address_counter().failures == calls


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_simultaneous_wrong_passwords_get_at_most_slow_down_after_checks(
    monkeypatch, limits, physician, passwords_checked
):
    """Reserved under row locks: attempts racing in together cannot all pass the threshold."""
    frozen = timezone_now()
    monkeypatch.setattr(throttling, "timezone_now", lambda: frozen)
    calls = 12
    answers = []

    def guess(number):
        # Each from its own address: only the username's counter can hold them back.
        response = attempt(Client(), physician.username, WRONG_PASSWORD, f"10.3.0.{number + 1}")
        answers.append(shown(response))

    errors = all_at_once(calls, guess)

    assert errors == []
    assert len(passwords_checked) == limits["slow_down_after"]
    assert answers.count((200, NOT_MATCHED)) == limits["slow_down_after"]
    assert all(status == 200 for status, _error in answers)
    assert sum(error.startswith(TOO_MANY) for _status, error in answers) == (
        calls - limits["slow_down_after"]
    )
    assert reasons(sign_in_failed_events()).count("password") == limits["slow_down_after"]
    assert username_counter(physician.username).failures == limits["slow_down_after"]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_simultaneous_reservations_let_through_exactly_slow_down_after(monkeypatch, limits):
    frozen = timezone_now()
    monkeypatch.setattr(throttling, "timezone_now", lambda: frozen)
    results = []

    all_at_once(
        10,
        lambda number: results.append(
            sign_in_attempt_reserve(username="raced", address=f"10.4.0.{number + 1}")
        ),
    )

    assert results.count(None) == limits["slow_down_after"]
    assert len(results) == 10


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_simultaneous_right_passwords_of_one_user_all_sign_in(physician):
    """Two tabs, or a double click: one user signing in twice at once from one address.

    Two at a time stay below slow_down_after, so only a failure of the locking can refuse one.
    """
    statuses = []

    def sign_in_repeatedly(_number):
        for _round in range(15):
            statuses.append(attempt(Client(), physician.username, TEST_PASSWORD).status_code)

    errors = all_at_once(2, sign_in_repeatedly)

    assert errors == []
    assert statuses == [302] * 30
