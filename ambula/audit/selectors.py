from datetime import date, datetime, time, timedelta
from uuid import UUID

from django.db.models import QuerySet
from django.utils.timezone import get_current_timezone

from ambula.accounts.policy import Capability, visible
from ambula.audit.models import AuditEvent
from ambula.core.errors import NotFound

SORTABLE_COLUMNS = (
    "sequence",
    "occurred_at",
    "actor_username",
    "action",
    "kind",
    "category",
    "outcome",
    "target_type",
    "patient_id",
    "ip_address",
)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=get_current_timezone())


def audit_event_list(
    *,
    actor,
    date_from: date | None = None,
    date_to: date | None = None,
    username: str = "",
    patient_id: UUID | None = None,
    action: str = "",
    kind: str = "",
    outcome: str = "",
    sort: str = "-sequence",
) -> QuerySet[AuditEvent]:
    """Audit events matching the filters, for those allowed to review the trail."""
    events = visible(actor, Capability.VIEW_AUDIT, AuditEvent.objects.all())
    if date_from:
        events = events.filter(occurred_at__gte=_start_of(date_from))
    if date_to:
        events = events.filter(occurred_at__lt=_start_of(date_to + timedelta(days=1)))
    if username:
        events = events.filter(actor_username__iexact=username.strip())
    if patient_id:
        events = events.filter(patient_id=patient_id)
    if action:
        events = events.filter(action=action)
    if kind:
        events = events.filter(kind=kind)
    if outcome:
        events = events.filter(outcome=outcome)
    column = sort.removeprefix("-")
    if column not in SORTABLE_COLUMNS:
        sort, column = "-sequence", "sequence"
    # The sequence breaks ties, so paging through equal values never skips or repeats a row.
    tiebreak = "-sequence" if sort.startswith("-") else "sequence"
    return events.order_by(sort, tiebreak) if column != "sequence" else events.order_by(sort)


def audit_event_get(*, actor, event_id) -> AuditEvent:
    try:
        return audit_event_list(actor=actor).get(pk=event_id)
    except (AuditEvent.DoesNotExist, ValueError):
        raise NotFound from None


def disclosures_for_patient(*, actor, patient_id: UUID, years: int = 6) -> QuerySet[AuditEvent]:
    """The accounting of disclosures: what left the practice about this patient (HIPAA 164.528)."""
    since = datetime.now(tz=get_current_timezone()) - timedelta(days=365 * years)
    return audit_event_list(actor=actor, patient_id=patient_id, kind="disclosure").filter(
        occurred_at__gte=since
    )
