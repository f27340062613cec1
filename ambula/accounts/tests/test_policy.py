import pytest
from django.template import Context, Template
from django.test import RequestFactory

from ambula.accounts.policy import (
    ROLE_CAPABILITIES,
    Capability,
    can,
    capabilities_of,
    require,
    visible,
)
from ambula.accounts.roles import STAFF_ROLES, Role
from ambula.accounts.services import user_deactivate
from ambula.accounts.tests.factories import UserFactory
from ambula.core.errors import AccessDenied
from ambula.scheduling.models import Location

pytestmark = pytest.mark.django_db


def test_every_role_has_an_entry():
    assert set(ROLE_CAPABILITIES) == set(Role)


def test_every_staff_role_can_use_the_staff_app_and_patients_cannot():
    for role in STAFF_ROLES:
        assert Capability.STAFF_APP in ROLE_CAPABILITIES[role], role
    assert ROLE_CAPABILITIES[Role.PATIENT] == {Capability.USE_PORTAL}


@pytest.mark.parametrize(
    ("role", "capability", "allowed"),
    [
        (Role.FRONT_DESK, Capability.VIEW_DEMOGRAPHICS, True),
        (Role.FRONT_DESK, Capability.MANAGE_SCHEDULE, True),
        (Role.FRONT_DESK, Capability.VIEW_CLINICAL_NOTES, False),
        (Role.BILLER, Capability.SUBMIT_CLAIMS, True),
        (Role.BILLER, Capability.VIEW_CLINICAL_NOTES, False),
        (Role.PHYSICIAN, Capability.VIEW_CLINICAL_NOTES, True),
        (Role.PHYSICIAN, Capability.MANAGE_ACCOUNTS, False),
        (Role.NURSE, Capability.SUBMIT_CLAIMS, False),
        (Role.ADMIN, Capability.MANAGE_ACCOUNTS, True),
        (Role.ADMIN, Capability.VIEW_CLINICAL_NOTES, False),
        (Role.PRIVACY_OFFICER, Capability.VIEW_AUDIT, True),
        (Role.PRIVACY_OFFICER, Capability.MANAGE_ACCOUNTS, False),
    ],
)
def test_minimum_necessary(role, capability, allowed):
    assert can(UserFactory(roles=[role]), capability) is allowed


def test_roles_add_up():
    user = UserFactory(roles=[Role.FRONT_DESK, Role.BILLER])
    assert can(user, Capability.MANAGE_SCHEDULE)
    assert can(user, Capability.SUBMIT_CLAIMS)
    assert not can(user, Capability.VIEW_CLINICAL_NOTES)


def test_anonymous_and_inactive_users_can_do_nothing(admin_user):
    from django.contrib.auth.models import AnonymousUser

    assert capabilities_of(AnonymousUser()) == frozenset()
    assert capabilities_of(None) == frozenset()
    nurse = UserFactory(roles=[Role.NURSE])
    assert capabilities_of(nurse)
    assert capabilities_of(user_deactivate(actor=admin_user, user=nurse)) == frozenset()


def test_require_raises_access_denied():
    nurse = UserFactory(roles=[Role.NURSE])
    require(nurse, Capability.VIEW_CLINICAL_NOTES)
    with pytest.raises(AccessDenied):
        require(nurse, Capability.MANAGE_ACCOUNTS)


def test_visible_narrows_a_queryset(physician, admin_user):
    from ambula.scheduling.services import location_create

    location_create(
        actor=admin_user,
        name="Main",
        address_line="1 Main St",
        city="Springfield",
        state="IL",
        postal_code="62701",
    )
    everything = Location.objects.all()
    assert visible(admin_user, Capability.MANAGE_SCHEDULE, everything).count() == 1
    assert visible(physician, Capability.MANAGE_SCHEDULE, everything).count() == 0


def test_templates_ask_the_policy_through_the_can_tag(admin_user, physician):
    template = Template('{% load access %}{% can "accounts.manage" as ok %}{{ ok }}')
    request = RequestFactory().get("/")
    request.user = admin_user
    assert template.render(Context({"request": request})) == "True"
    request.user = physician
    assert template.render(Context({"request": request})) == "False"


def test_the_can_tag_refuses_unknown_capabilities(admin_user):
    template = Template('{% load access %}{% can "accounts.mange" as ok %}{{ ok }}')
    request = RequestFactory().get("/")
    request.user = admin_user
    with pytest.raises(ValueError):
        template.render(Context({"request": request}))
