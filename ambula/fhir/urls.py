from django.urls import path, re_path

from ambula.fhir import views

app_name = "fhir"

TYPE = r"(?P<resource_type>[A-Z][A-Za-z]{1,63})"
ID = r"(?P<resource_id>[A-Za-z0-9\-.]{1,64})"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("", views.system, name="system"),
    re_path(rf"^Patient/{ID}/\$everything$", views.patient_everything, name="everything"),
    re_path(rf"^{TYPE}/_search$", views.type_search, name="search"),
    re_path(
        rf"^{TYPE}/{ID}/_history/(?P<version_id>[A-Za-z0-9\-.]{{1,64}})$",
        views.instance_version,
        name="vread",
    ),
    re_path(rf"^{TYPE}/{ID}/_history$", views.instance_history, name="history"),
    re_path(rf"^{TYPE}/{ID}$", views.instance, name="instance"),
    re_path(rf"^{TYPE}$", views.type_level, name="type"),
    re_path(r"^(?P<rest>.*)$", views.unknown, name="unknown"),
]
