import itertools
import threading

import pytest
from django.db import DatabaseError, connection, transaction

from ambula.audit import chain
from ambula.audit.models import AppendOnlyError, AuditChainHead, AuditEvent
from ambula.audit.services import batched, changes_of, record
from ambula.audit.tests import tamper

pytestmark = pytest.mark.django_db

EVENTS = 10


@pytest.fixture
def events():
    # No users are made here: creating one writes an event of its own.
    return [
        record(
            actor=None,
            username="someone",
            action="accounts.roles_changed",
            category="accounts",
            changes={"roles": {"old": ["nurse"], "new": ["physician", str(number)]}},
        )
        for number in range(EVENTS)
    ]


def mac_of_event(sequence: int) -> str:
    return AuditEvent.objects.get(sequence=sequence).mac


def test_an_intact_chain_verifies(events):
    verdict = chain.verify()
    assert verdict.intact
    assert verdict.count == EVENTS
    assert verdict.head_sequence == EVENTS
    assert verdict.head_mac == events[-1].mac == AuditChainHead.objects.get().mac


def test_events_link_to_the_one_before(events):
    assert [event.sequence for event in events] == list(range(1, EVENTS + 1))
    assert events[0].previous_mac == chain.GENESIS_MAC
    for before, after in itertools.pairwise(events):
        assert after.previous_mac == before.mac


def test_change_values_are_encrypted_and_readable_with_the_keys(events):
    stored = AuditEvent.objects.get(sequence=3)
    assert stored.changed_fields == ["roles"]
    assert "physician" not in stored.changes
    assert changes_of(stored) == {"roles": {"old": ["nurse"], "new": ["physician", "2"]}}
    assert stored.actor_username == "someone"
    assert stored.kind == "privilege_change"


def test_an_empty_trail_verifies():
    assert chain.verify().intact
    assert chain.verify().count == 0


def test_a_changed_field_is_found(events):
    tamper.change_action(5, "auth.signed_out")
    finding = chain.verify().finding
    assert (finding.sequence, finding.problem) == (5, "changed")


def test_a_deleted_event_is_found(events):
    tamper.delete(5)
    finding = chain.verify().finding
    assert (finding.sequence, finding.problem) == (5, "deleted")


def test_a_deleted_event_is_found_even_when_the_rest_is_renumbered(events):
    tamper.delete(5)
    tamper.renumber_after(5, by=-1)
    finding = chain.verify().finding
    assert (finding.sequence, finding.problem) == (5, "deleted")


def test_an_inserted_event_is_found(events):
    tamper.renumber_after(4, by=1)
    tamper.copy_row_as(3, new_sequence=5, previous_mac=mac_of_event(4), mac="f" * 64)
    finding = chain.verify().finding
    assert (finding.sequence, finding.problem) == (5, "inserted")


def test_an_event_appended_after_the_head_is_found(events):
    tamper.copy_row_as(3, new_sequence=EVENTS + 1, previous_mac=mac_of_event(EVENTS), mac="e" * 64)
    finding = chain.verify().finding
    assert (finding.sequence, finding.problem) == (EVENTS + 1, "inserted")


def test_swapped_events_are_found(events):
    tamper.swap(5, 6)
    finding = chain.verify().finding
    assert (finding.sequence, finding.problem) == (5, "reordered")


def test_a_truncated_tail_is_found_by_the_chain_head(events):
    for sequence in (8, 9, 10):
        tamper.delete(sequence)
    finding = chain.verify().finding
    assert (finding.sequence, finding.problem) == (8, "truncated")


def test_a_truncated_tail_is_found_by_an_anchor_even_if_the_head_is_rewound(events):
    anchors = [(EVENTS, mac_of_event(EVENTS))]
    for sequence in (8, 9, 10):
        tamper.delete(sequence)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditchainhead SET sequence = 7, mac = %s", [mac_of_event(7)])
    assert chain.verify().intact  # without the anchor the shortened chain looks whole
    finding = chain.verify(anchors).finding
    assert (finding.sequence, finding.problem) == (8, "truncated")


def test_a_chain_rebuilt_with_the_key_still_fails_its_anchor(events):
    anchors = [(5, "a" * 64)]
    finding = chain.verify(anchors).finding
    assert (finding.sequence, finding.problem) == (5, "changed")


def test_the_database_refuses_update_and_delete(events):
    for statement in (
        "UPDATE audit_auditevent SET action = 'x' WHERE sequence = 1",
        "DELETE FROM audit_auditevent WHERE sequence = 1",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.count() == EVENTS
    assert chain.verify().intact


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgres_refuses_truncate(events):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == EVENTS


def test_the_model_refuses_update_and_delete(events):
    event = AuditEvent.objects.get(sequence=1)
    event.action = "auth.signed_out"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(sequence=1).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def test_an_event_rolls_back_with_its_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor=None, action="auth.signed_in", category="authentication")
        raise RuntimeError("the change failed")
    assert not AuditEvent.objects.exists()
    record(actor=None, action="auth.signed_in", category="authentication")
    assert AuditEvent.objects.get().sequence == 1
    assert chain.verify().intact


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    "connection.vendor == 'sqlite'",
    reason="in-memory SQLite cannot queue writers; test_audit_cli covers a file database",
)
def test_concurrent_writers_keep_one_unbroken_chain(physician):
    writers, per_writer = 8, 25
    before = AuditEvent.objects.count()
    errors = []

    def write():
        try:
            for _ in range(per_writer):
                record(actor=physician, action="auth.signed_in", category="authentication")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    verdict = chain.verify()
    assert verdict.intact
    assert verdict.count == before + writers * per_writer


def test_anchor_lines_are_read_back(tmp_path):
    anchor_file = tmp_path / "anchors.txt"
    anchor_file.write_text(f"2026-11-28T07:00:00+00:00 12 {'b' * 64}\nnot an anchor\n")
    assert chain.read_anchors(anchor_file) == [(12, "b" * 64)]
    assert chain.read_anchors(tmp_path / "missing.txt") == []


@pytest.mark.parametrize(
    "address", ["::ffff:203.0.113.9", "fe80::1%eth0", "2001:DB8::1", "203.0.113.9"]
)
def test_addresses_in_any_form_keep_the_chain_verifiable(rf, address):
    from ambula.core.middleware import client_ip
    from ambula.logging import client_ip_var

    token = client_ip_var.set(client_ip(rf.get("/", REMOTE_ADDR=address)))
    try:
        record(actor=None, action="auth.signed_in", category="authentication")
    finally:
        client_ip_var.reset(token)
    assert chain.verify().intact
    assert AuditEvent.objects.get().ip_address is not None


def test_control_characters_from_clients_are_dropped_and_the_chain_holds():
    from ambula.logging import printable, user_agent_var

    token = user_agent_var.set(printable("Mozilla\x00evil\x1b[2J"))
    try:
        record(
            actor=None,
            username="nul\x00user",
            action="auth.sign_in_failed",
            category="authentication",
        )
    finally:
        user_agent_var.reset(token)
    event = AuditEvent.objects.get()
    assert event.actor_username == "nuluser"
    assert event.user_agent == "Mozillaevil[2J"
    assert chain.verify().intact


def test_a_batch_is_written_at_its_end_in_order_and_verifies(events):
    with batched():
        first = record(actor=None, username="a", action="audit.searched", category="audit")
        second = record(
            actor=None,
            username="b",
            action="audit.searched",
            category="audit",
            changes={"query": "x"},
        )
        assert AuditEvent.objects.count() == EVENTS  # nothing written yet
    assert (first.sequence, second.sequence) == (EVENTS + 1, EVENTS + 2)
    assert second.previous_mac == first.mac
    assert changes_of(AuditEvent.objects.get(sequence=EVENTS + 2)) == {"query": "x"}
    verdict = chain.verify()
    assert verdict.intact and verdict.head_sequence == EVENTS + 2


def test_a_batch_that_fails_records_nothing(events):
    with pytest.raises(RuntimeError), batched():
        record(actor=None, username="a", action="audit.searched", category="audit")
        raise RuntimeError("the page failed: nothing was shown")
    assert AuditEvent.objects.count() == EVENTS
    assert chain.verify().intact
