"""Insurance: the practice's payer directory, and each patient's coverage with those payers.

Payers are not PHI, but the directory decides where claims go, so every change is audited.
Coverage is PHI: the member ID is encrypted at rest (the model's blind index lets the front
desk find a patient by the number on the card), and reading a patient's plans is audited.
"""

import re
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, can, require
from ambula.audit.services import record
from ambula.core.errors import AccessDenied, NotFound
from ambula.patients.models import Coverage, Document, Patient, Payer, member_id_form

PAYER_CATEGORY = "payer directory"
COVERAGE_CATEGORY = "coverage"

PAYER_FIELDS = ("name", "payer_id", "address_line", "city", "state", "postal_code", "phone")
MEMBER_ID_PATTERN = re.compile(r"^[A-Za-z0-9 -]{2,40}$")
SUBSCRIBER_FIELDS = (
    "subscriber_given_name",
    "subscriber_family_name",
    "subscriber_date_of_birth",
    "subscriber_sex",
)
# What coverage_add and coverage_update take besides the actor and the record itself.
COVERAGE_FIELDS = (
    "payer",
    "member_id",
    "plan_name",
    "group_number",
    "priority",
    "relationship",
    *SUBSCRIBER_FIELDS,
    "effective_from",
    "effective_to",
    "copay",
    "card_front",
    "card_back",
)
MASK = "•"

# Made-up insurers for the demo practice: no real company's name or electronic payer ID.
DEMO_PAYERS = [
    {
        "name": "Prairie Mutual Health",
        "payer_id": "AMB01",
        "address_line": "PO Box 4100",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "phone": "(217) 555-0101",
    },
    {
        "name": "Lakeshore Care Alliance",
        "payer_id": "AMB02",
        "address_line": "PO Box 2290",
        "city": "Chicago",
        "state": "IL",
        "postal_code": "60601",
        "phone": "(312) 555-0102",
    },
    {
        "name": "Heartland Benefit Plans",
        "payer_id": "AMB03",
        "address_line": "800 Harvest Way",
        "city": "Des Moines",
        "state": "IA",
        "postal_code": "50309",
        "phone": "(515) 555-0103",
    },
    {
        "name": "Riverbend Senior Advantage",
        "payer_id": "AMB04",
        "address_line": "PO Box 7310",
        "city": "Peoria",
        "state": "IL",
        "postal_code": "61602",
        "phone": "(309) 555-0104",
    },
    {
        "name": "Cardinal State Medical Assistance",
        "payer_id": "AMB05",
        "address_line": "PO Box 19000",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62702",
        "phone": "(217) 555-0105",
    },
    {
        "name": "Summit Peak Insurance",
        "payer_id": "AMB06",
        "address_line": "1200 Ridge Road",
        "city": "Denver",
        "state": "CO",
        "postal_code": "80202",
        "phone": "(303) 555-0106",
    },
    {
        "name": "Bluewater Workers' Health Trust",
        "payer_id": "AMB07",
        "address_line": "PO Box 560",
        "city": "Milwaukee",
        "state": "WI",
        "postal_code": "53202",
        "phone": "(414) 555-0107",
    },
    {
        "name": "Evergreen Family Health Plan",
        "payer_id": "AMB08",
        "address_line": "45 Cedar Street",
        "city": "Bloomington",
        "state": "IN",
        "postal_code": "47401",
        "phone": "(812) 555-0108",
    },
]


# --- The payer directory -----------------------------------------------------------------------


def may_add_payers(user) -> bool:
    """Tell whether the user may add a payer: those who run the practice, and the front desk
    (and clinicians), who meet new insurers at the desk."""
    return can(user, Capability.MANAGE_PRACTICE) or can(user, Capability.EDIT_DEMOGRAPHICS)


def normalized_payer_id(value: str) -> str:
    """Payer IDs are stored in capitals, so the unique column refuses "ab12" beside "AB12"."""
    return value.strip().upper()


def _clean_payer_details(details: dict) -> dict:
    unknown = set(details) - set(PAYER_FIELDS)
    if unknown:
        raise TypeError(f"Unknown payer fields: {', '.join(sorted(unknown))}")
    cleaned = {name: str(value or "").strip() for name, value in details.items()}
    if "payer_id" in cleaned:
        cleaned["payer_id"] = normalized_payer_id(cleaned["payer_id"])
    if "state" in cleaned:
        cleaned["state"] = cleaned["state"].upper()
    return cleaned


def _duplicate_payer_id_error(payer_id: str) -> ValidationError:
    return ValidationError(
        {
            "payer_id": ValidationError(
                _("Another payer in the directory already has the payer ID %(payer_id)s."),
                code="payer_id_taken",
                params={"payer_id": payer_id},
            )
        }
    )


def _save_payer(payer: Payer) -> None:
    """Validate and save; a payer ID already in the directory is a field error in any case."""
    taken = Payer.objects.filter(payer_id__iexact=payer.payer_id).exclude(pk=payer.pk).exists()
    if taken:
        raise _duplicate_payer_id_error(payer.payer_id)
    payer.full_clean()
    try:
        # The unique column settles a race with another clerk adding the same payer.
        with transaction.atomic():
            payer.save()
    except IntegrityError:
        raise _duplicate_payer_id_error(payer.payer_id) from None


@transaction.atomic
def payer_create(*, actor: User, **details) -> Payer:
    """Add a payer to the directory."""
    if not may_add_payers(actor):
        raise AccessDenied(code="capability_required")
    payer = Payer(**_clean_payer_details(details))
    _save_payer(payer)
    record(
        actor=actor,
        action="patients.payer_created",
        category=PAYER_CATEGORY,
        target=payer,
        changes={name: getattr(payer, name) for name in PAYER_FIELDS if getattr(payer, name)},
    )
    return payer


@transaction.atomic
def payer_update(*, actor: User, payer: Payer, **details) -> Payer:
    """Change a payer's name, payer ID or claims address."""
    require(actor, Capability.MANAGE_PRACTICE)
    payer = Payer.objects.select_for_update().get(pk=payer.pk)
    before = {name: getattr(payer, name) for name in PAYER_FIELDS}
    for name, value in _clean_payer_details(details).items():
        setattr(payer, name, value)
    _save_payer(payer)
    changes = {
        name: {"old": before[name], "new": getattr(payer, name)}
        for name in PAYER_FIELDS
        if before[name] != getattr(payer, name)
    }
    record(
        actor=actor,
        action="patients.payer_updated",
        category=PAYER_CATEGORY,
        target=payer,
        changes=changes,
    )
    return payer


def _set_payer_active(*, actor: User, payer: Payer, active: bool, action: str) -> Payer:
    require(actor, Capability.MANAGE_PRACTICE)
    payer = Payer.objects.select_for_update().get(pk=payer.pk)
    if payer.active == active:
        message = (
            _("The payer is already active.") if active else _("The payer is already inactive.")
        )
        raise ValidationError(message, code="unchanged")
    payer.active = active
    payer.save(update_fields=["active", "updated_at"])
    record(
        actor=actor,
        action=action,
        category=PAYER_CATEGORY,
        target=payer,
        changes={"active": {"old": not active, "new": active}},
    )
    return payer


@transaction.atomic
def payer_deactivate(*, actor: User, payer: Payer) -> Payer:
    """Take a payer out of use: no new coverage with it; existing plans and claims keep it."""
    return _set_payer_active(
        actor=actor, payer=payer, active=False, action="patients.payer_deactivated"
    )


@transaction.atomic
def payer_reactivate(*, actor: User, payer: Payer) -> Payer:
    """Put a deactivated payer back in use."""
    return _set_payer_active(
        actor=actor, payer=payer, active=True, action="patients.payer_reactivated"
    )


def payer_list(*, actor: User, query: str = "") -> QuerySet[Payer]:
    """The directory, active payers first, narrowed by a part of a name or payer ID."""
    require(actor, Capability.VIEW_DEMOGRAPHICS)
    payers = Payer.objects.all()
    text = query.strip()
    if text:
        payers = payers.filter(Q(name__icontains=text) | Q(payer_id__icontains=text))
    return payers.order_by("-active", "name")


def payer_get(*, actor: User, payer_id) -> Payer:
    """One payer of the directory (payers are not PHI: the read is not audited)."""
    require(actor, Capability.VIEW_DEMOGRAPHICS)
    try:
        return Payer.objects.get(pk=payer_id)
    except (Payer.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None


def active_payers() -> QuerySet[Payer]:
    """The payers new coverage may name."""
    return Payer.objects.filter(active=True).order_by("name")


# --- Coverage ----------------------------------------------------------------------------------


def masked_member_id(member_id: str) -> str:
    """Dots for all but the last four characters; a short ID shows at most half of itself."""
    compact = member_id_form(member_id)
    shown = 4 if len(compact) >= 6 else len(compact) // 2
    return MASK * 4 + compact[len(compact) - shown :] if shown else MASK * 4


def insurance_cards(patient: Patient) -> QuerySet[Document]:
    """The patient's scanned insurance cards, which a plan may point to."""
    return patient.documents.filter(
        category=Document.Category.INSURANCE_CARD, entered_in_error=False
    )


def _validated_fields(*, patient: Patient, fields: dict, current_payer_id=None) -> dict:
    """Shape the input and collect every field error at once, keyed by field name."""
    errors: dict[str, ValidationError] = {}
    fields["member_id"] = (fields.get("member_id") or "").strip()
    fields["plan_name"] = (fields.get("plan_name") or "").strip()
    fields["group_number"] = (fields.get("group_number") or "").strip()
    member_id = fields["member_id"]
    if not member_id:
        errors["member_id"] = ValidationError(_("Enter the member ID."), code="required")
    elif not MEMBER_ID_PATTERN.match(member_id) or len(member_id_form(member_id)) < 2:
        errors["member_id"] = ValidationError(
            _("2 to 40 letters, digits, dashes or spaces, as printed on the card."),
            code="invalid_member_id",
        )

    payer = fields["payer"]
    if not payer.active and payer.pk != current_payer_id:
        errors["payer"] = ValidationError(
            _("%(name)s is no longer in use: choose another payer."),
            code="payer_inactive",
            params={"name": payer.name},
        )

    if fields["relationship"] == Coverage.Relationship.SELF:
        # The patient is the subscriber: nothing about anyone else is kept.
        fields.update(
            subscriber_given_name="",
            subscriber_family_name="",
            subscriber_date_of_birth=None,
            subscriber_sex="",
        )
    else:
        for name in ("subscriber_given_name", "subscriber_family_name"):
            fields[name] = (fields.get(name) or "").strip()
        for name in SUBSCRIBER_FIELDS:
            if not fields.get(name):
                errors[name] = ValidationError(
                    _("Required for this relationship."),
                    code="subscriber_required",
                )
        born = fields.get("subscriber_date_of_birth")
        if born and born > localdate():
            errors["subscriber_date_of_birth"] = ValidationError(
                _("The date of birth cannot be in the future."), code="future_date"
            )

    starts, ends = fields.get("effective_from"), fields.get("effective_to")
    if starts and ends and ends < starts:
        errors["effective_to"] = ValidationError(
            _("The coverage ends before it starts."), code="dates_out_of_order"
        )

    for name in ("card_front", "card_back"):
        if fields.get(name) is None:
            continue
        # As it is now: it may have been struck out since the form was drawn.
        document = fields[name] = Document.objects.get(pk=fields[name].pk)
        if document.patient_id != patient.pk:
            errors[name] = ValidationError(
                _("That document is not in this patient's record."), code="other_patient"
            )
        elif document.category != Document.Category.INSURANCE_CARD or document.entered_in_error:
            errors[name] = ValidationError(_("Choose a scanned insurance card."), code="not_a_card")
    if errors:
        raise ValidationError(errors)
    return fields


def _priority_taken_error() -> ValidationError:
    return ValidationError(
        {
            "priority": ValidationError(
                _(
                    "The patient already has an active plan at this priority. End it first, or "
                    "choose another priority."
                ),
                code="priority_taken",
            )
        }
    )


def _check_priority_free(coverage: Coverage) -> None:
    # The caller holds the patient's row lock, so two clerks cannot both pass this check.
    if coverage.status != Coverage.Status.ACTIVE:
        return
    others = coverage.patient.coverages.filter(
        status=Coverage.Status.ACTIVE, priority=coverage.priority
    )
    if others.exclude(pk=coverage.pk).exists():
        raise _priority_taken_error()


def _described(coverage: Coverage, name: str) -> str:
    """A field's value as the audit trail keeps it: the member ID masked, others as text."""
    value = getattr(coverage, name)
    if name == "member_id":
        return masked_member_id(value)
    if name == "payer":
        return value.payer_id
    if name in ("card_front", "card_back"):
        return str(value.pk) if value else ""
    return "" if value is None else str(value)


@transaction.atomic
def coverage_add(
    *,
    actor: User,
    patient: Patient,
    payer: Payer,
    member_id: str,
    plan_name: str = "",
    group_number: str = "",
    priority: int,
    relationship: str,
    subscriber_given_name: str = "",
    subscriber_family_name: str = "",
    subscriber_date_of_birth: date | None = None,
    subscriber_sex: str = "",
    effective_from: date | None = None,
    effective_to: date | None = None,
    copay: Decimal | None = None,
    card_front: Document | None = None,
    card_back: Document | None = None,
) -> Coverage:
    """Record an active plan for the patient at a priority no other active plan holds."""
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    payer = Payer.objects.get(pk=payer.pk)  # as it is now: it may have been deactivated
    fields = _validated_fields(
        patient=patient,
        fields={
            "payer": payer,
            "member_id": member_id,
            "plan_name": plan_name,
            "group_number": group_number,
            "priority": priority,
            "relationship": relationship,
            "subscriber_given_name": subscriber_given_name,
            "subscriber_family_name": subscriber_family_name,
            "subscriber_date_of_birth": subscriber_date_of_birth,
            "subscriber_sex": subscriber_sex,
            "effective_from": effective_from,
            "effective_to": effective_to,
            "copay": copay,
            "card_front": card_front,
            "card_back": card_back,
        },
    )
    coverage = Coverage(patient=patient, **fields)
    _check_priority_free(coverage)
    coverage.full_clean()
    coverage.save()
    record(
        actor=actor,
        action="patients.coverage_added",
        category=COVERAGE_CATEGORY,
        target=coverage,
        patient=patient,
        changes={
            "payer": payer.payer_id,
            "priority": coverage.priority,
            "member_id": masked_member_id(coverage.member_id),
        },
    )
    return coverage


@transaction.atomic
def coverage_update(*, actor: User, coverage: Coverage, **details) -> Coverage:
    """Correct a plan's details (any of COVERAGE_FIELDS); a struck-out plan stays as it was."""
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    unknown = set(details) - set(COVERAGE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown coverage fields: {', '.join(sorted(unknown))}")
    patient = Patient.objects.select_for_update().get(pk=coverage.patient_id)
    coverage = Coverage.objects.select_for_update().get(pk=coverage.pk)
    if coverage.status == Coverage.Status.ENTERED_IN_ERROR:
        raise ValidationError(
            _("This plan was entered in error and can no longer be changed."), code="struck_out"
        )
    before = {name: _described(coverage, name) for name in COVERAGE_FIELDS}
    if "payer" in details:
        details["payer"] = Payer.objects.get(pk=details["payer"].pk)
    fields = _validated_fields(
        patient=patient,
        fields={name: getattr(coverage, name) for name in COVERAGE_FIELDS} | details,
        current_payer_id=coverage.payer_id,
    )
    for name, value in fields.items():
        setattr(coverage, name, value)
    _check_priority_free(coverage)
    coverage.full_clean()
    coverage.save()
    changes = {
        name: {"old": before[name], "new": _described(coverage, name)}
        for name in COVERAGE_FIELDS
        if before[name] != _described(coverage, name)
    }
    record(
        actor=actor,
        action="patients.coverage_updated",
        category=COVERAGE_CATEGORY,
        target=coverage,
        patient=patient,
        changes=changes,
    )
    return coverage


@transaction.atomic
def coverage_end(*, actor: User, coverage: Coverage, effective_to: date | None = None) -> Coverage:
    """End an active plan, today unless another last day is given; it moves to past plans."""
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    coverage = Coverage.objects.select_for_update().get(pk=coverage.pk)
    if coverage.status != Coverage.Status.ACTIVE:
        raise ValidationError(_("Only an active plan can be ended."), code="not_active")
    if effective_to is None:
        # A plan the card says ended earlier keeps that date.
        effective_to = min(localdate(), coverage.effective_to or localdate())
    if coverage.effective_from and effective_to < coverage.effective_from:
        raise ValidationError(
            {
                "effective_to": ValidationError(
                    _(
                        "The coverage ends before it starts. If it never applied, mark it entered "
                        "in error instead."
                    ),
                    code="dates_out_of_order",
                )
            }
        )
    before = {"status": coverage.status, "effective_to": _described(coverage, "effective_to")}
    coverage.status = Coverage.Status.ENDED
    coverage.effective_to = effective_to
    coverage.full_clean()
    coverage.save(update_fields=["status", "effective_to", "updated_at"])
    record(
        actor=actor,
        action="patients.coverage_ended",
        category=COVERAGE_CATEGORY,
        target=coverage,
        patient=coverage.patient,
        changes={
            "status": {"old": before["status"], "new": coverage.status},
            "effective_to": {"old": before["effective_to"], "new": str(effective_to)},
        },
    )
    return coverage


@transaction.atomic
def coverage_strike(*, actor: User, coverage: Coverage) -> Coverage:
    """Mark a plan entered in error: it leaves the chart and frees its priority."""
    require(actor, Capability.EDIT_DEMOGRAPHICS)
    coverage = Coverage.objects.select_for_update().get(pk=coverage.pk)
    if coverage.status == Coverage.Status.ENTERED_IN_ERROR:
        raise ValidationError(_("This plan is already marked entered in error."), code="unchanged")
    before = coverage.status
    coverage.status = Coverage.Status.ENTERED_IN_ERROR
    coverage.save(update_fields=["status", "updated_at"])
    record(
        actor=actor,
        action="patients.coverage_struck",
        category=COVERAGE_CATEGORY,
        target=coverage,
        patient=coverage.patient,
        changes={"status": {"old": before, "new": coverage.status}},
    )
    return coverage


def coverage_for_chart(*, actor: User, patient: Patient) -> list[Coverage]:
    """The patient's plans, active by priority then past ones, latest first (audited read).

    Each carries `masked_member_id`, which is what the chart shows.
    """
    require(actor, Capability.VIEW_DEMOGRAPHICS)
    plans = list(
        patient.coverages.exclude(status=Coverage.Status.ENTERED_IN_ERROR)
        .select_related("payer", "card_front", "card_back")
        .annotate(
            ended=Case(
                When(status=Coverage.Status.ACTIVE, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("ended", "priority", "-effective_to", "-created_at")
    )
    for plan in plans:
        plan.masked_member_id = masked_member_id(plan.member_id)
    record(
        actor=actor, action="patients.coverage_viewed", category=COVERAGE_CATEGORY, patient=patient
    )
    return plans


def coverage_get(*, actor: User, patient: Patient, coverage_id) -> Coverage:
    """One plan of the patient, member ID in full, for its edit form (audited read)."""
    require(actor, Capability.VIEW_DEMOGRAPHICS)
    try:
        coverage = patient.coverages.select_related("payer").get(pk=coverage_id)
    except (Coverage.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None
    record(
        actor=actor,
        action="patients.coverage_viewed",
        category=COVERAGE_CATEGORY,
        target=coverage,
        patient=patient,
    )
    return coverage
