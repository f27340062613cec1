from django.urls import path

from ambula.patients.views import allergies, chart, emergency, merge, registration
from ambula.patients.views import coverage as coverage_views
from ambula.patients.views import demographics as demographic_views
from ambula.patients.views import documents as document_views
from ambula.patients.views import history as history_views
from ambula.patients.views import medications as medication_views
from ambula.patients.views import payers as payer_views
from ambula.patients.views import problems as problem_views

app_name = "patients"

urlpatterns = [
    path("", registration.search, name="search"),
    path("new/", registration.register, name="register"),
    path("<uuid:patient_id>/", chart.chart, name="chart"),
    # Demographics: the details page and the chart's contacts
    path("<uuid:patient_id>/edit/", demographic_views.edit, name="edit"),
    path("<uuid:patient_id>/contacts/", demographic_views.contact_add_view, name="contact_add"),
    path(
        "<uuid:patient_id>/contacts/<uuid:contact_id>/remove/",
        demographic_views.contact_remove_view,
        name="contact_remove",
    ),
    path("<uuid:patient_id>/merge/", merge.merge, name="merge"),
    path(
        "<uuid:patient_id>/emergency-access/", emergency.emergency_access, name="emergency_access"
    ),
    path("emergency-access/", emergency.emergency_reviews, name="emergency_reviews"),
    path("emergency-access/<uuid:grant_id>/", emergency.emergency_review, name="emergency_review"),
    path("<uuid:patient_id>/allergies/", allergies.allergy_add_view, name="allergy_add"),
    path("<uuid:patient_id>/allergies/none/", allergies.allergies_none_view, name="allergies_none"),
    path(
        "<uuid:patient_id>/allergies/<uuid:allergy_id>/<slug:status>/",
        allergies.allergy_status_view,
        name="allergy_status",
    ),
    path("<uuid:patient_id>/problems/", problem_views.problem_add_view, name="problem_add"),
    path(
        "<uuid:patient_id>/problems/<uuid:problem_id>/resolve/",
        problem_views.problem_resolve_view,
        name="problem_resolve",
    ),
    path(
        "<uuid:patient_id>/problems/<uuid:problem_id>/entered-in-error/",
        problem_views.problem_strike_view,
        name="problem_strike",
    ),
    path(
        "<uuid:patient_id>/problems/<uuid:problem_id>/note/",
        problem_views.problem_note_view,
        name="problem_note",
    ),
    path(
        "<uuid:patient_id>/medications/",
        medication_views.medication_add_view,
        name="medication_add",
    ),
    path(
        "<uuid:patient_id>/medications/<uuid:medication_id>/stop/",
        medication_views.medication_stop_view,
        name="medication_stop",
    ),
    path(
        "<uuid:patient_id>/medications/<uuid:medication_id>/entered-in-error/",
        medication_views.medication_strike_view,
        name="medication_strike",
    ),
    path("<uuid:patient_id>/history/", history_views.history_add_view, name="history_add"),
    path(
        "<uuid:patient_id>/history/<uuid:history_entry_id>/entered-in-error/",
        history_views.history_strike_view,
        name="history_strike",
    ),
    path(
        "<uuid:patient_id>/history/social/",
        history_views.social_history_view,
        name="social_history_update",
    ),
    # Insurance: the payer directory and each patient's coverage
    path("payers/", payer_views.payers, name="payers"),
    path("payers/new/", payer_views.payer_add, name="payer_add"),
    path("payers/manage/new/", payer_views.payer_add_managed, name="payer_add_managed"),
    path("payers/<uuid:payer_id>/edit/", payer_views.payer_edit, name="payer_edit"),
    path(
        "payers/<uuid:payer_id>/deactivate/",
        payer_views.payer_deactivate_view,
        name="payer_deactivate",
    ),
    path(
        "payers/<uuid:payer_id>/reactivate/",
        payer_views.payer_reactivate_view,
        name="payer_reactivate",
    ),
    path("<uuid:patient_id>/coverage/", coverage_views.coverage_add_view, name="coverage_add"),
    path(
        "<uuid:patient_id>/coverage/<uuid:coverage_id>/edit/",
        coverage_views.coverage_edit_view,
        name="coverage_edit",
    ),
    path(
        "<uuid:patient_id>/coverage/<uuid:coverage_id>/end/",
        coverage_views.coverage_end_view,
        name="coverage_end",
    ),
    path(
        "<uuid:patient_id>/coverage/<uuid:coverage_id>/entered-in-error/",
        coverage_views.coverage_strike_view,
        name="coverage_strike",
    ),
    path(
        "<uuid:patient_id>/documents/",
        document_views.document_upload_view,
        name="document_upload",
    ),
    path(
        "<uuid:patient_id>/documents/<uuid:document_id>/",
        document_views.document_download,
        name="document_download",
    ),
    path(
        "<uuid:patient_id>/documents/<uuid:document_id>/preview/",
        document_views.document_preview,
        name="document_preview",
    ),
    path(
        "<uuid:patient_id>/documents/<uuid:document_id>/entered-in-error/",
        document_views.document_strike_view,
        name="document_strike",
    ),
]
