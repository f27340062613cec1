"""How an appointment's status shows: its label and the semantic colour class.

Filters rather than `get_status_display`, which re-hashes every translated choice on each
call: on a board of 300 visits that alone cost tens of milliseconds.
"""

from django import template

from ambula.scheduling.models import Appointment

register = template.Library()

STATUS_CLASSES = {
    Appointment.Status.SCHEDULED: "status-booked",
    Appointment.Status.ARRIVED: "status-arrived",
    Appointment.Status.IN_ROOM: "status-in-room",
    Appointment.Status.COMPLETED: "status-done",
    Appointment.Status.NO_SHOW: "status-no-show",
}


@register.filter
def status_label(status: str) -> str:
    return Appointment.Status(status).label


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(status, "status-neutral")
