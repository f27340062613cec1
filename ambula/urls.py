from django.urls import include, path

urlpatterns = [
    path("", include("ambula.core.urls")),
    path("accounts/", include("ambula.accounts.urls")),
    path("audit/", include("ambula.audit.urls")),
    path("patients/", include("ambula.patients.urls")),
    path("schedule/", include("ambula.scheduling.urls")),
    path("codes/", include("ambula.terminology.urls")),
    path("fhir/", include("ambula.fhir.urls")),
    path("oauth/", include("ambula.smart.oauth_urls")),
    path("", include("ambula.smart.urls")),
]

handler400 = "ambula.core.handlers.bad_request"
handler403 = "ambula.core.handlers.permission_denied"
handler404 = "ambula.core.handlers.page_not_found"
handler500 = "ambula.core.handlers.server_error"
