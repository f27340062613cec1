"""Load the ICD-10-CM code set: from the `simple_icd_10_cm` package, or from CMS's order file.

Loading replaces the whole table in one transaction, so searches see the old release or the
new one, never half of each. It is system work (the CLI and first-time setup run it); a
signed-in user may run it only if they manage the practice.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _

from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.terminology.models import CodeSetRelease, Icd10Code, Icd10Word

CODE_SET = "ICD-10-CM"
WORD_LENGTH = Icd10Word._meta.get_field("word").max_length
DESCRIPTION_LENGTH = Icd10Code._meta.get_field("description").max_length
BATCH_SIZE = 5000
# The most errors one rejected file reports; past that the first ones are enough to fix it.
MAX_REPORTED_ERRORS = 20

# Without its dot: a letter, a digit, then one to five letters or digits (A00 ... S72.001A).
UNDOTTED_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")
ALPHANUMERIC_RUN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class CodeRow:
    code: str  # with its dot, e.g. "E11.9"
    description: str
    billable: bool


def fold(text: str) -> str:
    """Lower case without accents: what both the word index and a query are compared in."""
    if text.isascii():
        return text.lower()  # nearly every description: skip the Unicode work
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words_of(text: str) -> list[str]:
    """The distinct folded words of a text, in order, each cut to what the index stores."""
    return list(dict.fromkeys(word[:WORD_LENGTH] for word in ALPHANUMERIC_RUN.findall(fold(text))))


def dotted(code: str) -> str:
    """E119 -> E11.9: ICD-10-CM writes a dot after the category's three characters."""
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


# Reading the sources


def _package():
    with warnings.catch_warnings():
        # It reads its data with importlib.resources calls Python deprecates: not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm  # slow to import (it parses its XML): only when loading

    return simple_icd_10_cm


def package_release() -> str:
    """The release the installed package carries, e.g. "April 2026" (from its data file name)."""
    _package()
    for entry in resources.files("simple_icd_10_cm.data").iterdir():
        match = re.fullmatch(r"code-list-(.+)\.txt", entry.name)
        if match:
            return match.group(1).replace("-", " ")
    return "simple_icd_10_cm " + metadata.version("simple_icd_10_cm")


def package_rows() -> Iterator[CodeRow]:
    """Every category and code of the package's release (chapters and blocks are not codes)."""
    icd = _package()
    # A block holding a single category shares its name (block "B20" is category B20): once.
    for code in dict.fromkeys(icd.get_all_codes(True)):
        if icd.is_category_or_subcategory(code) or icd.is_extended_subcategory(code):
            yield CodeRow(code, icd.get_description(code), icd.is_leaf(code))


def _order_line_problem(line: str) -> str | None:
    """What is wrong with one line of CMS's icd10cm_order file, or None if it reads well."""
    if len(line) < 78:
        return _("too short for the fixed-width layout (a description starts at column 78)")
    if not line[:5].isdigit() or line[5] != " ":
        return _("columns 1-5 must be the order number, followed by a space")
    code = line[6:13].rstrip()
    if not UNDOTTED_CODE.match(code) or line[6:13] != code.ljust(7) or line[13] != " ":
        return _("columns 7-13 must be a code such as E119, followed by a space")
    if line[14] not in "01" or line[15] != " ":
        return _("column 15 must be 0 (category) or 1 (billable), followed by a space")
    if line[76] != " ":
        return _("column 77 must be a space between the short and long descriptions")
    description = line[77:].strip()
    if not description:
        return _("the long description (from column 78) is empty")
    if len(description) > DESCRIPTION_LENGTH:
        return _("the description is longer than %(limit)d characters") % {
            "limit": DESCRIPTION_LENGTH
        }
    return None


def order_file_rows(path: Path) -> list[CodeRow]:
    """Read CMS's icd10cm_order_YYYY.txt; a ValidationError names every bad line (up to 20)."""
    rows: list[CodeRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    with open(path, "rb") as source:
        for number, raw in enumerate(source, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                errors.append(_("Line %(number)d: not UTF-8 text.") % {"number": number})
                continue
            if not line.strip():
                continue  # a trailing blank line is not a code
            problem = _order_line_problem(line)
            code = line[6:13].strip()
            if problem is None and code in seen:
                problem = _("code %(code)s was already on line %(first)d") % {
                    "code": code,
                    "first": seen[code],
                }
            if problem:
                errors.append(
                    _("Line %(number)d: %(problem)s.") % {"number": number, "problem": problem}
                )
                continue
            seen[code] = number
            rows.append(CodeRow(dotted(code), line[77:].strip(), line[14] == "1"))
    if not rows and not errors:
        errors.append(_("The file holds no codes."))
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        if len(errors) > len(shown):
            shown.append(_("… and %(count)d more bad lines.") % {"count": len(errors) - len(shown)})
        raise ValidationError(shown, code="malformed_code_file")
    return rows


# Writing the table


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _empty_tables() -> None:
    # One DELETE each, words first: the ORM would fetch every code to cascade by hand.
    with connection.cursor() as cursor:
        for model in (Icd10Word, Icd10Code):
            cursor.execute(f"DELETE FROM {_table(model)}")  # noqa: S608


def _insert_words(rows: list[CodeRow]) -> None:
    # Close to a million rows: plain INSERTs skip building a model instance for each, which
    # would take longer than everything else the load does.
    # In word order, then code order, so the indexes grow at their end instead of splitting
    # pages all over: a few thousand distinct words, each with its codes already in order.
    codes_by_word: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda row: row.code):
        for word in words_of(row.description):
            codes_by_word.setdefault(word, []).append(row.code)
    pairs = [(word, code) for word in sorted(codes_by_word) for code in codes_by_word[word]]
    table = _table(Icd10Word)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and hasattr(cursor, "copy"):
            # psycopg 3's COPY: four times faster than INSERTs for this many rows.
            with cursor.copy(f"COPY {table} (word, code_id) FROM STDIN") as copy:
                for pair in pairs:
                    copy.write_row(pair)
            return
        # Several rows per INSERT, as many as the backend takes parameters.
        batch_size = (connection.features.max_query_params or 2000) // 2
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            rows_sql = ", ".join(["(%s, %s)"] * len(batch))
            cursor.execute(
                f"INSERT INTO {table} (word, code_id) VALUES {rows_sql}",  # noqa: S608
                [value for pair in batch for value in pair],
            )


@transaction.atomic
def icd10_load(*, rows: Iterable[CodeRow], release: str, source: str, actor=None) -> CodeSetRelease:
    """Replace the ICD-10-CM table with these codes and record which release it now holds.

    `actor` is None for system work (the CLI, first-time setup); a user must manage the practice.
    """
    if actor is not None:
        require(actor, Capability.MANAGE_PRACTICE)
    rows = list(rows)
    if not rows:
        raise ValidationError(_("A code set with no codes cannot replace the table."), code="empty")
    _empty_tables()
    Icd10Code.objects.bulk_create(
        (
            Icd10Code(code=row.code, description=row.description, billable=row.billable)
            for row in rows
        ),
        batch_size=BATCH_SIZE,
    )
    _insert_words(rows)
    if connection.vendor == "postgresql":
        # Fresh statistics now, not when autovacuum gets round to it: the planner needs them
        # to choose between reading a word's rows and probing the index code by code.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_table(Icd10Code)}, {_table(Icd10Word)}")
    loaded, _created = CodeSetRelease.objects.update_or_create(
        code_set=CODE_SET,
        defaults={
            "release": release[:60],
            "source": source[:200],
            "loaded_at": timezone_now(),
            "code_count": len(rows),
        },
    )
    record(
        actor=actor,
        username="system" if actor is None else "",
        action="terminology.code_set_loaded",
        category="code sets",
        target=loaded,
        changes={"release": loaded.release, "code_count": loaded.code_count},
    )
    return loaded


def icd10_load_package(*, actor=None) -> CodeSetRelease:
    """Load the release bundled with the simple_icd_10_cm package (April 2026)."""
    version = metadata.version("simple_icd_10_cm")
    return icd10_load(
        rows=package_rows(),
        release=package_release(),
        source=f"simple_icd_10_cm {version}",
        actor=actor,
    )


def icd10_import_file(*, path: Path, actor=None) -> CodeSetRelease:
    """Load CMS's icd10cm_order_YYYY.txt; a file with any bad line loads nothing."""
    path = Path(path)
    rows = order_file_rows(path)
    return icd10_load(rows=rows, release=path.name, source=str(path.resolve()), actor=actor)


def icd10_loaded() -> bool:
    """Whether any code is in the table (first-time setup loads it when not)."""
    return Icd10Code.objects.exists()
