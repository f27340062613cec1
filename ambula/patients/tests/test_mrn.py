import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambula.patients.mrn import luhn_check_digit, mrn_from_number, mrn_is_valid


@pytest.mark.parametrize(
    ("digits", "check_digit"),
    [("7992739871", "3"), ("1000000", "8"), ("1000001", "6"), ("1000002", "4"), ("0", "0")],
)
def test_luhn_check_digit_of_known_values(digits, check_digit):
    assert luhn_check_digit(digits) == check_digit


def test_the_first_mrns():
    assert [mrn_from_number(number) for number in (1, 2, 10)] == [
        "10000016",
        "10000024",
        "10000107",
    ]


@given(st.integers(min_value=0, max_value=8_999_999))
def test_every_mrn_is_eight_digits_and_valid(number):
    mrn = mrn_from_number(number)
    assert len(mrn) == 8
    assert mrn.isdigit()
    assert mrn_is_valid(mrn)


@given(
    number=st.integers(min_value=0, max_value=8_999_999),
    position=st.integers(min_value=0, max_value=7),
    shift=st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_change_is_caught(number, position, shift):
    mrn = mrn_from_number(number)
    changed = str((int(mrn[position]) + shift) % 10)
    mistyped = mrn[:position] + changed + mrn[position + 1 :]
    assert not mrn_is_valid(mistyped)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1000001",
        "100000017",
        "1000001a",
        "1000-0016",
        " 10000016",
        "10000016 ",
        "10000018",
        "abcdefgh",
    ],
)
def test_non_digits_and_wrong_lengths_are_invalid(text):
    assert not mrn_is_valid(text)


def test_unicode_digits_are_invalid_not_an_error():
    assert not mrn_is_valid("²0000016")
