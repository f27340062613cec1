"""Version numbers: a new one only when the rendering changes; numbers never collide."""

import datetime as dt
import threading

import pytest
from django.db import connection

from ambula.fhir import versions
from ambula.fhir.models import ResourceVersion

MOMENT = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def resource(family: str) -> dict:
    return {"resourceType": "Patient", "id": "abc", "name": [{"family": family}]}


@pytest.mark.django_db
def test_the_same_rendering_keeps_its_version_and_a_change_makes_the_next():
    first = versions.stamp("Patient", "abc", resource("Ng"), MOMENT)
    again = versions.stamp("Patient", "abc", resource("Ng"), MOMENT)
    changed = versions.stamp("Patient", "abc", resource("Nguyen"), MOMENT)
    assert (first.version, again.version, changed.version) == (1, 1, 2)
    assert first.pk == again.pk
    stored = versions.history("Patient", "abc")
    assert [v.version for v in stored] == [2, 1]
    assert stored.get(version=1).content == resource("Ng")


@pytest.mark.django_db
def test_a_deletion_is_a_version_of_its_own():
    versions.stamp("Patient", "abc", resource("Ng"), MOMENT)
    deleted = versions.stamp("Patient", "abc", None, MOMENT, deleted=True)
    assert deleted.version == 2 and deleted.deleted and deleted.content is None
    assert versions.latest("Patient", "abc").deleted


@pytest.mark.django_db
def test_the_content_is_encrypted_at_rest():
    versions.stamp("Patient", "abc", resource("Zyxwvutsr"), MOMENT)
    with connection.cursor() as cursor:
        cursor.execute("SELECT content FROM fhir_resourceversion")
        (raw,) = cursor.fetchone()
    assert "Zyxwvutsr" not in str(raw)


@pytest.mark.skipif(
    connection.vendor == "sqlite" and not connection.settings_dict.get("TEST", {}).get("NAME"),
    reason="SQLite's in-memory test database cannot queue concurrent writers; CI's "
    "PostgreSQL run races them",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_get_distinct_numbers():
    errors = []

    def change(family: str) -> None:
        try:
            versions.stamp("Patient", "abc", resource(family), MOMENT)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(f"Name{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = sorted(ResourceVersion.objects.values_list("version", flat=True))
    assert numbers == [1, 2, 3, 4, 5, 6]
