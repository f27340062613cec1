"""The patient's history: past medical, surgical and family history, and social history.

History entries are only ever added or marked entered in error, never edited in place, so the
record shows what was said and when. Social history is one current row per patient, updated
in place, with every change's old and new values in the audit trail.
"""

from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.timezone import localdate
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.patients.models import HistoryEntry, Patient, SocialHistory

CATEGORY = "history"
SOCIAL_FIELDS = ("tobacco", "alcohol", "occupation")
SMOKER = {SocialHistory.Tobacco.EVERY_DAY, SocialHistory.Tobacco.SOME_DAYS}


def _today() -> date:
    """Today in the practice's time zone (the clock is `timezone_now`, which tests can move)."""
    return localdate(timezone_now())


def _check_year(*, year: int | None, kind: str, patient: Patient) -> None:
    if year is None:
        return
    if year > _today().year:
        raise ValidationError(
            {"year": ValidationError(_("The year is in the future."), code="future")}
        )
    # A relative's illness may well predate the patient; the patient's own cannot.
    if kind != HistoryEntry.Kind.FAMILY and year < patient.date_of_birth.year:
        raise ValidationError(
            {
                "year": ValidationError(
                    _("The year is before the patient was born (%(born)s)."),
                    code="before_birth",
                    params={"born": patient.date_of_birth.year},
                )
            }
        )


def _check_relation(*, relation: str, kind: str) -> None:
    if kind == HistoryEntry.Kind.FAMILY and not relation:
        raise ValidationError(
            {
                "relation": ValidationError(
                    _("Say who in the family had it (e.g. mother)."), code="relation_required"
                )
            }
        )
    if kind != HistoryEntry.Kind.FAMILY and relation:
        raise ValidationError(
            {
                "relation": ValidationError(
                    _("Only family history names a relation."), code="relation_not_family"
                )
            }
        )


@transaction.atomic
def history_add(
    *,
    actor: User,
    patient: Patient,
    kind: str,
    condition: str,
    relation: str = "",
    year: int | None = None,
    note: str = "",
) -> HistoryEntry:
    """Add a line of past medical, surgical or family history."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    relation = relation.strip()
    _check_relation(relation=relation, kind=kind)
    _check_year(year=year, kind=kind, patient=patient)
    entry = HistoryEntry(
        patient=patient,
        kind=kind,
        condition=condition.strip(),
        relation=relation,
        year=year,
        note=note.strip(),
    )
    entry.full_clean()
    entry.save()
    record(
        actor=actor,
        action="patients.history_added",
        category=CATEGORY,
        target=entry,
        patient=patient,
        changes={"kind": kind, "condition": entry.condition, "relation": relation, "year": year},
    )
    return entry


@transaction.atomic
def history_strike(*, actor: User, entry: HistoryEntry) -> HistoryEntry:
    """Mark a history entry entered in error: it leaves the chart but stays in the record."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    entry = HistoryEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.entered_in_error:
        raise ValidationError(
            _("This entry is already marked entered in error."), code="already_struck"
        )
    entry.entered_in_error = True
    entry.save(update_fields=["entered_in_error", "updated_at"])
    record(
        actor=actor,
        action="patients.history_struck",
        category=CATEGORY,
        target=entry,
        patient=entry.patient,
        changes={"entered_in_error": {"old": False, "new": True}},
    )
    return entry


@transaction.atomic
def social_history_update(
    *, actor: User, patient: Patient, tobacco: str, alcohol: str, occupation: str
) -> SocialHistory:
    """Record the patient's social history, or update it; an unchanged form records nothing."""
    require(actor, Capability.EDIT_CLINICAL_CHART)
    # The patient's row lock makes two first recordings take turns: the second one updates.
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    social = SocialHistory.objects.filter(patient=patient).first()
    created = social is None
    if created:
        social = SocialHistory(patient=patient)
    before = {field: None if created else getattr(social, field) for field in SOCIAL_FIELDS}
    social.tobacco, social.alcohol, social.occupation = tobacco, alcohol, occupation.strip()
    changes = {
        field: {"old": before[field], "new": getattr(social, field)}
        for field in SOCIAL_FIELDS
        if before[field] != getattr(social, field)
    }
    if not changes:
        return social
    social.full_clean()
    social.save()
    record(
        actor=actor,
        action="patients.social_history_recorded" if created else "patients.social_history_updated",
        category=CATEGORY,
        target=social,
        patient=patient,
        changes=changes,
    )
    return social


@dataclass(frozen=True)
class ChartHistory:
    medical: list[HistoryEntry]
    surgical: list[HistoryEntry]
    family: list[HistoryEntry]
    social: SocialHistory | None

    @property
    def is_empty(self) -> bool:
        return not (self.medical or self.surgical or self.family or self.social)

    @property
    def lists(self) -> list[tuple[str, str, list[HistoryEntry]]]:
        """(kind, title, entries) for each list, in the order the chart shows them."""
        return [
            (HistoryEntry.Kind.MEDICAL, _("Past medical history"), self.medical),
            (HistoryEntry.Kind.SURGICAL, _("Surgical history"), self.surgical),
            (HistoryEntry.Kind.FAMILY, _("Family history"), self.family),
        ]

    @property
    def smokes(self) -> bool:
        return self.social is not None and self.social.tobacco in SMOKER


def history_for_chart(*, actor: User, patient: Patient) -> ChartHistory:
    """The patient's history, latest first, without entries in error (the read is audited)."""
    require(actor, Capability.VIEW_CLINICAL_CHART)
    entries = patient.history.filter(entered_in_error=False).order_by(
        F("year").desc(nulls_last=True), "condition"
    )
    by_kind: dict[str, list[HistoryEntry]] = {kind: [] for kind in HistoryEntry.Kind.values}
    for entry in entries:
        by_kind[entry.kind].append(entry)
    history = ChartHistory(
        medical=by_kind[HistoryEntry.Kind.MEDICAL],
        surgical=by_kind[HistoryEntry.Kind.SURGICAL],
        family=by_kind[HistoryEntry.Kind.FAMILY],
        social=SocialHistory.objects.filter(patient=patient).first(),
    )
    record(actor=actor, action="patients.history_viewed", category=CATEGORY, patient=patient)
    return history
