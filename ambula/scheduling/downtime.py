"""What goes in the downtime kit: the next days' schedule and each booked patient's summary.

When Ambula is down (a power cut, a failed server, a ransomware scare) the practice still has
to know who is coming and who they are. `downtime_kit_contents` gathers the active appointments
from today for a few days and, for each booked patient, a summary: demographics, coverage,
allergies, problems and medications. `downtime_kit.downtime_kit_export` seals them into the
file and records the export.

Restricted records are included: the kit is the practice's own copy for its own staff in an
outage, when emergency access cannot be asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Lower
from django.utils import formats, timezone
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext as _

from ambula.accounts.models import User
from ambula.accounts.policy import Capability, require, visible
from ambula.core.selectors import practice_get
from ambula.patients.models import Allergy, Contact, Coverage, Medication, Patient, Problem
from ambula.scheduling.availability import practice_zone, wall_clock
from ambula.scheduling.models import ACTIVE_STATUSES, Appointment, Location

MIN_DAYS, MAX_DAYS = 1, 14


@dataclass(frozen=True)
class KitContents:
    data: dict  # what the page shows, ready for JSON
    patient_ids: list[UUID]
    appointment_count: int
    first_day: date
    last_day: date


def _checked_days(days: int) -> int:
    if not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValidationError(
            _("A downtime kit covers %(min)d to %(max)d days."),
            code="days_out_of_range",
            params={"min": MIN_DAYS, "max": MAX_DAYS},
        )
    return days


def location_named(name: str) -> Location:
    """The active location with this name (any case), or a ValidationError naming the choices."""
    try:
        return Location.objects.get(name__iexact=name.strip(), is_active=True)
    except Location.DoesNotExist:
        names = ", ".join(Location.objects.filter(is_active=True).values_list("name", flat=True))
        raise ValidationError(
            _("There is no active location named %(name)s. The locations: %(names)s."),
            code="unknown_location",
            params={"name": name, "names": names or _("none yet")},
        ) from None


def _appointments(
    actor: User | None, start: datetime, end: datetime, location: Location | None
) -> list[Appointment]:
    visits = Appointment.objects.filter(
        status__in=ACTIVE_STATUSES, starts_at__gte=start, starts_at__lt=end
    ).select_related("appointment_type", "provider__user", "location")
    if actor is not None:
        visits = visible(actor, Capability.VIEW_SCHEDULE, visits)
    if location is not None:
        visits = visits.filter(location=location)
    return list(visits.order_by("starts_at", "location__name", "provider__user__full_name"))


def _patients(patient_ids: set[UUID]) -> QuerySet[Patient]:
    """The booked patients with what their summaries show, in six queries whatever the number."""
    active = {"status": "active"}
    return (
        Patient.objects.filter(pk__in=patient_ids)
        .order_by("family_name", "given_name", "date_of_birth")
        .prefetch_related(
            Prefetch("allergies", Allergy.objects.filter(**active).order_by(Lower("substance"))),
            Prefetch("problems", Problem.objects.filter(**active).order_by("code")),
            Prefetch("medications", Medication.objects.filter(**active).order_by(Lower("name"))),
            Prefetch(
                "coverages",
                Coverage.objects.filter(**active).select_related("payer").order_by("priority"),
            ),
            Prefetch("contacts", Contact.objects.filter(kind=Contact.Kind.EMERGENCY)),
        )
    )


def _date(value: date | None) -> str:
    return formats.date_format(value, "Y-m-d") if value else ""


def _age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _allergies(patient: Patient) -> dict:
    entries = [
        {
            "substance": allergy.substance,
            "reaction": allergy.reaction,
            "severity": allergy.get_severity_display(),
        }
        for allergy in patient.allergies.all()
    ]
    if entries:
        state = "listed"
    elif patient.no_known_allergies:
        state = "none_known"
    else:
        state = "not_recorded"  # never asked: not the same as none
    return {"state": state, "entries": entries}


def _coverage(plan: Coverage) -> dict:
    subscriber = ""
    if plan.relationship != Coverage.Relationship.SELF:
        name = f"{plan.subscriber_given_name} {plan.subscriber_family_name}".strip()
        subscriber = f"{name} ({plan.get_relationship_display()})" if name else ""
    return {
        "priority": plan.get_priority_display(),
        "payer": plan.payer.name,
        "payer_id": plan.payer.payer_id,
        "payer_phone": plan.payer.phone,
        "plan": plan.plan_name,
        "member_id": plan.member_id,  # decrypted by its field: the card's number, in full
        "group": plan.group_number,
        "subscriber": subscriber,
        "copay": f"{plan.copay:.2f}" if plan.copay is not None else "",
    }


def _summary(patient: Patient, today: date) -> dict:
    phones = [
        {"label": label, "number": number}
        for label, number in (
            (_("Mobile"), patient.mobile_phone),
            (_("Home"), patient.home_phone),
            (_("Work"), patient.work_phone),
        )
        if number
    ]
    place = " ".join(part for part in (patient.state, patient.postal_code) if part)
    address = ", ".join(part for part in (patient.address_line, patient.city, place) if part)
    name = " ".join(part for part in (patient.given_name, patient.middle_name) if part)
    return {
        "name": f"{patient.family_name}, {name}" + (f" {patient.suffix}" if patient.suffix else ""),
        "preferred_name": patient.preferred_name,
        "mrn": patient.mrn,
        "date_of_birth": _date(patient.date_of_birth),
        "age": _age_on(patient.date_of_birth, today),
        "sex": patient.get_administrative_sex_display(),
        "pronouns": patient.pronouns,
        "phones": phones,
        "email": patient.email,
        "address": address,
        "language": patient.preferred_language,
        "interpreter": patient.interpreter_needed,
        "restricted": patient.restricted,
        "deceased": patient.status == Patient.Status.DECEASED,
        "emergency_contacts": [
            {"name": contact.name, "relationship": contact.relationship, "phone": contact.phone}
            for contact in patient.contacts.all()
        ],
        "coverage": [_coverage(plan) for plan in patient.coverages.all()],
        "allergies": _allergies(patient),
        "problems": [
            {"code": problem.code, "description": problem.description}
            for problem in patient.problems.all()
        ],
        "medications": [
            {
                "name": medication.name,
                "dose": medication.dose,
                "route": medication.get_route_display(),
                "frequency": medication.frequency,
            }
            for medication in patient.medications.all()
        ],
    }


def _schedule(visits: list[Appointment], keys: dict[UUID, str], days: list[date]) -> list[dict]:
    """Days, each with its locations, each with its providers and their visits in time order."""
    zone = practice_zone()
    grouped: dict[date, dict[str, dict[str, list]]] = {day: {} for day in days}
    locations: dict[str, Location] = {}
    for visit in visits:
        starts, ends = visit.starts_at.astimezone(zone), visit.ends_at.astimezone(zone)
        locations[visit.location.name] = visit.location
        providers = grouped[starts.date()].setdefault(visit.location.name, {})
        providers.setdefault(str(visit.provider), []).append(
            {
                "starts": starts.strftime("%H:%M"),
                "ends": ends.strftime("%H:%M"),
                "patient": keys[visit.patient_id],
                "type": visit.appointment_type.name,
                "status": visit.get_status_display(),
                "overbooked": visit.overbooked,
            }
        )
    return [
        {
            "date": day.isoformat(),
            "label": formats.date_format(day, "l j F Y"),
            "locations": [
                {
                    "name": name,
                    "address": _location_address(locations[name]),
                    "phone": locations[name].phone,
                    "providers": [
                        {"name": provider, "appointments": appointments}
                        for provider, appointments in sorted(providers.items())
                    ],
                }
                for name, providers in sorted(grouped[day].items())
            ],
        }
        for day in days
    ]


def _location_address(location: Location) -> str:
    return f"{location.address_line}, {location.city}, {location.state} {location.postal_code}"


def _labels() -> dict[str, str]:
    """The page's words, translated here: the page's script holds no text of its own."""
    return {
        "schedule": _("Schedule"),
        "summaries": _("Patient summaries"),
        "nothing_booked_day": _("Nothing booked this day."),
        "nothing_booked": _("No appointments are booked in the days this kit covers."),
        "time": _("Time"),
        "patient": _("Patient"),
        "date_of_birth": _("Date of birth"),
        "visit": _("Visit"),
        "status": _("Status"),
        "overbooked": _("overbooked"),
        "mrn": _("MRN"),
        "age": _("age"),
        "sex": _("Sex"),
        "preferred_name": _("Goes by"),
        "pronouns": _("Pronouns"),
        "phones": _("Phone"),
        "email": _("Email"),
        "address": _("Address"),
        "language": _("Preferred language"),
        "interpreter": _("Needs an interpreter"),
        "restricted": _("Restricted record"),
        "deceased": _("Deceased"),
        "emergency_contacts": _("Emergency contact"),
        "none_recorded": _("None recorded"),
        "coverage": _("Coverage"),
        "no_coverage": _("No active coverage (self-pay?)"),
        "member_id": _("Member ID"),
        "group": _("Group"),
        "plan": _("Plan"),
        "payer_id": _("Payer ID"),
        "subscriber": _("Subscriber"),
        "copay": _("Copay"),
        "allergies": _("Allergies"),
        "no_known_allergies": _("No known allergies"),
        "allergies_not_recorded": _("Allergies not recorded: ask"),
        "problems": _("Active problems"),
        "medications": _("Active medications"),
        "visits": _("Visits in this kit"),
        "back_to_schedule": _("Back to the schedule"),
    }


def downtime_kit_contents(
    *, actor: User | None, days: int, location: Location | None = None
) -> KitContents:
    """Gather the active visits from today for `days` days and each booked patient's summary.

    `actor` is None for system work (the command); a user must see the schedule and the
    clinical chart. Nothing is audited here: `downtime_kit.downtime_kit_export` records what left.
    """
    if actor is not None:
        for capability in (
            Capability.VIEW_SCHEDULE,
            Capability.VIEW_DEMOGRAPHICS,
            Capability.VIEW_CLINICAL_CHART,
        ):
            require(actor, capability)
    _checked_days(days)
    today = timezone.localdate()
    covered = [today + timedelta(days=offset) for offset in range(days)]
    zone = practice_zone()
    start = wall_clock(today, time(0), zone)
    end = wall_clock(today + timedelta(days=days), time(0), zone)
    visits = _appointments(actor, start, end, location)
    patients = list(_patients({visit.patient_id for visit in visits}))
    keys = {patient.pk: f"p{number}" for number, patient in enumerate(patients, start=1)}
    summaries = {keys[patient.pk]: _summary(patient, today) for patient in patients}
    for visit in visits:
        starts = visit.starts_at.astimezone(zone)
        summaries[keys[visit.patient_id]].setdefault("visits", []).append(
            f"{formats.date_format(starts.date(), 'D j M')} {starts:%H:%M} · "
            f"{visit.location.name} · {visit.provider}"
        )
    practice = practice_get()
    data = {
        "practice": practice.name if practice else "",
        "location": location.name if location else "",
        "generated": formats.date_format(timezone.localtime(timezone_now()), "Y-m-d H:i"),
        "days": _schedule(visits, keys, covered),
        "patients": [
            {"key": keys[patient.pk], **summaries[keys[patient.pk]]} for patient in patients
        ],
        "labels": _labels(),
    }
    return KitContents(
        data=data,
        patient_ids=[patient.pk for patient in patients],
        appointment_count=len(visits),
        first_day=covered[0],
        last_day=covered[-1],
    )
