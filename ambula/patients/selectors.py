import re
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from ambula.accounts.policy import Capability, visible
from ambula.audit.services import record
from ambula.core.errors import Conflict, NotFound
from ambula.core.fields import blind_index_for
from ambula.patients.emergency import check_restricted_access
from ambula.patients.models import Coverage, Patient, digits_only, member_id_form, search_form
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
    """Read the query as the patient's own details, or as the member ID on an insurance card."""
    return _reading(query) | _having_member_id(query)


def _having_member_id(query: str) -> Q:
    """Patients with an active plan whose member ID is the query, spaces and dashes aside.

    Member IDs look like names or numbers, so this is ORed with the other readings rather than
    tried in turn. The blind index finds them without decrypting anything.
    """
    text = query.strip()
    # Every payer's member IDs carry digits; a plain word is a name, and ORing a subquery into
    # a name search would cost it its index.
    if (
        len(member_id_form(text)) < 4
        or not re.fullmatch(r"[A-Za-z0-9 -]+", text)
        or not re.search(r"\d", text)
    ):
        return Q()  # no reading as a member ID: adds nothing to the condition
    index = blind_index_for(Coverage, "member_id_index", text)
    plans = Coverage.objects.filter(status=Coverage.Status.ACTIVE, member_id_index=index)
    return Q(pk__in=plans.values("patient_id"))


def _reading(query: str) -> Q:
    """Read the query as an MRN, a date of birth, a phone number or names, in that order."""
    text = query.strip()
    if mrn_is_valid(text):
        # An old MRN from a merged-away record still finds the patient.
        return Q(mrn=text) | Q(merged_from__mrn=text)
    if born := _as_date(text):
        return Q(date_of_birth=born)
    if len(digits_only(text)) >= 7 and not re.search(r"[^\d\s().+-]", text):
        digits = digits_only(text)[-10:]
        # A whole number is an indexed equality; seven digits (no area code) need a scan.
        return Q(phone_digits=digits) if len(digits) == 10 else Q(phone_digits__endswith=digits)
    # "doe, jane" or "jane doe" or "doe": every word is a prefix of a name.
    if "," in text:
        family, _, given = text.partition(",")
        if not search_form(family):
            return Q(pk__in=[])  # nothing before the comma: match nobody, not everybody
        condition = indexed_prefix("search_family_name", search_form(family))
        if given.strip():
            condition &= indexed_prefix("search_given_name", search_form(given))
        return condition
    condition = Q()
    for word in text.split():
        word = search_form(word)
        condition &= indexed_prefix("search_family_name", word) | indexed_prefix(
            "search_given_name", word
        )
    return condition


def indexed_prefix(field: str, text: str) -> Q:
    """Values of `field` starting with `text`, in a form the database answers from its index.

    PostgreSQL answers LIKE 'text%' from the pattern-ops index Django adds for indexed
    CharFields. SQLite's LIKE ignores case and so cannot use an ordinary index; a range on the
    already-folded column can (every string that starts with `text` sorts between `text` and
    `text` followed by the highest code point).
    """
    if connection.vendor == "sqlite":
        return Q(**{f"{field}__gte": text, f"{field}__lt": text + "\U0010ffff"})
    return Q(**{f"{field}__startswith": text})


def patient_search(*, actor, query: str) -> list[Patient]:
    """Patients matching the query (name prefix, DOB, phone or MRN); the search is audited."""
    if not query.strip():
        return []
    patients = visible(actor, Capability.VIEW_DEMOGRAPHICS, Patient.objects.all())
    found = list(
        patients.filter(_matching(query))
        .exclude(status=Patient.Status.MERGED)
        .order_by("search_family_name", "search_given_name")[:SEARCH_LIMIT]
    )
    record(
        actor=actor,
        action="patients.searched",
        category="demographics",
        changes={"query": query.strip(), "results": len(found)},
    )
    return found


class PatientMerged(Conflict):
    """The record was merged into another one; the old id points to the survivor."""

    default_message = _("This record was merged into another one.")

    def __init__(self, survivor_id) -> None:
        super().__init__(code="patient_merged")
        self.location = reverse("patients:chart", args=[survivor_id])


def patient_get(*, actor, patient_id, check_restriction: bool = True) -> Patient:
    """One patient the actor may open, or NotFound whether missing or not the actor's to see.

    A merged-away record raises PatientMerged (pointing to the survivor); a restricted record
    raises EmergencyAccessRequired unless the actor has a care relationship or a current grant
    (`check_restriction=False` skips that check: for the page that asks for the reason, and
    for the merge, which shows no clinical data).
    """
    try:
        patient = visible(actor, Capability.VIEW_DEMOGRAPHICS, Patient.objects.all()).get(
            pk=patient_id
        )
    except (Patient.DoesNotExist, ValueError, ValidationError):
        raise NotFound from None
    if patient.merged_into_id:
        raise PatientMerged(patient.merged_into_id)
    if check_restriction:
        check_restricted_access(actor=actor, patient=patient)
    return patient


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
    return (
        Patient.objects.filter(condition)
        .exclude(status=Patient.Status.MERGED)
        .order_by("family_name")
    )
