"""The one declaration a view needs to record who looked at a patient's data."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse

from ambula.audit.services import record


def records_patient_access(*, category: str, action: str) -> Callable:
    """Record one audit event per successful response, for the patient in the URL.

    The view takes a `patient_id` URL argument; the event carries that id, the data category
    (e.g. "demographics", "medication list") and the actor. Failed responses record nothing:
    the access was refused, and the refusal has its own event.
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, patient_id, **kwargs) -> HttpResponse:
            response = view(request, *args, patient_id=patient_id, **kwargs)
            if response.status_code < 400:
                record(
                    actor=request.user,
                    action=action,
                    category=category,
                    patient_id=patient_id,
                )
            return response

        wrapper.audit_category = category
        return wrapper

    return decorate
