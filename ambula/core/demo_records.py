"""The demo's patient records: coverage, problems, allergies, medications, history, contacts.

Synthetic and coherent: a patient with hypertension takes an antihypertensive, children are
covered on a parent's plan, about half have no known allergies. Problems carry real
ICD-10-CM codes and are added through the same services as the chart uses, so they exist
only where the code table is loaded (`ambula icd10 load`); without it they are left out.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

from ambula.accounts.models import User
from ambula.accounts.roles import Role
from ambula.patients.allergies import allergies_none_known, allergy_add
from ambula.patients.coverage import DEMO_PAYERS, coverage_add, coverage_update, payer_create
from ambula.patients.demographics import contact_add, patient_restriction_set, patient_update
from ambula.patients.documents import document_upload
from ambula.patients.history import history_add, social_history_update
from ambula.patients.medications import medication_add
from ambula.patients.models import Coverage, Document, Patient, Payer, SocialHistory
from ambula.patients.problems import problem_add
from ambula.terminology.selectors import icd10_get


@dataclass(frozen=True)
class Condition:
    code: str  # ICD-10-CM, billable
    adult_only: bool
    share: float  # how many adults have it, roughly
    medication: tuple[str, str, str, str] | None  # name, dose, route, frequency


CONDITIONS = [
    Condition("I10", True, 0.30, ("Lisinopril", "10 mg", "oral", "once daily")),
    Condition("E78.5", True, 0.25, ("Atorvastatin", "20 mg", "oral", "once daily at night")),
    Condition("E11.9", True, 0.12, ("Metformin", "500 mg", "oral", "twice daily with meals")),
    Condition(
        "J45.909", False, 0.08, ("Albuterol inhaler", "90 mcg, 2 puffs", "inhaled", "as needed")
    ),
    Condition("K21.9", True, 0.10, ("Omeprazole", "20 mg", "oral", "once daily before breakfast")),
    Condition("E03.9", True, 0.06, ("Levothyroxine", "50 mcg", "oral", "once daily")),
    Condition("F41.1", True, 0.07, ("Sertraline", "50 mg", "oral", "once daily")),
    Condition("G43.909", True, 0.06, ("Sumatriptan", "50 mg", "oral", "at migraine onset")),
    Condition("J30.9", False, 0.12, ("Cetirizine", "10 mg", "oral", "once daily")),
    Condition("M54.50", True, 0.08, None),
    Condition("E66.9", True, 0.10, None),
    Condition("E55.9", True, 0.05, ("Vitamin D3", "2000 IU", "oral", "once daily")),
]
ALLERGIES = [
    ("Penicillin", "Hives", "moderate"),
    ("Sulfa drugs", "Rash", "mild"),
    ("Peanuts", "Anaphylaxis", "severe"),
    ("Latex", "Contact dermatitis", "mild"),
    ("Shellfish", "Throat swelling", "severe"),
    ("Codeine", "Nausea and vomiting", "moderate"),
]
SURGERIES = [  # (procedure, the sexes it applies to)
    ("Appendectomy", "FM"),
    ("Tonsillectomy", "FM"),
    ("Cholecystectomy", "FM"),
    ("Knee arthroscopy", "FM"),
    ("Cesarean section", "F"),
    ("Inguinal hernia repair", "M"),
]
FAMILY = [
    ("Type 2 diabetes", "mother"),
    ("Coronary artery disease", "father"),
    ("Breast cancer", "maternal aunt"),
    ("Hypertension", "father"),
    ("Colon cancer", "paternal grandfather"),
]
OCCUPATIONS = [
    "Teacher",
    "Nurse",
    "Electrician",
    "Accountant",
    "Student",
    "Retired",
    "Farmer",
    "Software developer",
    "Truck driver",
    "Chef",
]
TOBACCO = [
    (SocialHistory.Tobacco.NEVER, 0.62),
    (SocialHistory.Tobacco.FORMER, 0.22),
    (SocialHistory.Tobacco.EVERY_DAY, 0.11),
    (SocialHistory.Tobacco.SOME_DAYS, 0.05),
]
PLANS = ["PPO Gold", "HMO Select", "EPO Standard", "High Deductible Silver", "Medicare Advantage"]


def _weighted(chooser: random.Random, options):
    values, weights = zip(*options, strict=True)
    return chooser.choices(values, weights=weights)[0]


def demo_payers(admin: User) -> list[Payer]:
    return [payer_create(actor=admin, **details) for details in DEMO_PAYERS]


def demo_record(
    *,
    chooser: random.Random,
    patient: Patient,
    payers: list[Payer],
    users: dict[Role, User],
    today: date,
) -> None:
    """Fill one registered patient's record the way years of visits would."""
    desk, nurse, physician = users[Role.FRONT_DESK], users[Role.NURSE], users[Role.PHYSICIAN]
    adult = patient.age >= 18
    if chooser.random() < 0.7:
        patient_update(actor=desk, patient=patient, primary_care_provider=physician)
    _coverage(chooser, patient, payers, desk, today, adult)
    if chooser.random() < 0.5:
        contact_add(
            actor=desk,
            patient=patient,
            kind="emergency",
            name=f"{chooser.choice(['Sam', 'Alex', 'Jordan', 'Taylor'])} {patient.family_name}",
            relationship="spouse" if adult else "parent",
            phone=f"(217) 555-{chooser.randrange(200, 300):04d}",
        )
    conditions = [
        condition
        for condition in CONDITIONS
        if (adult or not condition.adult_only)
        and chooser.random() < condition.share * (1.6 if patient.age > 55 else 1)
    ]
    born = patient.date_of_birth
    for condition in conditions:
        onset = born + timedelta(days=chooser.randrange(max(1, (today - born).days)))
        if icd10_get(condition.code) is not None:
            problem_add(actor=physician, patient=patient, code=condition.code, onset=onset)
        if condition.medication:
            name, dose, route, frequency = condition.medication
            medication_add(
                actor=physician,
                patient=patient,
                name=name,
                dose=dose,
                route=route,
                frequency=frequency,
                started_on=onset,
            )
    if chooser.random() < 0.5:
        allergies_none_known(actor=nurse, patient=patient)
    else:
        for substance, reaction, severity in chooser.sample(ALLERGIES, k=chooser.randint(1, 2)):
            allergy_add(
                actor=nurse,
                patient=patient,
                substance=substance,
                reaction=reaction,
                severity=severity,
            )
    if adult and chooser.random() < 0.35:
        history_add(
            actor=nurse,
            patient=patient,
            kind="surgical",
            condition=chooser.choice(
                [name for name, sexes in SURGERIES if patient.administrative_sex in sexes]
            ),
            year=chooser.randint(born.year + 18, today.year),
        )
    for condition, relation in chooser.sample(FAMILY, k=chooser.randint(0, 2)):
        history_add(
            actor=nurse, patient=patient, kind="family", condition=condition, relation=relation
        )
    social_history_update(
        actor=nurse,
        patient=patient,
        tobacco=_weighted(chooser, TOBACCO) if adult else SocialHistory.Tobacco.NEVER,
        alcohol=chooser.choice(["none", "occasional", "moderate"]) if adult else "none",
        occupation=chooser.choice(OCCUPATIONS) if adult else "Student",
    )


def _coverage(chooser, patient, payers, desk, today, adult) -> None:
    if chooser.random() > 0.9:
        return  # self-pay
    subscriber = {}
    if not adult:
        subscriber = {
            "relationship": Coverage.Relationship.CHILD,
            "subscriber_given_name": chooser.choice(["Dana", "Chris", "Morgan", "Robin"]),
            "subscriber_family_name": patient.family_name,
            "subscriber_date_of_birth": patient.date_of_birth.replace(
                year=patient.date_of_birth.year - 30
            ),
            "subscriber_sex": chooser.choice("FM"),
        }
    else:
        subscriber = {"relationship": Coverage.Relationship.SELF}
    payer = chooser.choice(payers)
    coverage = coverage_add(
        actor=desk,
        patient=patient,
        payer=payer,
        member_id=f"{payer.payer_id[:1]}{chooser.randrange(10**8, 10**9)}",
        plan_name=chooser.choice(PLANS),
        group_number=f"G{chooser.randrange(1000, 9999)}",
        priority=Coverage.Priority.PRIMARY,
        effective_from=today.replace(month=1, day=1),
        copay=Decimal(chooser.choice([0, 20, 25, 30, 40])),
        **subscriber,
    )
    if chooser.random() < 0.25:
        card = document_upload(
            actor=desk,
            patient=patient,
            uploaded_file=_card_image(coverage, patient),
            category=Document.Category.INSURANCE_CARD,
            title="Insurance card, front",
        )
        coverage_update(actor=desk, coverage=coverage, card_front=card)


def _card_image(coverage: Coverage, patient: Patient) -> SimpleUploadedFile:
    """A plain drawing of an insurance card: the payer, the plan and the member, all made up."""
    card = Image.new("RGB", (640, 400), "white")
    draw = ImageDraw.Draw(card)
    draw.rectangle((0, 0, 639, 80), fill=(16, 110, 100))
    draw.text((24, 28), coverage.payer.name, fill="white", font_size=28)
    lines = [
        coverage.plan_name,
        f"Member: {patient.given_name} {patient.family_name}",
        f"Member ID: {coverage.member_id}",
        f"Group: {coverage.group_number}    Payer ID: {coverage.payer.payer_id}",
        "SPECIMEN - synthetic demo data",
    ]
    for number, line in enumerate(lines):
        draw.text((24, 110 + number * 52), line, fill=(30, 30, 30), font_size=24)
    image = io.BytesIO()
    card.save(image, "PNG")
    return SimpleUploadedFile("card-front.png", image.getvalue())


def demo_restricted(patients: list[Patient], physician: User) -> None:
    """Two sensitive records, the demo physician's own patients: others must break the glass."""
    for patient in patients[:2]:
        patient_update(actor=physician, patient=patient, primary_care_provider=physician)
        patient_restriction_set(actor=physician, patient=patient, restricted=True)
