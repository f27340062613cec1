from django.urls import path

from ambula.patients import views

app_name = "patients"

urlpatterns = [
    path("", views.search, name="search"),
    path("new/", views.register, name="register"),
    path("<uuid:patient_id>/", views.chart, name="chart"),
    path("<uuid:patient_id>/allergies/", views.allergy_add_view, name="allergy_add"),
    path("<uuid:patient_id>/allergies/none/", views.allergies_none_view, name="allergies_none"),
    path(
        "<uuid:patient_id>/allergies/<uuid:allergy_id>/<slug:status>/",
        views.allergy_status_view,
        name="allergy_status",
    ),
]
