from django.urls import path

from ambula.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.events, name="events"),
    path("export.csv", views.export, name="export"),
    path("disclosures/", views.disclosures, name="disclosures"),
    path("<uuid:event_id>/", views.event_detail, name="event_detail"),
]
