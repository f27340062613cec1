"""Model fields that encrypt their values at rest, and blind indexes to find rows by them.

An encrypted field stores one token (see ambula/core/encryption.py) in a text column, bound
to its place by the associated data ``"<db_table>.<column>.<pk>"``: a token copied to another
row or column fails to decrypt. ``from_db_value`` cannot see the row, so a loaded value stays
a `Ciphertext` until the attribute is read; the field's descriptor then decrypts it with the
instance's pk and keeps the plaintext on the instance. Saving encrypts whatever plaintext the
instance holds, under the active key.

What cannot work on ciphertext is refused loudly rather than silently wrong: filtering (other
than ``isnull``), ``QuerySet.update()`` and ``bulk_update()`` with plaintext, and saving a row
whose primary key is not yet known.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, FieldError, ValidationError
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.utils import timezone
from django.utils.dateparse import parse_date

from ambula.core.encryption import (
    DecryptionError,
    blind_index,
    decrypt,
    encrypt,
    is_token,
    token_key_id,
)

# The audit trail is append-only and hash-chained (its MAC covers each token), so its rows are
# never rewritten: rotation leaves them under the key they were written with. `keys status`
# and `keys retire` still count them.
APPEND_ONLY_MODELS = frozenset({"audit.auditevent"})
# Columns whose tokens come from encrypt() directly rather than from an encrypted field.
DIRECT_TOKEN_FIELDS = {"audit.auditevent": ("changes",)}
CONVERSION_BATCH_SIZE = 500
# An HMAC-SHA256 in hex; NULL where the source is.
BLIND_INDEX_DEFAULTS = {"max_length": 64, "db_index": True, "null": True, "blank": True}


class EncryptedFieldError(FieldError):
    """An encrypted field was used in a way that cannot work on ciphertext."""


class Ciphertext:
    """A token as stored, not yet decrypted: decrypting it needs the row's primary key."""

    __slots__ = ("token",)

    def __init__(self, token: str):
        self.token = token

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ciphertext) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:
        try:
            return f"<Ciphertext under {token_key_id(self.token)}>"
        except DecryptionError:
            return "<Ciphertext, malformed>"


class EncryptedAttribute(DeferredAttribute):
    """Decrypts a loaded value on first read, with the instance's pk; stores plaintext as set."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Ciphertext):
            value = self.field.decrypt_for(instance, value)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value


class EncryptedField(models.TextField):
    """Base class: a text column holding one token per value, NULL for None.

    Subclasses say how a value becomes bytes and back (`to_plaintext`, `from_plaintext`).
    """

    descriptor_class = EncryptedAttribute

    def to_plaintext(self, value) -> bytes:
        raise NotImplementedError

    def from_plaintext(self, plaintext: bytes):
        raise NotImplementedError

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if self.primary_key or self.unique or self.db_index:
            errors.append(
                checks.Error(
                    "An encrypted field cannot be a primary key, unique or indexed: equal "
                    "values encrypt differently.",
                    hint="Add a BlindIndexField for lookups by value.",
                    obj=self,
                    id="ambula.E101",
                )
            )
        if not self.model._meta.abstract and self.model._meta.pk.db_returning:
            errors.append(
                checks.Error(
                    "A model with encrypted fields needs its primary key before the insert, "
                    "not from the database: it is part of each value's associated data.",
                    hint="Inherit from ambula.core.models.BaseModel (UUIDv7 default).",
                    obj=self,
                    id="ambula.E102",
                )
            )
        return errors

    def associated_data(self, instance: models.Model) -> bytes:
        """Return the AAD binding a value to its table, column and row."""
        if instance.pk is None:
            raise EncryptedFieldError(
                f"{self._label} is encrypted with the row's primary key, which is not set: give "
                "the model a default primary key (BaseModel's UUIDv7) or set it before saving."
            )
        return self.associated_data_for_pk(instance.pk)

    def associated_data_for_pk(self, pk) -> bytes:
        pk_text = str(self.model._meta.pk.to_python(pk))
        return f"{self.model._meta.db_table}.{self.column}.{pk_text}".encode()

    def decrypt_for(self, instance: models.Model, ciphertext: Ciphertext):
        try:
            plaintext = decrypt(ciphertext.token, aad=self.associated_data(instance))
        except DecryptionError as error:
            raise DecryptionError(f"{self._label} of row {instance.pk}: {error}") from error
        return self.from_plaintext(plaintext)

    def from_db_value(self, value, expression, connection):
        return None if value is None else Ciphertext(value)

    def pre_save(self, model_instance, add):
        # Reading decrypts a loaded value, so an unchanged one is re-encrypted under the
        # active key: every save also moves the row forward in a key rotation.
        value = getattr(model_instance, self.attname)
        if value is None:
            return None
        token = encrypt(self.to_plaintext(value), aad=self.associated_data(model_instance))
        return Ciphertext(token)

    def get_db_prep_save(self, value, connection):
        if value is None:
            return None
        if isinstance(value, Ciphertext):
            return value.token
        if hasattr(value, "as_sql"):
            return value  # an expression, such as F() or the Case() of bulk_update()
        raise EncryptedFieldError(
            f"{self._label} is encrypted per row: set it on an instance and save() that; "
            "QuerySet.update(), bulk_update() and raw saves cannot encrypt it."
        )

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise EncryptedFieldError(
            f"{self._label} is encrypted: a query cannot compare its values ({lookup_name!r}), "
            "only test isnull. Look identifiers up through a BlindIndexField."
        )

    def get_transform(self, lookup_name):
        raise EncryptedFieldError(
            f"{self._label} is encrypted: a query cannot look inside its values ({lookup_name!r})."
        )

    @property
    def _label(self) -> str:
        model = getattr(self, "model", None)
        return f"{model._meta.label_lower}.{self.name}" if model else self.__class__.__name__


class EncryptedTextField(EncryptedField):
    """Encrypted text. For free text and secrets: note and message bodies, SSNs, insurance
    member ids, MFA shared secrets. Search identifiers through a BlindIndexField beside it.
    """

    def to_plaintext(self, value) -> bytes:
        return self.to_python(value).encode()

    def from_plaintext(self, plaintext: bytes) -> str:
        return plaintext.decode()


class EncryptedJSONField(EncryptedField):
    """Encrypted JSON. For structured clinical or personal data kept whole: questionnaire
    answers, history entries, contact details. A JSON null is stored as SQL NULL.
    """

    def __init__(self, *args, encoder=None, decoder=None, **kwargs):
        self.encoder = encoder
        self.decoder = decoder
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.encoder is not None:
            kwargs["encoder"] = self.encoder
        if self.decoder is not None:
            kwargs["decoder"] = self.decoder
        return name, path, args, kwargs

    def to_python(self, value):
        return value

    def to_plaintext(self, value) -> bytes:
        text = json.dumps(value, cls=self.encoder, ensure_ascii=False, separators=(",", ":"))
        return text.encode()

    def from_plaintext(self, plaintext: bytes):
        return json.loads(plaintext, cls=self.decoder)

    def validate(self, value, model_instance):
        super().validate(value, model_instance)
        try:
            self.to_plaintext(value)
        except TypeError:
            raise ValidationError(
                "Value must be valid JSON.", code="invalid", params={"value": value}
            ) from None

    def formfield(self, **kwargs):
        defaults = {"form_class": forms.JSONField, "encoder": self.encoder, "decoder": self.decoder}
        return super().formfield(**{**defaults, **kwargs})


class EncryptedDateField(EncryptedField):
    """An encrypted date. For dates that identify a person (HIPAA identifiers): date of birth,
    date of death, admission and discharge dates. Stored as ISO 8601 text before encryption.
    """

    default_error_messages = models.DateField.default_error_messages

    def to_python(self, value):
        if value is None:
            return None
        if isinstance(value, datetime.datetime):
            if settings.USE_TZ and timezone.is_aware(value):
                value = timezone.make_naive(value, timezone.get_default_timezone())
            return value.date()
        if isinstance(value, datetime.date):
            return value
        try:
            parsed = parse_date(value)
        except (TypeError, ValueError):
            parsed = None
        if parsed is None:
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            )
        return parsed

    def to_plaintext(self, value) -> bytes:
        return self.to_python(value).isoformat().encode()

    def from_plaintext(self, plaintext: bytes) -> datetime.date:
        return datetime.date.fromisoformat(plaintext.decode())

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.DateField, **kwargs})


class BlindIndexField(models.CharField):
    """A keyed hash (64 hex digits) of another field's normalised plaintext, for lookups.

    For identifiers found by exact value: SSN, insurance member id, another system's MRN. It
    reveals only which rows share a value; the key is the key ring's blind-index key, derived
    per `purpose`, so equal values under different purposes do not match. `normalize` must be
    a module-level function (migrations refer to it). Computed on every save; a save with
    `update_fields` must name the index together with its source.
    """

    def __init__(
        self,
        *args,
        source: str,
        purpose: str,
        normalize: Callable[[str], str] | None = None,
        **kwargs,
    ):
        self.source = source
        self.purpose = purpose
        self.normalize = normalize
        kwargs = {**BLIND_INDEX_DEFAULTS, **kwargs, "editable": False}
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs |= {"source": self.source, "purpose": self.purpose}
        if self.normalize is not None:
            kwargs["normalize"] = self.normalize
        for key, default in BLIND_INDEX_DEFAULTS.items():
            if kwargs.get(key) == default:
                del kwargs[key]
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if not self.purpose:
            errors.append(
                checks.Error("A blind index needs a purpose.", obj=self, id="ambula.E103")
            )
        try:
            self.model._meta.get_field(self.source)
        except FieldDoesNotExist:
            errors.append(
                checks.Error(
                    f"The blind index's source field {self.source!r} does not exist.",
                    obj=self,
                    id="ambula.E104",
                )
            )
        return errors

    def index_for(self, value) -> str | None:
        """Return the index of a plaintext value (None for None)."""
        if value is None:
            return None
        normalized = self.normalize(value) if self.normalize else value
        return blind_index(str(normalized), purpose=self.purpose)

    def pre_save(self, model_instance, add):
        source_field = model_instance._meta.get_field(self.source)
        value = self.index_for(getattr(model_instance, source_field.attname))
        setattr(model_instance, self.attname, value)
        return value


def blind_index_for(model: type[models.Model], field_name: str, value) -> str | None:
    """Return what to filter a BlindIndexField by to find rows whose source equals `value`.

    ``Patient.objects.filter(ssn_index=blind_index_for(Patient, "ssn_index", "123-45-6789"))``
    """
    field = model._meta.get_field(field_name)
    if not isinstance(field, BlindIndexField):
        raise TypeError(f"{model._meta.label_lower}.{field_name} is not a BlindIndexField.")
    return field.index_for(value)


# Where the tokens are: rotation, status and retirement walk these.


def encrypted_fields(model: type[models.Model]) -> list[EncryptedField]:
    """Return the encrypted fields stored in the model's own table."""
    return [
        field for field in model._meta.local_concrete_fields if isinstance(field, EncryptedField)
    ]


@dataclass(frozen=True)
class TokenColumn:
    """A column holding tokens: which model and field, and whether rotation may rewrite it."""

    model: type[models.Model]
    field: models.Field
    rewritable: bool

    @property
    def label(self) -> str:
        return f"{self.model._meta.label_lower}.{self.field.name}"


def token_columns() -> list[TokenColumn]:
    """Return every column holding tokens, in every installed model."""
    columns = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        label = model._meta.label_lower
        fields = encrypted_fields(model)
        fields += [model._meta.get_field(name) for name in DIRECT_TOKEN_FIELDS.get(label, ())]
        columns += [TokenColumn(model, field, label not in APPEND_ONLY_MODELS) for field in fields]
    return columns


# Turning an existing plaintext column into an encrypted one (and back), for data migrations.


def encrypt_plaintext_values(model: type[models.Model], field_name: str) -> int:
    """Encrypt values a column still holds in plaintext (after an AlterField to an encrypted
    field); return how many. Tokens already there are left alone, so it can run again.
    """
    field = model._meta.get_field(field_name)
    converted = 0
    for pk, stored in _stored_values(model, field):
        if is_token(stored.token):
            continue
        # The column's text is the plaintext's own serialisation (text, ISO date, JSON).
        token = encrypt(stored.token.encode(), aad=field.associated_data_for_pk(pk))
        model._base_manager.filter(pk=pk).update(**{field.attname: Ciphertext(token)})
        converted += 1
    return converted


def decrypt_values_to_plaintext(model: type[models.Model], field_name: str) -> int:
    """Write each value of an encrypted column back as plaintext (to reverse a migration)."""
    field = model._meta.get_field(field_name)
    converted = 0
    for pk, stored in _stored_values(model, field):
        if not is_token(stored.token):
            continue
        plaintext = decrypt(stored.token, aad=field.associated_data_for_pk(pk)).decode()
        plain_text_value = models.Value(plaintext, output_field=models.TextField())
        model._base_manager.filter(pk=pk).update(**{field.attname: plain_text_value})
        converted += 1
    return converted


def _stored_values(model, field):
    rows = model._base_manager.filter(**{f"{field.attname}__isnull": False}).order_by("pk")
    last_pk = None
    while True:
        batch_rows = rows if last_pk is None else rows.filter(pk__gt=last_pk)
        batch = list(batch_rows.values_list("pk", field.attname)[:CONVERSION_BATCH_SIZE])
        yield from batch
        if len(batch) < CONVERSION_BATCH_SIZE:
            return
        last_pk = batch[-1][0]
