"""Patient (US Core Patient): the patient's demographics, written through the patients app.

Created through `patient_register` and changed through `patient_update`, as the front desk
does. An update replaces what FHIR shows of the patient: an element left out is cleared.
What Ambula keeps but the API does not show (SSN, reminder preferences, consent to texts,
the restricted flag) is neither emitted nor changed here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Q

from ambula.accounts.policy import Capability
from ambula.fhir.errors import FhirError
from ambula.fhir.mapper import US_CORE, ResourceMapper, reference, reference_id
from ambula.fhir.registry import register
from ambula.fhir.search_params import DateParam, FunctionParam, TokenParam
from ambula.patients.demographics import normalize_phone, patient_update
from ambula.patients.models import (
    RACE_CATEGORIES,
    REGISTERED_FIELDS,
    Patient,
    digits_only,
    search_form,
)
from ambula.patients.selectors import indexed_prefix
from ambula.patients.services import patient_register
from ambula.scheduling.models import Provider

MRN_SYSTEM = "urn:ambula:mrn"
GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
RACE_URL = US_CORE + "us-core-race"
ETHNICITY_URL = US_CORE + "us-core-ethnicity"
GENDER_IDENTITY_URL = US_CORE + "us-core-genderIdentity"
CDC_RACE_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
MARITAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"

GENDERS = {"M": "male", "F": "female", "U": "unknown"}
SEXES = {code: sex for sex, code in GENDERS.items()}
# OMB's five race categories go in ombCategory; "Other race" is a detailed CDC code.
OMB_RACES = {"1002-5", "2028-9", "2054-5", "2076-8", "2106-3"}
ETHNICITIES = dict(Patient.Ethnicity.choices)
# Ambula keeps the language as a name the clerk typed; these are the usual ones' BCP-47 tags.
LANGUAGES = {
    "en": "English",
    "es": "Spanish",
    "zh": "Chinese",
    "vi": "Vietnamese",
    "ko": "Korean",
    "tl": "Tagalog",
    "ru": "Russian",
    "ar": "Arabic",
    "fr": "French",
    "ht": "Haitian Creole",
    "de": "German",
    "pt": "Portuguese",
    "it": "Italian",
    "pl": "Polish",
    "ja": "Japanese",
    "hi": "Hindi",
    "fa": "Persian",
    "ur": "Urdu",
    "so": "Somali",
    "am": "Amharic",
    "bn": "Bengali",
    "pa": "Punjabi",
    "gu": "Gujarati",
    "el": "Greek",
    "hmn": "Hmong",
    "sgn-US": "American Sign Language",
}
LANGUAGE_TAGS = {name.casefold(): tag for tag, name in LANGUAGES.items()}

ELEMENT_PATHS = {
    "given_name": "Patient.name.given",
    "middle_name": "Patient.name.given",
    "family_name": "Patient.name.family",
    "suffix": "Patient.name.suffix",
    "preferred_name": "Patient.name",
    "date_of_birth": "Patient.birthDate",
    "administrative_sex": "Patient.gender",
    "gender_identity": "Patient.extension",
    "mobile_phone": "Patient.telecom",
    "home_phone": "Patient.telecom",
    "work_phone": "Patient.telecom",
    "email": "Patient.telecom",
    "reminder_channel": "Patient.telecom",
    "address_line": "Patient.address.line",
    "city": "Patient.address.city",
    "state": "Patient.address.state",
    "postal_code": "Patient.address.postalCode",
    "preferred_language": "Patient.communication.language",
    "race": "Patient.extension",
    "ethnicity": "Patient.extension",
    "marital_status": "Patient.maritalStatus",
    "primary_care_provider": "Patient.generalPractitioner",
    "status": "Patient.active",
    "deceased_date": "Patient.deceasedDateTime",
}


# --- search -------------------------------------------------------------------------------------


def _name_words(value: str, fields: tuple[str, ...], modifier: str) -> Q:
    """Every word a prefix of one of the name fields, through their normalised indexes."""
    if modifier == "exact":
        plain = {"search_family_name": "family_name", "search_given_name": "given_name"}
        condition = Q()
        for name in fields:
            condition |= Q(**{plain[name]: value})
        return condition
    words = [search_form(word) for word in value.split()]
    words = [word for word in words if word]
    if not words:
        return Q(pk__in=[])
    condition = Q()
    for word in words:
        alternatives = Q()
        for name in fields:
            if modifier == "contains":
                alternatives |= Q(**{f"{name}__contains": word})
            else:
                alternatives |= indexed_prefix(name, word)
        condition &= alternatives
    return condition


def _name(name: str, modifier: str, value: str) -> Q:
    return _name_words(value, ("search_family_name", "search_given_name"), modifier)


def _family(name: str, modifier: str, value: str) -> Q:
    return _name_words(value, ("search_family_name",), modifier)


def _given(name: str, modifier: str, value: str) -> Q:
    return _name_words(value, ("search_given_name",), modifier)


def _identifier(name: str, modifier: str, value: str) -> Q:
    system, bar, code = value.rpartition("|")
    if bar and system not in ("", MRN_SYSTEM):
        return Q(pk__in=[])
    return Q(mrn=code.strip())


def _phone(value: str) -> Q:
    digits = digits_only(value)[-10:]
    if len(digits) < 7:
        return Q(pk__in=[])
    # The mobile number has an indexed digits column; home and work numbers are stored as
    # entered through normalize_phone, so a whole number finds them by equality.
    condition = Q(phone_digits=digits) if len(digits) == 10 else Q(phone_digits__endswith=digits)
    if len(digits) == 10:
        formatted = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
        condition |= Q(home_phone=formatted) | Q(work_phone=formatted)
    return condition


def _email(value: str) -> Q:
    value = value.strip()
    return Q(email__iexact=value) if value else Q(pk__in=[])


def _telecom(name: str, modifier: str, value: str) -> Q:
    system, bar, code = value.rpartition("|")
    if not bar or system == "":
        return _email(code) if "@" in code else _phone(code)
    if system == "phone":
        return _phone(code)
    if system == "email":
        return _email(code)
    return Q(pk__in=[])


SEARCH_PARAMS = {
    "identifier": FunctionParam(
        function=_identifier,
        param_type="token",
        documentation=f"The MRN ({MRN_SYSTEM}|00000123 or the bare number).",
    ),
    "name": FunctionParam(
        function=_name,
        param_type="string",
        accepted_modifiers=("exact", "contains"),
        documentation="Every word the start of the family or a given name, ignoring case "
        "and accents.",
    ),
    "family": FunctionParam(
        function=_family,
        param_type="string",
        accepted_modifiers=("exact", "contains"),
        documentation="The start of the family name, ignoring case and accents.",
    ),
    "given": FunctionParam(
        function=_given,
        param_type="string",
        accepted_modifiers=("exact", "contains"),
        documentation="The start of the first name, ignoring case and accents.",
    ),
    "birthdate": DateParam(field="date_of_birth", is_date=True, documentation="Date of birth."),
    "gender": TokenParam(
        field="administrative_sex",
        system=GENDER_SYSTEM,
        codes={"male": "M", "female": "F", "unknown": "U"},
        documentation="male | female | unknown (administrative sex).",
    ),
    "phone": FunctionParam(
        function=lambda name, modifier, value: _phone(value.rpartition("|")[2]),
        param_type="token",
        documentation="A phone number, any formatting.",
    ),
    "email": FunctionParam(
        function=lambda name, modifier, value: _email(value.rpartition("|")[2]),
        param_type="token",
        documentation="The email address, ignoring case.",
    ),
    "telecom": FunctionParam(
        function=_telecom,
        param_type="token",
        documentation="phone|number or email|address (or either, bare).",
    ),
}


# --- domain to FHIR -------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str) -> dict:
    return {"system": system, "code": code, "display": str(display)}


def _race_extension(codes: list[str]) -> dict | None:
    if not codes:
        return None
    parts = []
    for code in codes:
        display = RACE_CATEGORIES.get(code, code)
        if code == "ASKU":
            parts.append(
                {
                    "url": "ombCategory",
                    "valueCoding": _coding(NULL_FLAVOR_SYSTEM, "ASKU", "Asked but declined"),
                }
            )
        elif code in OMB_RACES:
            parts.append(
                {"url": "ombCategory", "valueCoding": _coding(CDC_RACE_SYSTEM, code, display)}
            )
        else:
            parts.append(
                {"url": "detailed", "valueCoding": _coding(CDC_RACE_SYSTEM, code, display)}
            )
    text = ", ".join(str(RACE_CATEGORIES.get(code, code)) for code in codes)
    return {"url": RACE_URL, "extension": [*parts, {"url": "text", "valueString": text}]}


def _ethnicity_extension(code: str) -> dict | None:
    if not code:
        return None
    display = ETHNICITIES[code]
    system = NULL_FLAVOR_SYSTEM if code == "ASKU" else CDC_RACE_SYSTEM
    return {
        "url": ETHNICITY_URL,
        "extension": [
            {"url": "ombCategory", "valueCoding": _coding(system, code, display)},
            {"url": "text", "valueString": str(display)},
        ],
    }


def _names(patient: Patient) -> list[dict]:
    official: dict[str, Any] = {
        "use": "official",
        "family": patient.family_name,
        "given": [patient.given_name],
    }
    if patient.middle_name:
        official["given"].append(patient.middle_name)
    if patient.suffix:
        official["suffix"] = [patient.suffix]
    names = [official]
    if patient.preferred_name:
        names.append(
            {"use": "usual", "family": patient.family_name, "given": [patient.preferred_name]}
        )
    return names


def _telecoms(patient: Patient) -> list[dict]:
    found = []
    for field, use in (("mobile_phone", "mobile"), ("home_phone", "home"), ("work_phone", "work")):
        if getattr(patient, field):
            found.append({"system": "phone", "value": getattr(patient, field), "use": use})
    if patient.email:
        found.append({"system": "email", "value": patient.email})
    return found


def _address(patient: Patient) -> dict | None:
    parts = {
        "line": [patient.address_line] if patient.address_line else None,
        "city": patient.city,
        "state": patient.state,
        "postalCode": patient.postal_code,
    }
    parts = {key: value for key, value in parts.items() if value}
    if not parts:
        return None
    return {"use": "home", **parts, "country": "US"}


def _language(name: str) -> dict:
    tag = LANGUAGE_TAGS.get(name.casefold())
    concept: dict[str, Any] = {"text": name}
    if tag:
        concept["coding"] = [{"system": LANGUAGE_SYSTEM, "code": tag, "display": LANGUAGES[tag]}]
    return {"language": concept, "preferred": True}


def _general_practitioner(patient: Patient) -> list[dict]:
    user = patient.primary_care_provider
    if user is None:
        return []
    try:
        provider = user.provider_profile
    except ObjectDoesNotExist:
        return [{"display": user.full_name}]
    return [reference("Practitioner", provider.pk, user.full_name)]


# --- FHIR to domain ------------------------------------------------------------------------------


def _invalid(path: str, message: str, code: str = "value") -> FhirError:
    return FhirError(422, code, message, expression=[path])


def _official_name(resource: dict) -> dict:
    names = resource.get("name") or []
    for use in ("official", None, "usual"):
        for name in names:
            if name.get("use") == use and (name.get("family") or name.get("given")):
                return name
    raise _invalid(
        "Patient.name", "A patient needs a name with a family and a given name.", "required"
    )


def _preferred_name(resource: dict, official: dict) -> str:
    for name in resource.get("name") or []:
        if name is not official and name.get("use") == "usual" and name.get("given"):
            return name["given"][0]
    return ""


def _birth_date(resource: dict) -> dt.date:
    text = resource.get("birthDate")
    if not text:
        raise _invalid("Patient.birthDate", "A patient needs a birthDate.", "required")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _invalid(
            "Patient.birthDate", "Ambula needs the whole date of birth (YYYY-MM-DD)."
        ) from None


def _sex(resource: dict) -> str:
    gender = resource.get("gender")
    if gender is None:
        return Patient.Sex.UNKNOWN
    if gender not in SEXES:
        raise _invalid(
            "Patient.gender",
            f"Gender {gender!r} cannot be recorded: Ambula keeps the administrative sex as "
            "male, female or unknown.",
            "code-invalid",
        )
    return SEXES[gender]


def _phones_and_email(resource: dict) -> dict:
    found = {"mobile_phone": "", "home_phone": "", "work_phone": "", "email": ""}
    fields = {"mobile": "mobile_phone", "home": "home_phone", "work": "work_phone"}
    loose_phones = []
    for point in resource.get("telecom") or []:
        value = (point.get("value") or "").strip()
        if not value or point.get("period", {}).get("end"):
            continue
        if point.get("system") == "email" and not found["email"]:
            found["email"] = value
        elif point.get("system") in ("phone", "sms"):
            field = fields.get(point.get("use"))
            if field and not found[field]:
                found[field] = value
            elif point.get("use") is None:
                loose_phones.append(value)
    if loose_phones and not found["mobile_phone"]:
        found["mobile_phone"] = loose_phones[0]
    errors = {}
    for field in ("mobile_phone", "home_phone", "work_phone"):
        try:
            found[field] = normalize_phone(found[field])
        except ValidationError as error:
            errors[field] = error.messages
    if errors:
        raise ValidationError(errors)
    return found


def _address_fields(resource: dict) -> dict:
    addresses = [a for a in resource.get("address") or [] if a.get("use") != "old"]
    chosen = next((a for a in addresses if a.get("use") == "home"), None) or (
        addresses[0] if addresses else {}
    )
    return {
        "address_line": ", ".join(line.strip() for line in chosen.get("line") or [] if line),
        "city": (chosen.get("city") or "").strip(),
        "state": (chosen.get("state") or "").strip().upper(),
        "postal_code": (chosen.get("postalCode") or "").strip(),
    }


def _extension(resource: dict, url: str) -> dict | None:
    return next((e for e in resource.get("extension") or [] if e.get("url") == url), None)


def _race_codes(resource: dict) -> list[str]:
    extension = _extension(resource, RACE_URL)
    if extension is None:
        return []
    codes = []
    for part in extension.get("extension") or []:
        coding = part.get("valueCoding") or {}
        if part.get("url") in ("ombCategory", "detailed") and coding.get("code"):
            if coding["code"] == "UNK":
                continue  # unknown is the absence of an answer
            codes.append(coding["code"])
    unknown = [code for code in codes if code not in RACE_CATEGORIES]
    if unknown:
        raise _invalid(
            "Patient.extension:race",
            f"Race code(s) {', '.join(unknown)} are not OMB categories Ambula records.",
            "code-invalid",
        )
    return codes


def _ethnicity_code(resource: dict) -> str:
    extension = _extension(resource, ETHNICITY_URL)
    if extension is None:
        return ""
    for part in extension.get("extension") or []:
        code = (part.get("valueCoding") or {}).get("code")
        if part.get("url") == "ombCategory" and code and code != "UNK":
            if code not in ETHNICITIES:
                raise _invalid(
                    "Patient.extension:ethnicity",
                    f"Ethnicity code {code} is not an OMB category.",
                    "code-invalid",
                )
            return code
    return ""


def _gender_identity(resource: dict) -> str:
    extension = _extension(resource, GENDER_IDENTITY_URL)
    if extension is None:
        return ""
    concept = extension.get("valueCodeableConcept") or {}
    coding = (concept.get("coding") or [{}])[0]
    return (concept.get("text") or coding.get("display") or coding.get("code") or "").strip()


def _language_name(resource: dict) -> str:
    entries = resource.get("communication") or []
    chosen = next((c for c in entries if c.get("preferred")), entries[0] if entries else None)
    if chosen is None:
        return ""
    concept = chosen.get("language") or {}
    for coding in concept.get("coding") or []:
        if coding.get("code") in LANGUAGES:
            return LANGUAGES[coding["code"]]
        base = (coding.get("code") or "").split("-")[0]
        if base in LANGUAGES:
            return LANGUAGES[base]
    first = (concept.get("coding") or [{}])[0]
    return (concept.get("text") or first.get("display") or first.get("code") or "").strip()


def _marital_status(resource: dict) -> str:
    concept = resource.get("maritalStatus")
    if not concept:
        return Patient.MaritalStatus.UNKNOWN
    for coding in concept.get("coding") or []:
        if coding.get("code") in Patient.MaritalStatus.values:
            return coding["code"]
    raise _invalid(
        "Patient.maritalStatus",
        "Use an HL7 v3 MaritalStatus code (S, M, T, D, L, W or UNK).",
        "code-invalid",
    )


def _primary_care_provider(resource: dict) -> dict:
    """{"primary_care_provider": user or None}, or {} for a display-only reference: the
    physician Ambula showed by name alone (no provider profile) stays as they are."""
    practitioners = resource.get("generalPractitioner") or []
    if not practitioners:
        return {"primary_care_provider": None}
    first = practitioners[0]
    if isinstance(first, dict) and "reference" not in first and first.get("display"):
        return {}
    return {"primary_care_provider": _provider_user(first)}


def _provider_user(value):
    path = "Patient.generalPractitioner"
    key = reference_id(value, "Practitioner", path)
    try:
        return Provider.objects.select_related("user").get(pk=key).user
    except (Provider.DoesNotExist, ValueError, ValidationError):
        raise _invalid(path, f"Practitioner/{key} is not known.") from None


def _status(resource: dict, current: str | None) -> tuple[str, dt.date | None]:
    when = resource.get("deceasedDateTime")
    if when:
        try:
            died = dt.date.fromisoformat(when[:10])
        except ValueError:
            raise _invalid(
                "Patient.deceasedDateTime", "Ambula needs the whole date of death."
            ) from None
        return Patient.Status.DECEASED, died
    if resource.get("deceasedBoolean") is True:
        raise _invalid(
            "Patient.deceasedBoolean",
            "Give deceasedDateTime: Ambula records the date of death.",
            "required",
        )
    if resource.get("active") is False:
        return Patient.Status.INACTIVE, None
    if resource.get("active") is True or current in (None, Patient.Status.DECEASED):
        return Patient.Status.ACTIVE, None
    return current, None


def _registration(resource: dict) -> dict:
    name = _official_name(resource)
    given = [part.strip() for part in name.get("given") or [] if part and part.strip()]
    return {
        "given_name": given[0] if given else "",
        "middle_name": " ".join(given[1:]),
        "family_name": (name.get("family") or "").strip(),
        "suffix": " ".join(name.get("suffix") or []).strip(),
        "preferred_name": _preferred_name(resource, name).strip(),
        "date_of_birth": _birth_date(resource),
        "administrative_sex": _sex(resource),
        **_phones_and_email(resource),
        **_address_fields(resource),
    }


def _details(resource: dict, current: str | None) -> dict:
    """Every field the resource speaks for, as patient_update takes them."""
    status, died = _status(resource, current)
    return {
        **_registration(resource),
        "gender_identity": _gender_identity(resource),
        "preferred_language": _language_name(resource),
        "race": _race_codes(resource),
        "ethnicity": _ethnicity_code(resource),
        "marital_status": _marital_status(resource),
        **_primary_care_provider(resource),
        "status": status,
        "deceased_date": died,
    }


def _reachable_reminders(patient: Patient, details: dict) -> dict:
    """Text reminders without consent never go out; when the mobile number changes such a
    record would be refused, so reminders move to a channel that can reach the patient."""
    if patient.reminder_channel != Patient.ReminderChannel.SMS:
        return {}
    if patient.sms_consent and details.get("mobile_phone", patient.mobile_phone):
        return {}
    if details.get("mobile_phone", patient.mobile_phone) == patient.mobile_phone:
        return {}
    email = details.get("email", patient.email)
    return {
        "reminder_channel": Patient.ReminderChannel.EMAIL if email else Patient.ReminderChannel.NONE
    }


@register
class PatientMapper(ResourceMapper):
    resource_type = "Patient"
    model = Patient
    profiles = (US_CORE + "us-core-patient",)
    read_capability = Capability.VIEW_DEMOGRAPHICS
    write_capability = Capability.EDIT_DEMOGRAPHICS
    patient_path = ""
    search_params = SEARCH_PARAMS
    sort_fields = {
        "family": "search_family_name",
        "given": "search_given_name",
        "name": "search_family_name",
        "birthdate": "date_of_birth",
    }
    default_order = ("search_family_name", "search_given_name")
    element_paths = ELEMENT_PATHS

    def queryset(self):
        return Patient.objects.select_related("primary_care_provider__provider_profile").defer(
            "ssn",
            "ssn_index",  # never shown through the API
        )

    def to_fhir(self, obj: Patient) -> dict:
        merged = obj.status == Patient.Status.MERGED
        resource: dict[str, Any] = {
            "extension": [
                extension
                for extension in (
                    _race_extension(obj.race),
                    _ethnicity_extension(obj.ethnicity),
                    {
                        "url": GENDER_IDENTITY_URL,
                        "valueCodeableConcept": {"text": obj.gender_identity},
                    }
                    if obj.gender_identity
                    else None,
                )
                if extension
            ],
            "identifier": [
                {
                    "use": "usual",
                    "type": {
                        "coding": [
                            {
                                "system": IDENTIFIER_TYPE_SYSTEM,
                                "code": "MR",
                                "display": "Medical record number",
                            }
                        ],
                        "text": "MRN",
                    },
                    "system": MRN_SYSTEM,
                    "value": obj.mrn,
                }
            ],
            "active": obj.status not in (Patient.Status.INACTIVE, Patient.Status.MERGED),
            "name": _names(obj),
            "telecom": _telecoms(obj),
            "gender": GENDERS[obj.administrative_sex],
            "birthDate": obj.date_of_birth.isoformat(),
        }
        if obj.status == Patient.Status.DECEASED and obj.deceased_date:
            resource["deceasedDateTime"] = obj.deceased_date.isoformat()
        if address := _address(obj):
            resource["address"] = [address]
        if obj.marital_status and obj.marital_status != Patient.MaritalStatus.UNKNOWN:
            resource["maritalStatus"] = {
                "coding": [
                    _coding(MARITAL_SYSTEM, obj.marital_status, obj.get_marital_status_display())
                ]
            }
        if obj.preferred_language:
            resource["communication"] = [_language(obj.preferred_language)]
        if practitioners := _general_practitioner(obj):
            resource["generalPractitioner"] = practitioners
        if merged:
            resource["link"] = [
                {"other": reference("Patient", obj.merged_into_id), "type": "replaced-by"}
            ]
        return {key: value for key, value in resource.items() if value not in ([], None)}

    def create(self, actor, resource: dict) -> Patient:
        details = _details(resource, None)
        registration = {key: value for key, value in details.items() if key in REGISTERED_FIELDS}
        rest = {key: value for key, value in details.items() if key not in registration}
        try:
            patient = patient_register(actor=actor, **registration)
        except ValidationError as error:
            if getattr(error, "code", None) == "possible_duplicate":
                # No ids: they would tell any caller who else is registered, restricted
                # records included. A search (narrowed to what the caller may see) finds them.
                raise FhirError(
                    409,
                    "duplicate",
                    "This patient may already be registered (same date of birth and a "
                    "similar name, phone or email). Search for them, or send the create with "
                    "If-None-Exist to get the existing record back.",
                ) from None
            raise
        defaults = {
            "status": Patient.Status.ACTIVE,
            "marital_status": "UNK",
            "race": [],
            "ethnicity": "",
            "deceased_date": None,
        }
        changes = {
            key: value
            for key, value in rest.items()
            if value not in ("", None) and value != defaults.get(key)
        }
        if changes:
            patient = patient_update(actor=actor, patient=patient, **changes)
        return patient

    def update(self, actor, obj: Patient, resource: dict) -> Patient:
        details = _details(resource, obj.status)
        details |= _reachable_reminders(obj, details)
        return patient_update(actor=actor, patient=obj, **details)
