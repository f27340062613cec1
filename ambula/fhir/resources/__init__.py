"""One module per resource type; importing a module registers its mapper."""

from importlib import import_module

MODULES = (
    "patient",
    "practitioner",
    "practitioner_role",
    "organization",
    "location",
    "coverage",
    "condition",
    "allergy_intolerance",
    "medication_statement",
    "document_reference",
    "schedule",
    "slot",
    "appointment",
    "audit_event",
)


def load_all() -> None:
    for name in MODULES:
        import_module(f"{__name__}.{name}")
