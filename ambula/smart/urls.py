from django.urls import path

from ambula.smart import views

app_name = "smart"

urlpatterns = [
    path(
        ".well-known/smart-configuration",
        views.smart_configuration,
        name="smart_configuration",
    ),
    path("practice/api-clients/", views.api_clients, name="api_clients"),
    path("practice/api-clients/new/", views.api_client_new, name="api_client_new"),
    path("practice/api-clients/revoke/", views.api_client_revoke_view, name="api_client_revoke"),
]
