from django.urls import path

from ambula.patients import views

app_name = "patients"

urlpatterns = [
    path("", views.search, name="search"),
    path("new/", views.register, name="register"),
    path("<uuid:patient_id>/", views.chart, name="chart"),
]
