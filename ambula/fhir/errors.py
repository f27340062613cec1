"""Errors of the FHIR API. Each becomes an OperationOutcome with its HTTP status."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class FhirError(Exception):
    """One failed interaction: `code` is the FHIR issue type (invalid, not-found, conflict...)."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        *,
        expression: list[str] | None = None,
        issues: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.headers = headers or {}
        self.issues = issues or [issue(code, diagnostics, expression)]

    def outcome(self) -> dict:
        return operation_outcome(self.issues)


def issue(code: str, diagnostics: str, expression: list[str] | None = None, *, severity="error"):
    entry = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        entry["expression"] = expression
    return entry


def operation_outcome(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def bad_request(diagnostics: str, expression: list[str] | None = None) -> FhirError:
    return FhirError(400, "invalid", diagnostics, expression=expression)


def unprocessable(diagnostics: str, expression: list[str] | None = None) -> FhirError:
    return FhirError(422, "processing", diagnostics, expression=expression)


def not_found(resource_type: str, resource_id: str) -> FhirError:
    return FhirError(404, "not-found", f"{resource_type}/{resource_id} is not known.")


def forbidden(diagnostics: str) -> FhirError:
    return FhirError(403, "forbidden", diagnostics)


def not_supported(diagnostics: str, status: int = 405) -> FhirError:
    return FhirError(status, "not-supported", diagnostics)


def conflict(diagnostics: str) -> FhirError:
    return FhirError(409, "conflict", diagnostics)


def from_validation(error: ValidationError, paths: dict[str, str], resource_type: str):
    """A domain ValidationError as a 422 whose issues name the FHIR elements at fault.

    `paths` maps the domain's field names to FHIRPath expressions; a field without one is
    reported against the resource as a whole.
    """
    issues = []
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            where = [paths.get(field, resource_type)]
            for message in errors:
                issues.append(issue("invariant", " ".join(message.messages), where))
    else:
        for message in error.messages:
            issues.append(issue("invariant", message, [resource_type]))
    if not issues:
        issues.append(issue("invariant", "A rule of the practice refused it.", [resource_type]))
    return FhirError(422, "invariant", "", issues=issues)
