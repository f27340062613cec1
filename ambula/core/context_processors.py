from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from ambula.core.selectors import practice_get


def practice(request: HttpRequest) -> dict:
    # Lazy: pages that never show the practice name cost no query.
    return {"practice": SimpleLazyObject(practice_get)}
