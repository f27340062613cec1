"""The OAuth 2.0 endpoints, under /oauth/. DOT's views reverse these names in its namespace."""

from django.urls import path, re_path

from ambula.smart import views

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", views.SmartAuthorizationView.as_view(), name="authorize"),
    path("token/", views.token, name="token"),
    path("revoke/", views.revoke, name="revoke-token"),
    path("introspect/", views.introspect, name="introspect"),
    path("userinfo/", views.userinfo, name="user-info"),
    path(".well-known/jwks.json", views.jwks, name="jwks-info"),
    re_path(
        r"^\.well-known/openid-configuration/?$",
        views.openid_configuration,
        name="oidc-connect-discovery-info",
    ),
]
