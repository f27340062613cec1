from django.urls import path

from ambula.accounts import admin_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.sign_in, name="login"),
    path("login/verify/", views.mfa_verify, name="mfa_verify"),
    path("logout/", views.sign_out, name="logout"),
    path("set-password/<uidb64>/<token>/", views.set_password, name="set_password"),
    path("mfa/setup/", views.mfa_enrol, name="mfa_enrol"),
    path("me/", views.account, name="account"),
    path("me/password/", views.password_change, name="password_change"),
    path("me/confirm/", views.confirm_password, name="confirm_password"),
    path("me/recovery-codes/", views.recovery_codes_regenerate, name="recovery_codes"),
    path("session/status/", views.session_status, name="session_status"),
    path("session/keepalive/", views.session_keepalive, name="session_keepalive"),
    path("users/", admin_views.users, name="users"),
    path("users/invite/", admin_views.user_invite, name="user_invite"),
    path("users/<uuid:user_id>/", admin_views.user_detail, name="user_detail"),
    path(
        "users/<uuid:user_id>/<slug:action>/",
        admin_views.user_action,
        name="user_action",
    ),
]
