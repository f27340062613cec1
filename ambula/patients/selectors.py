import re
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from ambula.accounts.policy import Capability, visible
from ambula.audit.services import record
from ambula.core.errors import NotFound
from ambula.patients.models import Patient, digits_only, search_form
from ambula.patients.mrn import mrn_is_valid

SEARCH_LIMIT = 25
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")


def _as_date(text: str) -> date | None:
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _matching(query: str) -> Q:
    """Read the query as an MRN, a date of birth, a phone number or names, in that order."""
    text = query.strip()
    if mrn_is_valid(text):
        return Q(mrn=text)
    if born := _as_date(text):
        return Q(date_of_birth=born)
    if len(digits_only(text)) >= 7 and not re.search(r"[^\d\s().+-]", text):
        return Q(phone_digits__endswith=digits_only(text)[-10:])
    # "doe, jane" or "jane doe" or "doe": every word is a prefix of a name.
    if "," in text:
        family, _, given = text.partition(",")
        if not search_form(family):
            return Q(pk__in=[])  # nothing before the comma: match nobody, not everybody
        condition = Q(search_family_name__startswith=search_form(family))
        if given.strip():
            condition &= Q(search_given_name__startswith=search_form(given))
        return condition
    condition = Q()
    for word in text.split():
        word = search_form(word)
        condition &= Q(search_family_name__startswith=word) | Q(search_given_name__startswith=word)
    return condition


def patient_search(*, actor, query: str) -> list[Patient]:
    """Patients matching the query (name prefix, DOB, phone or MRN); the search is audited."""
    if not query.strip():
        return []
    patients = visible(actor, Capability.VIEW_DEMOGRAPHICS, Patient.objects.all())
    found = list(
        patients.filter(_matching(query)).order_by("family_name", "given_name")[:SEARCH_LIMIT]
    )
    record(
        actor=actor,
        action="patients.searched",
        category="demographics",
        changes={"query": query.strip(), "results": len(found)},
    )
    return found


def patient_get(*, actor, patient_id) -> Patient:
    """One patient, or NotFound whether missing or not the actor's to see."""
    try:
        return visible(actor, Capability.VIEW_DEMOGRAPHICS, Patient.objects.all()).get(
            pk=patient_id
        )
    except (Patient.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None


def possible_duplicates(**details) -> QuerySet[Patient]:
    """Patients who may be this person: same birth date and a similar name, or same phone."""
    born = details.get("date_of_birth")
    phone = digits_only(details.get("mobile_phone", ""))
    email = details.get("email", "").strip().lower()
    family = search_form(details.get("family_name", ""))
    given = search_form(details.get("given_name", ""))
    condition = Q(
        date_of_birth=born,
        search_family_name__startswith=family[:3],
        search_given_name__startswith=given[:1],
    )
    if len(phone) >= 7:
        condition |= Q(phone_digits=phone, date_of_birth=born)
    if email:
        condition |= Q(email__iexact=email, date_of_birth=born)
    return Patient.objects.filter(condition).order_by("family_name")
