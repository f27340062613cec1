from django.urls import path

from ambula.scheduling import views

app_name = "scheduling"

urlpatterns = [
    path("", views.day_board, name="day_board"),
    path("print/", views.day_print, name="day_print"),
    path("book/", views.book, name="book"),
    path("slots/", views.slots, name="slots"),
    path("provider/<uuid:provider_id>/", views.provider_week, name="provider_week"),
    path("appointments/<uuid:appointment_id>/check-in/", views.check_in, name="check_in"),
    path("appointments/<uuid:appointment_id>/room/", views.room, name="room"),
    path("appointments/<uuid:appointment_id>/complete/", views.complete, name="complete"),
    path("appointments/<uuid:appointment_id>/no-show/", views.no_show, name="no_show"),
    path("appointments/<uuid:appointment_id>/cancel/", views.cancel, name="cancel"),
    path("appointments/<uuid:appointment_id>/reschedule/", views.reschedule, name="reschedule"),
]
