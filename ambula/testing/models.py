"""Models only the test suite installs (AMBULA_TESTING=1, set by pytest_plugin.py)."""

from ambula.core.fields import (
    BlindIndexField,
    EncryptedDateField,
    EncryptedJSONField,
    EncryptedTextField,
)
from ambula.core.models import BaseModel


def digits_only(value: str) -> str:
    """Normalise an identifier typed with or without separators: "123-45-6789" -> "123456789"."""
    return "".join(character for character in value if character.isdigit())


class EncryptedSample(BaseModel):
    """One of each encrypted field, for the encryption tests and bench/encryption.py."""

    note = EncryptedTextField(null=True, blank=True)
    details = EncryptedJSONField(null=True, blank=True)
    birth_date = EncryptedDateField(null=True, blank=True)
    ssn = EncryptedTextField(null=True, blank=True)
    ssn_index = BlindIndexField(source="ssn", purpose="testing.ssn", normalize=digits_only)
