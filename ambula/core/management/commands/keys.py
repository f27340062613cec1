"""`ambula keys`: show, rotate and retire the encryption keys.

    ambula keys status               the active key, and how many values each key encrypts
    ambula keys rotate               add a key, make it active, re-encrypt everything under it
    ambula keys reencrypt            continue an interrupted rotation (= rotate --resume)
    ambula keys retire KEY_ID        delete a key that no value uses any more

Re-encryption walks every model with encrypted fields in batches ordered by pk, each batch in
its own transaction with its rows locked, and picks only values not yet under the active key:
stopping at any point loses nothing, and running it again carries on where it stopped. The
audit trail is append-only and is never rewritten; its values are counted, and keep their
keys from being retired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.db.models.functions import Greatest, StrIndex, Substr

from ambula.audit.services import record
from ambula.core.encryption import (
    KEY_ID_PATTERN,
    TOKEN_VERSION,
    DecryptionError,
    KeyRingError,
    decrypt,
    encrypt,
    is_token,
    key_ring,
    key_ring_add_key,
    key_ring_remove_key,
    token_key_id,
)
from ambula.core.fields import Ciphertext, EncryptedField, TokenColumn, token_columns
from ambula.core.storage import NOT_ENCRYPTED, encrypted_storages

DEFAULT_BATCH_SIZE = 500
_PREFIX = f"{TOKEN_VERSION}:"
# The longest key id ("k" and six digits) and its closing colon.
_KEY_ID_FIELD_LENGTH = 8


@dataclass
class ColumnUsage:
    column: TokenColumn
    values_by_key: Counter


@dataclass
class ReencryptResult:
    rows: Counter = field(default_factory=Counter)
    files: int = 0
    complete: bool = True


def column_key_usage(column: TokenColumn) -> Counter:
    """Count a column's values by the key that encrypts them (NOT_ENCRYPTED for others)."""
    attname = column.field.attname
    # The key id sits between the first and second colons; the database finds it, so counting
    # a large table moves a few numbers, not every token.
    after_version = Substr(models.F(attname), len(_PREFIX) + 1, _KEY_ID_FIELD_LENGTH)
    key_id_length = Greatest(StrIndex(after_version, models.Value(":")) - 1, models.Value(0))
    rows = (
        column.model._base_manager.filter(**{f"{attname}__isnull": False})
        .values(
            stored_prefix=Substr(models.F(attname), 1, len(_PREFIX)),
            stored_key_id=Substr(models.F(attname), len(_PREFIX) + 1, key_id_length),
        )
        .annotate(count=models.Count("*"))
        .order_by()
    )
    usage = Counter()
    for row in rows:
        if row["stored_prefix"] == "":
            continue  # an empty value, as the audit trail stores when nothing changed
        key_id = row["stored_key_id"]
        if row["stored_prefix"] == _PREFIX and key_id and KEY_ID_PATTERN.fullmatch(key_id):
            usage[key_id] += row["count"]
        else:
            usage[NOT_ENCRYPTED] += row["count"]
    return usage


def key_usage() -> list[ColumnUsage]:
    """Count every token column's values by key."""
    return [ColumnUsage(column, column_key_usage(column)) for column in token_columns()]


def reencrypt(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> ReencryptResult:
    """Re-encrypt under the active key every value and document not yet under it.

    Stops after `max_batches` batches if given (the result says whether it finished).
    """
    active_key_id = key_ring().active_key_id
    result = ReencryptResult()
    batches = 0
    for model, fields in _rewritable_models():
        label = model._meta.label_lower
        pending = _rows_not_under(model, fields, active_key_id)
        total = pending.count()
        last_pk = None
        while total:
            if max_batches is not None and batches >= max_batches:
                result.complete = False
                return result
            batch = _reencrypt_batch(
                model, fields, active_key_id, after_pk=last_pk, batch_size=batch_size
            )
            batches += 1
            if not batch:
                break
            last_pk = batch[-1]
            result.rows[label] += len(batch)
            report(f"{label}: {result.rows[label]} of {total} rows re-encrypted")
            if len(batch) < batch_size:
                break
    for storage in encrypted_storages():
        names = [name for name in storage.names() if _file_needs_reencryption(storage, name)]
        for start in range(0, len(names), batch_size):
            if max_batches is not None and batches >= max_batches:
                result.complete = False
                return result
            result.files += sum(
                storage.reencrypt(name) for name in names[start : start + batch_size]
            )
            batches += 1
            report(f"documents in {storage.location}: {result.files} of {len(names)} re-encrypted")
    return result


def _rewritable_models() -> list[tuple[type[models.Model], list[EncryptedField]]]:
    by_model: dict[type[models.Model], list[EncryptedField]] = {}
    for column in token_columns():
        if column.rewritable and isinstance(column.field, EncryptedField):
            by_model.setdefault(column.model, []).append(column.field)
    return sorted(by_model.items(), key=lambda item: item[0]._meta.label_lower)


def _rows_not_under(model, fields, active_key_id: str) -> models.QuerySet:
    active_prefix = f"{_PREFIX}{active_key_id}:"
    rows = model._base_manager.all()
    not_under_active = models.Q()
    for encrypted_field in fields:
        alias = f"{encrypted_field.attname}_stored_prefix"
        rows = rows.alias(
            **{alias: Substr(models.F(encrypted_field.attname), 1, len(active_prefix))}
        )
        not_under_active |= models.Q(**{f"{encrypted_field.attname}__isnull": False}) & ~models.Q(
            **{alias: active_prefix}
        )
    return rows.filter(not_under_active)


def _reencrypt_batch(model, fields, active_key_id: str, *, after_pk, batch_size: int) -> list:
    attnames = [encrypted_field.attname for encrypted_field in fields]
    with transaction.atomic():
        rows = _rows_not_under(model, fields, active_key_id)
        if after_pk is not None:
            rows = rows.filter(pk__gt=after_pk)
        # Locked, so a save in another process waits for this batch instead of being undone.
        batch = list(
            rows.select_for_update().order_by("pk").values_list("pk", *attnames)[:batch_size]
        )
        for pk, *stored_values in batch:
            updates = {}
            for encrypted_field, stored in zip(fields, stored_values, strict=True):
                if stored is None or _is_under(stored.token, active_key_id):
                    continue
                aad = encrypted_field.associated_data_for_pk(pk)
                try:
                    plaintext = decrypt(stored.token, aad=aad)
                except DecryptionError as error:
                    raise CommandError(
                        f"Cannot decrypt {model._meta.label_lower}.{encrypted_field.name} of row "
                        f"{pk}: {error} Repair or clear that value, then run "
                        "`ambula keys reencrypt` again."
                    ) from None
                updates[encrypted_field.attname] = Ciphertext(encrypt(plaintext, aad=aad))
            # update(), not save(): the row's other columns and updated_at stay as they were.
            model._base_manager.filter(pk=pk).update(**updates)
    return [row[0] for row in batch]


def _is_under(token: str, key_id: str) -> bool:
    return is_token(token) and token_key_id(token) == key_id


def _file_needs_reencryption(storage, name: str) -> bool:
    return storage.key_id_of(name) not in {key_ring().active_key_id, NOT_ENCRYPTED}


class Command(BaseCommand):
    help = "Show, rotate and retire the encryption keys."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser("status", help="show the keys and what each one encrypts")
        rotate = actions.add_parser(
            "rotate", help="add a new active key and re-encrypt every value under it"
        )
        rotate.add_argument(
            "--resume",
            action="store_true",
            help="add no key: finish re-encrypting under the active key (same as reencrypt)",
        )
        reencrypt_parser = actions.add_parser(
            "reencrypt", help="re-encrypt every value not yet under the active key"
        )
        for action_parser in (rotate, reencrypt_parser):
            action_parser.add_argument(
                "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="rows per transaction"
            )
            action_parser.add_argument(
                "--max-batches",
                type=int,
                help="stop after this many batches (continue later with `keys reencrypt`)",
            )
        retire = actions.add_parser("retire", help="delete a key no value uses any more")
        retire.add_argument("key_id", metavar="KEY_ID")

    def handle(self, *args, action: str, **options):
        handlers = {
            "status": self.status,
            "rotate": self.rotate,
            "reencrypt": self.reencrypt,
            "retire": self.retire,
        }
        try:
            handlers[action](**options)
        except (KeyRingError, DecryptionError, ImproperlyConfigured) as error:
            raise CommandError(str(error)) from None

    def status(self, **options):
        ring = key_ring()
        self.stdout.write(f"Keys from: {ring.source}")
        self.stdout.write(f"Active key: {ring.active_key_id}")
        usages = key_usage()
        totals = sum((usage.values_by_key for usage in usages), Counter())
        documents = self._document_usage()
        totals += sum(documents.values(), Counter())
        self.stdout.write("Encrypted values and documents per key:")
        for key_id in ring.key_ids:
            active = "  (active)" if key_id == ring.active_key_id else ""
            self.stdout.write(f"  {key_id}: {totals[key_id]}{active}")
        for key_id in sorted(set(totals) - set(ring.key_ids) - {NOT_ENCRYPTED}):
            self.stdout.write(
                self.style.ERROR(f"  {key_id}: {totals[key_id]}  (NOT IN THE KEY RING: unreadable)")
            )
        if totals[NOT_ENCRYPTED]:
            self.stdout.write(self.style.WARNING(f"  not encrypted: {totals[NOT_ENCRYPTED]}"))
        self.stdout.write("Per field:")
        for usage in usages:
            note = "" if usage.column.rewritable else "  (append-only: never re-encrypted)"
            self.stdout.write(f"  {usage.column.label}: {_describe(usage.values_by_key)}{note}")
        for location, counts in documents.items():
            self.stdout.write(f"  documents in {location}: {_describe(counts)}")

    def rotate(self, *, resume: bool, **options):
        if not resume:
            ring = key_ring_add_key()
            record(
                actor=None,
                action="encryption.key_rotated",
                category="encryption",
                changes={"active_key": ring.active_key_id},
            )
            self.stdout.write(f"Added key {ring.active_key_id}; it encrypts every new value.")
        self.reencrypt(**options)

    def reencrypt(self, *, batch_size: int, max_batches: int | None, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        active_key_id = key_ring().active_key_id
        self.stdout.write(f"Re-encrypting under {active_key_id} ...")
        result = reencrypt(batch_size=batch_size, max_batches=max_batches, report=self.stdout.write)
        rows = sum(result.rows.values())
        self.stdout.write(f"Re-encrypted {rows} rows and {result.files} documents.")
        if not result.complete:
            self.stdout.write("Stopped after --max-batches; `ambula keys reencrypt` continues.")
            return
        remaining = sum(
            count
            for usage in key_usage()
            if usage.column.rewritable
            for key_id, count in usage.values_by_key.items()
            if key_id != active_key_id
        )
        if remaining:
            # Saved meanwhile by a process that had not yet read the new key (within 30 s).
            self.stdout.write(
                self.style.WARNING(
                    f"{remaining} values are still under older keys; run "
                    "`ambula keys reencrypt` again."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Every rewritable value is under {active_key_id}.")
            )

    def retire(self, *, key_id: str, **options):
        ring = key_ring()
        if key_id not in ring.keys:
            raise CommandError(f"There is no key {key_id}; the keys are {', '.join(ring.key_ids)}.")
        if key_id == ring.active_key_id:
            raise CommandError(f"{key_id} is the active key; rotate to a new key first.")
        usages = [usage for usage in key_usage() if usage.values_by_key[key_id]]
        users = [f"{usage.column.label}: {usage.values_by_key[key_id]}" for usage in usages]
        users += [
            f"documents in {location}: {counts[key_id]}"
            for location, counts in self._document_usage().items()
            if counts[key_id]
        ]
        if users:
            if all(usage.column.rewritable for usage in usages):
                advice = "Run `ambula keys reencrypt` first."
            else:
                advice = (
                    "Append-only rows (the audit trail) are never re-encrypted: the key must "
                    "stay until they are purged at the end of their retention period."
                )
            raise CommandError(f"{key_id} still encrypts {'; '.join(users)}. {advice}")
        key_ring_remove_key(key_id)
        record(
            actor=None,
            action="encryption.key_retired",
            category="encryption",
            changes={"retired_key": key_id},
        )
        self.stdout.write(self.style.SUCCESS(f"Retired {key_id}: it is gone from {ring.source}."))

    def _document_usage(self) -> dict[str, Counter]:
        return {storage.location: storage.key_usage() for storage in encrypted_storages()}


def _describe(counts: Counter) -> str:
    if not counts:
        return "no values"
    return ", ".join(f"{key_id} {count}" for key_id, count in sorted(counts.items()))
