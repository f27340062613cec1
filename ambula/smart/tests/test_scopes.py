import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambula.smart.scopes import Scopes


@pytest.mark.parametrize(
    ("text", "resource_type", "letter", "contexts"),
    [
        ("patient/Patient.rs", "Patient", "r", {"patient"}),
        ("patient/Patient.rs", "Patient", "s", {"patient"}),
        ("patient/Patient.rs", "Patient", "c", set()),
        ("patient/Patient.rs", "Appointment", "r", set()),
        ("user/*.cruds", "Appointment", "d", {"user"}),
        ("system/Appointment.c", "Appointment", "c", {"system"}),
        ("system/Appointment.c", "Appointment", "r", set()),
        ("patient/*.read", "Condition", "r", {"patient"}),
        ("patient/*.read", "Condition", "s", {"patient"}),
        ("patient/*.read", "Condition", "u", set()),
        ("user/Observation.write", "Observation", "c", {"user"}),
        ("user/Observation.write", "Observation", "u", {"user"}),
        ("user/Observation.write", "Observation", "r", set()),
        ("user/*.*", "Slot", "s", {"user"}),
        ("patient/*.rs user/Slot.rs", "Slot", "r", {"patient", "user"}),
    ],
)
def test_contexts_grant_letters(text, resource_type, letter, contexts):
    assert Scopes.parse(text).contexts(resource_type, letter) == frozenset(contexts)


def test_other_scopes_are_kept_apart():
    scopes = Scopes.parse("openid fhirUser launch/patient offline_access patient/*.rs")
    assert scopes.other == {"openid", "fhirUser", "launch/patient", "offline_access"}
    assert [str(scope) for scope in scopes.resources] == ["patient/*.rs"]
    assert not scopes.unknown


@pytest.mark.parametrize(
    "text",
    [
        "patient/Patient.sr",  # letters out of order
        "patient/Patient.x",
        "patient/Patient.",
        "clinic/Patient.rs",
        "patient/patient.rs",
        "Patient.rs",
        "launch",
        "admin",
        "patient/Patient.rs.extra",
    ],
)
def test_unknown_scopes_grant_nothing(text):
    scopes = Scopes.parse(text)
    assert scopes.unknown == {text}
    assert not scopes.resources


def test_granular_scopes_grant_nothing():
    scopes = Scopes.parse("patient/Observation.rs?category=laboratory")
    assert scopes.contexts("Observation", "r") == frozenset()
    assert scopes.ignored == {"patient/Observation.rs?category=laboratory"}
    assert not scopes.unknown


def test_empty_and_blank():
    for text in ("", "   ", None):
        scopes = Scopes.parse(text)
        assert not scopes
        assert str(scopes) == ""


def test_normalised_text_keeps_syntax_dedupes_and_merges():
    scopes = Scopes.parse("patient/*.read  user/Patient.s user/Patient.r openid openid")
    assert str(scopes) == "openid patient/*.read user/Patient.rs"
    assert Scopes.parse(str(scopes)) == scopes


def test_narrowing_never_widens():
    allowed = Scopes.parse("openid patient/Patient.rs patient/Appointment.r")
    asked = Scopes.parse("openid fhirUser patient/*.cruds user/Patient.rs")
    narrowed = asked.narrowed_to(allowed)
    assert str(narrowed) == "openid patient/Appointment.r patient/Patient.rs"
    assert narrowed.contexts("Patient", "c") == frozenset()
    assert narrowed.contexts("Patient", "r") == {"patient"}


def test_narrowing_a_specific_type_under_a_wildcard_keeps_the_type():
    narrowed = Scopes.parse("patient/Condition.read").narrowed_to(Scopes.parse("patient/*.rs"))
    assert str(narrowed) == "patient/Condition.read"


def test_narrowing_rewrites_a_cut_v1_scope_in_v2():
    narrowed = Scopes.parse("user/*.*").narrowed_to(Scopes.parse("user/*.rs"))
    assert str(narrowed) == "user/*.read"
    narrowed = Scopes.parse("user/*.*").narrowed_to(Scopes.parse("user/*.r"))
    assert str(narrowed) == "user/*.r"


def test_narrowing_drops_unknown_and_granular():
    narrowed = Scopes.parse("bogus patient/Observation.rs?code=1 patient/Patient.r").narrowed_to(
        Scopes.parse("patient/*.rs")
    )
    assert str(narrowed) == "patient/Patient.r"
    assert not narrowed.unknown and not narrowed.ignored


def test_huge_scope_string_is_parsed_without_trouble():
    names = [
        f"T{a}{b}{c}"
        for a in "abcdefghij"
        for b in "abcdefghij"
        for c in "abcdefghijklmnopqrstuvwxy"
    ]
    text = " ".join(f"patient/{name}.rs" for name in names) + " x" * 1000
    scopes = Scopes.parse(text)
    assert len(scopes.resources) == len(names)
    assert scopes.unknown == {"x"}


@given(st.text(max_size=200))
def test_parse_never_raises_and_narrowing_stays_within_bounds(text):
    allowed = Scopes.parse("patient/Patient.rs user/*.r")
    narrowed = Scopes.parse(text).narrowed_to(allowed)
    for scope in narrowed.resources:
        for letter in scope.letters:
            assert allowed.contexts(
                "Patient" if scope.resource_type == "*" else scope.resource_type, letter
            ) >= {scope.context}
