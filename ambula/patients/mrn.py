"""Medical record numbers: 8 digits, the last a Luhn check digit, so a mistyped MRN is caught."""


def luhn_check_digit(digits: str) -> str:
    total = 0
    for position, character in enumerate(reversed(digits)):
        value = int(character)
        if position % 2 == 0:  # every second digit from the right, starting with the last
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def mrn_from_number(number: int) -> str:
    """The MRN for the n-th patient: 7 digits from 1000001 on, then the check digit."""
    body = str(1_000_000 + number)
    return body + luhn_check_digit(body)


def mrn_is_valid(mrn: str) -> bool:
    # isascii: "²" and other Unicode digits pass isdigit() but are not MRN digits.
    return (
        len(mrn) == 8 and mrn.isascii() and mrn.isdigit() and luhn_check_digit(mrn[:-1]) == mrn[-1]
    )
