from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from ambula.core.selectors import practice_get


def practice(request: HttpRequest) -> dict:
    # Lazy: pages that never show the practice name cost no query; signed-in requests reuse
    # the one the session middleware already read.
    def load():
        return request.practice if hasattr(request, "practice") else practice_get()

    return {"practice": SimpleLazyObject(load)}
