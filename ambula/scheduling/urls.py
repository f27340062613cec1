from django.urls import path

from ambula.scheduling.views import board, booking, week

app_name = "scheduling"

urlpatterns = [
    path("", board.day_board, name="day_board"),
    path("print/", board.day_print, name="day_print"),
    path("book/", booking.book, name="book"),
    path("slots/", booking.slots, name="slots"),
    path("provider/<uuid:provider_id>/", week.provider_week, name="provider_week"),
    path("appointments/<uuid:appointment_id>/check-in/", board.check_in, name="check_in"),
    path("appointments/<uuid:appointment_id>/room/", board.room, name="room"),
    path("appointments/<uuid:appointment_id>/complete/", board.complete, name="complete"),
    path("appointments/<uuid:appointment_id>/no-show/", board.no_show, name="no_show"),
    path("appointments/<uuid:appointment_id>/cancel/", board.cancel, name="cancel"),
    path("appointments/<uuid:appointment_id>/reschedule/", booking.reschedule, name="reschedule"),
]
