"""A handful of real ICD-10-CM codes, loaded through the loader: the tests' code table.

Loading the full set takes seconds; one dedicated test does that (marked slow).
"""

from ambula.terminology.icd10 import CodeRow, icd10_load
from ambula.terminology.models import CodeSetRelease

SAMPLE_CODES = [
    CodeRow("B18.2", "Chronic viral hepatitis C", True),
    CodeRow("C84.1", "Sézary disease", False),
    CodeRow("C84.10", "Sézary disease, unspecified site", True),
    CodeRow("E10.9", "Type 1 diabetes mellitus without complications", True),
    CodeRow("E11", "Type 2 diabetes mellitus", False),
    CodeRow("E11.65", "Type 2 diabetes mellitus with hyperglycemia", True),
    CodeRow("E11.9", "Type 2 diabetes mellitus without complications", True),
    CodeRow("D51.9", "Vitamin B12 deficiency anemia, unspecified", True),
    CodeRow("E55.9", "Vitamin D deficiency, unspecified", True),
    CodeRow("I10", "Essential (primary) hypertension", True),
    CodeRow("J45.909", "Unspecified asthma, uncomplicated", True),
    CodeRow("M54.50", "Low back pain, unspecified", True),
    CodeRow(
        "S72.001A",
        "Fracture of unspecified part of neck of right femur, initial encounter for closed "
        "fracture",
        True,
    ),
    CodeRow(
        "Z00.00",
        "Encounter for general adult medical examination without abnormal findings",
        True,
    ),
]


def load_sample_codes() -> CodeSetRelease:
    """Fill the code table with SAMPLE_CODES, as the CLI would (system work, no actor)."""
    return icd10_load(rows=SAMPLE_CODES, release="test sample", source="tests")
