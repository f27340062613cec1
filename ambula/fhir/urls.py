from django.urls import path, register_converter

from ambula.fhir import views


class ResourceTypeConverter:
    regex = "[A-Z][A-Za-z]{1,63}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class ResourceIdConverter(ResourceTypeConverter):
    regex = r"[A-Za-z0-9\-.]{1,64}"  # FHIR's id datatype


register_converter(ResourceTypeConverter, "fhir_type")
register_converter(ResourceIdConverter, "fhir_id")

app_name = "fhir"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("", views.system, name="system"),
    path("Patient/<fhir_id:resource_id>/$everything", views.patient_everything, name="everything"),
    path("<fhir_type:resource_type>/_search", views.type_search, name="search"),
    path(
        "<fhir_type:resource_type>/<fhir_id:resource_id>/_history/<fhir_id:version_id>",
        views.instance_version,
        name="vread",
    ),
    path(
        "<fhir_type:resource_type>/<fhir_id:resource_id>/_history",
        views.instance_history,
        name="history",
    ),
    path("<fhir_type:resource_type>/<fhir_id:resource_id>", views.instance, name="instance"),
    path("<fhir_type:resource_type>", views.type_level, name="type"),
    path("<path:rest>", views.unknown, name="unknown"),
]
