from django.urls import path

from ambula.patients.views import allergies, chart, registration

app_name = "patients"

urlpatterns = [
    path("", registration.search, name="search"),
    path("new/", registration.register, name="register"),
    path("<uuid:patient_id>/", chart.chart, name="chart"),
    path("<uuid:patient_id>/allergies/", allergies.allergy_add_view, name="allergy_add"),
    path("<uuid:patient_id>/allergies/none/", allergies.allergies_none_view, name="allergies_none"),
    path(
        "<uuid:patient_id>/allergies/<uuid:allergy_id>/<slug:status>/",
        allergies.allergy_status_view,
        name="allergy_status",
    ),
]
