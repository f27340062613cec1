from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.terminology.icd10 import (
    CodeRow,
    icd10_import_file,
    icd10_load,
    order_file_rows,
    package_rows,
    words_of,
)
from ambula.terminology.models import CodeSetRelease, Icd10Code, Icd10Word
from ambula.terminology.tests.factories import SAMPLE_CODES, load_sample_codes


def order_line(number: int, code: str, billable: bool, short: str, long: str) -> str:
    """One line of CMS's icd10cm_order file, laid out column by column."""
    return f"{number:05d} {code:<7} {int(billable)} {short:<60} {long}"


GOOD_LINES = [
    order_line(1, "A00", False, "Cholera", "Cholera"),
    order_line(2, "A000", True, "Cholera due to Vibrio cholerae 01, biovar cholerae",
               "Cholera due to Vibrio cholerae 01, biovar cholerae"),
    order_line(3, "E119", True, "Type 2 diabetes mellitus without complications",
               "Type 2 diabetes mellitus without complications"),
    order_line(4, "S72001A", True, "Fx unsp part of neck of right femur, init for clos fx",
               "Fracture of unspecified part of neck of right femur, initial encounter for "
               "closed fracture"),
]  # fmt: skip


def write_order_file(tmp_path: Path, lines: list[str], name="icd10cm_order_2026.txt") -> Path:
    path = tmp_path / name
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def words_for(code: str) -> set[str]:
    return set(Icd10Word.objects.filter(code=code).values_list("word", flat=True))


# Folding words


def test_words_are_folded_without_accents_distinct_and_cut_to_forty_characters():
    long_word = "x" * 55
    assert words_of("Sézary disease, SÉZARY  (type-2) " + long_word) == [
        "sezary",
        "disease",
        "type",
        "2",
        "x" * 40,
    ]
    assert words_of(" ,;-- ") == []


# The package


@pytest.mark.django_db
def test_loading_a_subset_of_the_package_keeps_codes_drops_chapters_and_blocks():
    rows = [row for row in package_rows() if row.code.startswith(("E11", "A0"))]
    assert "A00-A09" not in {row.code for row in rows}  # a block, not a code
    release = icd10_load(rows=rows, release="April 2026", source="simple_icd_10_cm")

    assert Icd10Code.objects.count() == len(rows) == release.code_count
    assert Icd10Code.objects.get(code="E11.9").billable
    assert not Icd10Code.objects.get(code="E11").billable
    assert Icd10Code.objects.get(code="E11.9").description == (
        "Type 2 diabetes mellitus without complications"
    )
    assert words_for("E11.9") == {"type", "2", "diabetes", "mellitus", "without", "complications"}
    stored = CodeSetRelease.objects.get(code_set="ICD-10-CM")
    assert (stored.release, stored.code_count) == ("April 2026", len(rows))


@pytest.mark.django_db
def test_loading_replaces_the_table_and_is_audited_as_system_work():
    load_sample_codes()
    icd10_load(
        rows=[CodeRow("I10", "Essential (primary) hypertension", True)], release="r2", source="s"
    )
    assert list(Icd10Code.objects.values_list("code", flat=True)) == ["I10"]
    assert not Icd10Word.objects.exclude(code="I10").exists()
    events = AuditEvent.objects.filter(action="terminology.code_set_loaded").order_by("sequence")
    assert events.count() == 2
    assert (events.last().actor_id, events.last().actor_username) == (None, "system")
    assert changes_of(events.last()) == {"release": "r2", "code_count": 1}


@pytest.mark.django_db
def test_an_empty_code_set_does_not_replace_the_table():
    load_sample_codes()
    with pytest.raises(ValidationError):
        icd10_load(rows=[], release="empty", source="nowhere")
    assert Icd10Code.objects.count() == len(SAMPLE_CODES)


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.PHYSICIAN, Role.FRONT_DESK, Role.PRIVACY_OFFICER])
def test_only_the_practice_administrator_may_load_codes_as_a_user(role):
    with pytest.raises(AccessDenied):
        icd10_load(rows=SAMPLE_CODES, release="x", source="y", actor=UserFactory(roles=[role]))
    assert not Icd10Code.objects.exists()
    admin = UserFactory(username="boss2", roles=[Role.ADMIN])
    icd10_load(rows=SAMPLE_CODES, release="x", source="y", actor=admin)
    assert AuditEvent.objects.get(action="terminology.code_set_loaded").actor_id == admin.pk


# CMS's order file


@pytest.mark.django_db
def test_a_cms_order_file_loads_with_dots_and_billable_flags(tmp_path):
    path = write_order_file(tmp_path, GOOD_LINES)
    release = icd10_import_file(path=path)

    codes = {code.code: code for code in Icd10Code.objects.all()}
    assert set(codes) == {"A00", "A00.0", "E11.9", "S72.001A"}
    assert not codes["A00"].billable and codes["S72.001A"].billable
    assert codes["S72.001A"].description.startswith("Fracture of unspecified part of neck")
    assert (release.release, release.code_count) == ("icd10cm_order_2026.txt", 4)
    assert release.source == str(path.resolve())


@pytest.mark.django_db
def test_a_file_with_bad_lines_names_each_one_and_loads_nothing(tmp_path):
    load_sample_codes()
    lines = [
        GOOD_LINES[0],
        "00002 A001",  # cut short
        order_line(3, "E1.9", True, "bad code", "A code with a dot in it"),
        order_line(4, "E119", True, "x", "x").replace(" 1 ", " 7 ", 1),  # a flag of 7
        order_line(5, "A00", False, "Cholera", "Cholera again"),  # a second A00
        "",  # blank lines are skipped, not errors
        GOOD_LINES[2],
    ]
    path = write_order_file(tmp_path, lines)
    with pytest.raises(ValidationError) as caught:
        icd10_import_file(path=path)
    messages = caught.value.messages
    assert [message.split(":")[0] for message in messages] == [
        "Line 2",
        "Line 3",
        "Line 4",
        "Line 5",
    ]
    assert "column 15 must be 0" in messages[2]
    assert "already on line 1" in messages[3]
    assert Icd10Code.objects.count() == len(SAMPLE_CODES)  # the previous table, untouched
    assert CodeSetRelease.objects.get().release == "test sample"


def test_a_file_that_is_not_utf8_or_empty_is_refused(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(
        (order_line(1, "C841", False, "S\xe9zary", "S\xe9zary disease")).encode("latin-1")
    )
    with pytest.raises(ValidationError, match="Line 1: not UTF-8"):
        order_file_rows(latin1)
    empty = write_order_file(tmp_path, [""], name="empty.txt")
    with pytest.raises(ValidationError, match="no codes"):
        order_file_rows(empty)


def test_past_twenty_bad_lines_the_rest_are_counted(tmp_path):
    path = write_order_file(tmp_path, [f"junk {number}" for number in range(1, 31)])
    with pytest.raises(ValidationError) as caught:
        order_file_rows(path)
    assert len(caught.value.messages) == 21
    assert caught.value.messages[-1] == "… and 10 more bad lines."


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=120)))
def test_any_text_either_reads_as_codes_or_is_refused_with_line_numbers(tmp_path, lines):
    path = tmp_path / "fuzz.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        rows = order_file_rows(path)
    except ValidationError as error:
        assert all(
            message.startswith(("Line ", "… and ", "The file holds no codes"))
            for message in error.messages
        )
    else:
        assert all(row.code[0].isalpha() and row.description for row in rows)


# The command


@pytest.mark.django_db
def test_the_command_imports_a_file_and_prints_the_count(tmp_path):
    output = StringIO()
    call_command("icd10", "import", str(write_order_file(tmp_path, GOOD_LINES)), stdout=output)
    assert "4 codes loaded in" in output.getvalue()
    assert Icd10Code.objects.count() == 4


@pytest.mark.django_db
def test_the_command_refuses_a_bad_file_saying_nothing_changed(tmp_path):
    path = write_order_file(tmp_path, ["not a code line"])
    with pytest.raises(CommandError, match="was not loaded \\(nothing changed\\)") as caught:
        call_command("icd10", "import", str(path))
    assert "Line 1" in str(caught.value)
    with pytest.raises(CommandError, match="no such file"):
        call_command("icd10", "import", str(tmp_path / "missing.txt"))


@pytest.mark.django_db
def test_load_if_empty_leaves_a_loaded_table_alone():
    load_sample_codes()
    output = StringIO()
    call_command("icd10", "load", "--if-empty", stdout=output)
    assert output.getvalue() == ""
    assert Icd10Code.objects.count() == len(SAMPLE_CODES)
