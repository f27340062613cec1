import pytest

from ambula.terminology.icd10 import CodeRow, icd10_load
from ambula.terminology.selectors import (
    CODE_CHARACTERS,
    WORD_CHARACTERS,
    _prefix_lookups,
    icd10_get,
    icd10_search,
)
from ambula.terminology.tests.factories import load_sample_codes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def codes():
    load_sample_codes()


def found(query: str, **options) -> list[str]:
    return [code.code for code in icd10_search(query, **options)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("E11", ["E11", "E11.65", "E11.9"]),
        ("e11", ["E11", "E11.65", "E11.9"]),
        ("E11.", ["E11", "E11.65", "E11.9"]),
        ("e11.9", ["E11.9"]),
        ("E119", ["E11.9"]),
        (" e11.6 ", ["E11.65"]),
        ("E1", ["E10.9", "E11", "E11.65", "E11.9"]),
        ("i10", ["I10"]),
        ("s72001a", ["S72.001A"]),
        ("S72.001A", ["S72.001A"]),
        ("E12", []),
    ],
)
def test_a_query_that_looks_like_a_code_matches_codes_by_prefix(query, expected):
    assert found(query) == expected


def test_words_match_by_prefix_billable_first_then_shortest():
    assert found("diab") == ["E10.9", "E11.9", "E11.65", "E11"]
    assert found("DIABETES") == ["E10.9", "E11.9", "E11.65", "E11"]


def test_every_word_must_match_in_any_order():
    assert found("type 2 diab") == ["E11.9", "E11.65", "E11"]
    assert found("diab mell 2 type") == ["E11.9", "E11.65", "E11"]
    assert found("fracture femur") == ["S72.001A"]
    assert found("femur fract neck") == ["S72.001A"]
    assert found("diabetes hyperglyc") == ["E11.65"]


def test_accents_and_case_do_not_matter():
    assert found("sezary") == ["C84.10", "C84.1"]
    assert found("SÉZARY DIS") == ["C84.10", "C84.1"]
    assert found("Sézary unspec") == ["C84.10"]


def test_a_one_character_word_must_be_a_whole_word():
    assert found("vitamin d") == ["E55.9"]
    assert found("hepatitis c") == ["B18.2"]
    assert found("type 1") == ["E10.9"]
    # No description has the word "x": the user is still typing it, so it narrows nothing yet.
    assert found("diab x") == found("diab")
    assert found("diabetes 2 x") == ["E11.9", "E11.65", "E11"]


def test_little_words_are_skipped():
    assert found("fracture of femur") == ["S72.001A"]
    assert found("diabetes with hyperglyc") == ["E11.65"]
    assert found("of") == []
    assert found("of the and") == []


def test_a_code_that_does_not_exist_is_read_as_words():
    assert found("b12") == ["D51.9"]  # B12 is no code; "Vitamin B12 deficiency" is


@pytest.mark.parametrize(
    "query", ["", "   ", "a", "e", "2", "a b", "-- ,", "xyzzy", "diabetes xyzzy", "essentials"]
)
def test_empty_one_letter_or_unmatched_queries_find_nothing(query):
    assert found(query) == []


def test_limit_and_billable_only():
    assert found("diab", limit=2) == ["E10.9", "E11.9"]
    assert found("diab", billable_only=True) == ["E10.9", "E11.9", "E11.65"]
    assert found("E11", billable_only=True) == ["E11.65", "E11.9"]


def test_a_huge_or_odd_query_is_cut_and_answered():
    assert found("diab " * 500) == ["E10.9", "E11.9", "E11.65", "E11"]
    assert found("'; DROP TABLE terminology_icd10code; --") == []
    assert found("100%_diab") == []


def test_a_new_release_is_searched_at_once():
    assert found("hypertens") == ["I10"]
    icd10_load(
        rows=[CodeRow("I15.0", "Renovascular hypertension", True)], release="next", source="t"
    )
    assert found("hypertens") == ["I15.0"]
    assert found("diab") == []


def test_get_accepts_any_case_with_or_without_the_dot():
    assert icd10_get("e119").code == "E11.9"
    assert icd10_get(" E11.9 ").code == "E11.9"
    assert icd10_get("i10").description == "Essential (primary) hypertension"
    assert icd10_get("E11.99") is None
    assert icd10_get("") is None


@pytest.mark.parametrize(
    ("prefix", "characters", "upper"),
    [
        ("diab", WORD_CHARACTERS, "diac"),
        ("fz", WORD_CHARACTERS, "g"),
        ("a9", WORD_CHARACTERS, "aa"),
        ("zz", WORD_CHARACTERS, None),
        ("E11.9", CODE_CHARACTERS, "E11.A"),
        ("A01.Z", CODE_CHARACTERS, "A02"),
    ],
)
def test_a_prefix_range_ends_just_past_everything_that_starts_with_it(prefix, characters, upper):
    lookups = _prefix_lookups(prefix, characters)
    assert (lookups["gte"], lookups["startswith"], lookups.get("lt")) == (prefix, prefix, upper)
