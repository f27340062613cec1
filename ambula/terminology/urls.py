from django.urls import path

from ambula.terminology import views

app_name = "terminology"

urlpatterns = [
    path("icd10/", views.icd10_search_view, name="icd10_search"),
]
