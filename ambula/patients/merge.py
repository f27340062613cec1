"""Merging a duplicate registration into the record that survives.

Every row that belongs to the duplicate moves to the survivor; the duplicate stays, marked
merged, as a pointer (old MRNs on paper and audit events naming its id still lead somewhere).
Where both records hold the same active entry (an allergy to the same substance, the same
problem code, the same plan), the duplicate's copy is struck out as entered in error rather
than deleted, so nothing is lost and the list shows it once.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require
from ambula.audit.services import record
from ambula.patients.models import (
    Allergy,
    Contact,
    Coverage,
    Document,
    HistoryEntry,
    Medication,
    Patient,
    Problem,
    SocialHistory,
)

CATEGORY = "demographics"
# Contact details the survivor lacks are taken from the duplicate.
FILLED_FIELDS = [
    "middle_name",
    "preferred_name",
    "mobile_phone",
    "home_phone",
    "work_phone",
    "email",
    "address_line",
    "city",
    "state",
    "postal_code",
    "preferred_language",
    "gender_identity",
    "pronouns",
]
MOVED = [Allergy, Problem, Medication, HistoryEntry, Document, Contact, Coverage]


def _strike_repeats(duplicate: Patient, survivor: Patient) -> dict[str, int]:
    """Strike the duplicate's active entries the survivor already has; count them."""
    struck = {}
    substances = survivor.allergies.filter(status="active").values(lower=Lower("substance"))
    struck["allergies"] = (
        duplicate.allergies.filter(status="active")
        .alias(lower=Lower("substance"))
        .filter(lower__in=substances)
        .update(status=Allergy.Status.ENTERED_IN_ERROR)
    )
    codes = survivor.problems.filter(status="active").values("code")
    struck["problems"] = duplicate.problems.filter(status="active", code__in=codes).update(
        status=Problem.Status.ENTERED_IN_ERROR
    )
    struck["coverage"] = 0
    survivor_plans = {
        coverage.priority: coverage for coverage in survivor.coverages.filter(status="active")
    }
    for coverage in duplicate.coverages.filter(status="active").select_related("payer"):
        kept = survivor_plans.get(coverage.priority)
        if kept is None:
            continue
        if kept.payer_id == coverage.payer_id and kept.member_id_index == coverage.member_id_index:
            coverage.status = Coverage.Status.ENTERED_IN_ERROR
            coverage.save(update_fields=["status", "updated_at"])
            struck["coverage"] += 1
        else:
            raise ValidationError(
                _(
                    "Both records have a different active %(priority)s plan. End one of them "
                    "first, then merge."
                ),
                params={"priority": coverage.get_priority_display().lower()},
                code="coverage_conflict",
            )
    return struck


@transaction.atomic
def patient_merge(*, actor: User, duplicate: Patient, survivor: Patient) -> Patient:
    """Move everything from `duplicate` into `survivor`; the duplicate becomes a pointer."""
    require(actor, Capability.MERGE_PATIENTS)
    if duplicate.pk == survivor.pk:
        raise ValidationError(_("A record cannot be merged into itself."), code="merge_into_self")
    # Lock both, always in the same order, so two merges of the same pair cannot deadlock.
    locked = {
        p.pk: p
        for p in Patient.objects.select_for_update()
        .filter(pk__in=[duplicate.pk, survivor.pk])
        .order_by("pk")
    }
    duplicate, survivor = locked[duplicate.pk], locked[survivor.pk]
    if duplicate.merged_into_id or survivor.merged_into_id:
        raise ValidationError(
            _("One of these records was already merged. Search again for the current record."),
            code="already_merged",
        )

    struck = _strike_repeats(duplicate, survivor)
    moved = {
        model._meta.verbose_name_plural: model.objects.filter(patient=duplicate).update(
            patient=survivor
        )
        for model in MOVED
    }
    social_discarded = _merge_social_history(duplicate, survivor)
    filled = [
        name for name in FILLED_FIELDS if not getattr(survivor, name) and getattr(duplicate, name)
    ]
    for name in filled:
        setattr(survivor, name, getattr(duplicate, name))
    if not survivor.ssn and duplicate.ssn:
        survivor.ssn = duplicate.ssn
        filled.append("ssn")
    if survivor.allergies.filter(status="active").exists():
        survivor.no_known_allergies = False
    elif duplicate.no_known_allergies:
        survivor.no_known_allergies = True
    survivor.restricted = survivor.restricted or duplicate.restricted
    survivor.save()

    duplicate.status = Patient.Status.MERGED
    duplicate.merged_into = survivor
    duplicate.save(update_fields=["status", "merged_into", "updated_at"])

    details = {
        "duplicate_mrn": duplicate.mrn,
        "survivor_mrn": survivor.mrn,
        "moved": {str(name): count for name, count in moved.items() if count},
        "struck_as_repeats": {name: count for name, count in struck.items() if count},
        "filled_fields": filled,
        "social_history_discarded": social_discarded,
    }
    for patient in (survivor, duplicate):
        record(
            actor=actor,
            action="patients.merged",
            category=CATEGORY,
            target=duplicate,
            patient=patient,
            changes=details,
        )
    return survivor


def _merge_social_history(duplicate: Patient, survivor: Patient) -> dict | None:
    """Keep one social history: the survivor's, or the duplicate's if it is the only one.

    Returns the duplicate's values when they were set aside (they stay in the audit event).
    """
    theirs = SocialHistory.objects.filter(patient=duplicate).first()
    if theirs is None:
        return None
    if not SocialHistory.objects.filter(patient=survivor).exists():
        theirs.patient = survivor
        theirs.save(update_fields=["patient", "updated_at"])
        return None
    discarded = {
        "tobacco": theirs.tobacco,
        "alcohol": theirs.alcohol,
        "occupation": theirs.occupation,
    }
    theirs.delete()
    return discarded
