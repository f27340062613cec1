from django.urls import path

from ambula.scheduling.views import (
    board,
    booking,
    provider_setup,
    schedule_exceptions,
    setup,
    waitlist,
    week,
)

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
    path("waitlist/", waitlist.waitlist, name="waitlist"),
    path("waitlist/add/", waitlist.add, name="waitlist_add"),
    path("waitlist/withdraw/", waitlist.withdraw, name="waitlist_withdraw"),
    path("waitlist/slot/", waitlist.slot, name="waitlist_slot"),
    path("waitlist/slot/claim/", waitlist.claim, name="waitlist_claim"),
    # Set-up: the administrator's pages, and time off and closures for the front desk too.
    path("setup/", setup.overview, name="setup"),
    path("setup/locations/new/", setup.location_add, name="setup_location_add"),
    path("setup/locations/<uuid:location_id>/", setup.location_edit, name="setup_location"),
    path(
        "setup/locations/<uuid:location_id>/hours/",
        setup.location_hours,
        name="setup_location_hours",
    ),
    path(
        "setup/locations/<uuid:location_id>/resources/new/",
        setup.resource_add,
        name="setup_resource_add",
    ),
    path("setup/resources/<uuid:resource_id>/", setup.resource_edit, name="setup_resource"),
    path("setup/providers/new/", provider_setup.provider_add, name="setup_provider_add"),
    path(
        "setup/providers/<uuid:provider_id>/", provider_setup.provider_edit, name="setup_provider"
    ),
    path(
        "setup/providers/<uuid:provider_id>/active/",
        provider_setup.provider_active,
        name="setup_provider_active",
    ),
    path(
        "setup/providers/<uuid:provider_id>/blocks/new/",
        provider_setup.block_add,
        name="setup_block_add",
    ),
    path("setup/blocks/<uuid:block_id>/", provider_setup.block_edit, name="setup_block"),
    path(
        "setup/blocks/<uuid:block_id>/delete/",
        provider_setup.block_delete,
        name="setup_block_delete",
    ),
    path("setup/types/new/", setup.type_add, name="setup_type_add"),
    path("setup/types/<uuid:appointment_type_id>/", setup.type_edit, name="setup_type"),
    path("setup/exceptions/", schedule_exceptions.exceptions, name="setup_exceptions"),
    path(
        "setup/exceptions/<uuid:exception_id>/delete/",
        schedule_exceptions.exception_delete,
        name="setup_exception_delete",
    ),
]
