from django.urls import path

from ambula.core import views

app_name = "core"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("practice/security/", views.practice_security, name="practice_security"),
]
