import pytest
from django.core.exceptions import ValidationError

from ambula.accounts.roles import Role
from ambula.accounts.tests.factories import UserFactory
from ambula.audit.models import AuditEvent
from ambula.audit.services import changes_of
from ambula.core.errors import AccessDenied
from ambula.patients.coverage import (
    DEMO_PAYERS,
    payer_create,
    payer_deactivate,
    payer_list,
    payer_reactivate,
    payer_update,
)
from ambula.patients.models import Payer

pytestmark = pytest.mark.django_db

PRAIRIE = {"name": "Prairie Mutual Health", "payer_id": "AMB01"}


@pytest.fixture
def desk():
    return UserFactory(username="desk1", roles=[Role.FRONT_DESK])


@pytest.fixture
def biller():
    return UserFactory(username="biller1", roles=[Role.BILLER])


# --- Services ----------------------------------------------------------------------------------


def test_an_admin_adds_a_payer_and_the_change_is_audited(admin_user):
    payer = payer_create(
        actor=admin_user,
        name="  Prairie Mutual Health ",
        payer_id=" amb01 ",
        city="Springfield",
        state="il",
    )
    assert (payer.name, payer.payer_id, payer.state, payer.active) == (
        "Prairie Mutual Health",
        "AMB01",
        "IL",
        True,
    )
    event = AuditEvent.objects.get(action="patients.payer_created")
    assert (event.category, event.kind, event.target_id, event.patient_id) == (
        "payer directory",
        "create",
        str(payer.pk),
        None,
    )
    assert changes_of(event) == {
        "name": "Prairie Mutual Health",
        "payer_id": "AMB01",
        "city": "Springfield",
        "state": "IL",
    }


@pytest.mark.parametrize("typed", ["AMB01", "amb01", " Amb01 "])
def test_a_payer_id_already_in_the_directory_is_refused_whatever_its_case(admin_user, typed):
    payer_create(actor=admin_user, **PRAIRIE)
    with pytest.raises(ValidationError) as caught:
        payer_create(actor=admin_user, name="Another Plan", payer_id=typed)
    [error] = caught.value.error_dict["payer_id"]
    assert error.code == "payer_id_taken"
    assert "AMB01" in error.messages[0]
    assert Payer.objects.count() == 1
    assert AuditEvent.objects.filter(action="patients.payer_created").count() == 1


@pytest.mark.parametrize("bad", ["", "A", "AB-12", "AB 12", "X" * 21, "ÄB12", "12;DROP"])
def test_a_malformed_payer_id_is_refused(admin_user, bad):
    with pytest.raises(ValidationError) as caught:
        payer_create(actor=admin_user, name="Some Plan", payer_id=bad)
    assert "payer_id" in caught.value.error_dict
    assert not Payer.objects.exists()


def test_a_payer_needs_a_name(admin_user):
    with pytest.raises(ValidationError) as caught:
        payer_create(actor=admin_user, name="   ", payer_id="AMB09")
    assert "name" in caught.value.error_dict


def test_unknown_fields_are_a_programming_error(admin_user):
    with pytest.raises(TypeError, match="website"):
        payer_create(actor=admin_user, website="x", **PRAIRIE)


def test_the_front_desk_may_add_but_not_edit_or_deactivate(desk):
    payer = payer_create(actor=desk, **PRAIRIE)
    with pytest.raises(AccessDenied):
        payer_update(actor=desk, payer=payer, name="Renamed")
    with pytest.raises(AccessDenied):
        payer_deactivate(actor=desk, payer=payer)
    payer.refresh_from_db()
    assert (payer.name, payer.active) == ("Prairie Mutual Health", True)


@pytest.mark.parametrize("role", [Role.BILLER, Role.PRIVACY_OFFICER, Role.PATIENT])
def test_other_roles_cannot_add_a_payer(role):
    with pytest.raises(AccessDenied):
        payer_create(actor=UserFactory(username="someone", roles=[role]), **PRAIRIE)
    assert not Payer.objects.exists()


def test_an_admin_edits_a_payer_and_only_the_changes_are_recorded(admin_user):
    payer = payer_create(actor=admin_user, **PRAIRIE)
    payer_update(actor=admin_user, payer=payer, name="Prairie Mutual", phone="(217) 555-0101")
    payer.refresh_from_db()
    assert payer.name == "Prairie Mutual"
    event = AuditEvent.objects.get(action="patients.payer_updated")
    assert changes_of(event) == {
        "name": {"old": "Prairie Mutual Health", "new": "Prairie Mutual"},
        "phone": {"old": "", "new": "(217) 555-0101"},
    }


def test_an_edit_cannot_take_another_payers_id(admin_user):
    payer_create(actor=admin_user, **PRAIRIE)
    other = payer_create(actor=admin_user, name="Lakeshore Care", payer_id="AMB02")
    with pytest.raises(ValidationError) as caught:
        payer_update(actor=admin_user, payer=other, payer_id="amb01")
    assert caught.value.error_dict["payer_id"][0].code == "payer_id_taken"
    other.refresh_from_db()
    assert other.payer_id == "AMB02"
    # Its own ID, typed in another case, is no conflict.
    payer_update(actor=admin_user, payer=other, payer_id="amb02", name="Lakeshore Care Alliance")


def test_deactivating_and_reactivating_are_audited(admin_user):
    payer = payer_create(actor=admin_user, **PRAIRIE)
    payer = payer_deactivate(actor=admin_user, payer=payer)
    assert not payer.active
    with pytest.raises(ValidationError):
        payer_deactivate(actor=admin_user, payer=payer)
    payer = payer_reactivate(actor=admin_user, payer=payer)
    assert payer.active
    deactivated = AuditEvent.objects.get(action="patients.payer_deactivated")
    assert changes_of(deactivated) == {"active": {"old": True, "new": False}}
    assert AuditEvent.objects.filter(action="patients.payer_reactivated").count() == 1


def test_the_list_searches_name_and_payer_id_with_active_payers_first(admin_user, biller):
    for details in DEMO_PAYERS[:4]:
        payer_create(actor=admin_user, **details)
    lakeshore = Payer.objects.get(payer_id="AMB02")
    payer_deactivate(actor=admin_user, payer=lakeshore)
    everyone = list(payer_list(actor=biller))
    assert everyone[-1] == lakeshore
    assert [p.payer_id for p in payer_list(actor=biller, query="amb03")] == ["AMB03"]
    assert [p.payer_id for p in payer_list(actor=biller, query="prairie")] == ["AMB01"]
    assert list(payer_list(actor=biller, query="no such insurer")) == []
    with pytest.raises(AccessDenied):
        list(payer_list(actor=UserFactory(username="pat", roles=[Role.PATIENT])))


def test_the_demo_payers_are_valid_fictional_and_distinct(admin_user):
    assert len(DEMO_PAYERS) >= 8
    for details in DEMO_PAYERS:
        payer_create(actor=admin_user, **details)
    assert Payer.objects.count() == len(DEMO_PAYERS)
    assert all(p.payer_id.startswith("AMB") for p in Payer.objects.all())


# --- Pages -------------------------------------------------------------------------------------


def test_the_directory_page_lists_and_searches(client, sign_in, practice, admin_user, biller):
    payer_create(actor=admin_user, **PRAIRIE)
    payer_create(actor=admin_user, name="Lakeshore Care Alliance", payer_id="AMB02")
    sign_in(client, biller)
    page = client.get("/patients/payers/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Prairie Mutual Health" in html and "Lakeshore Care Alliance" in html
    assert "Add a payer" not in html  # billers list only
    assert "Deactivate" not in html
    found = client.get("/patients/payers/", {"q": "AMB02"}).content.decode()
    assert "Lakeshore Care Alliance" in found and "Prairie Mutual Health" not in found
    nothing = client.get("/patients/payers/", {"q": "zzz"}).content.decode()
    assert "No payer matches" in nothing


def test_the_directory_page_offers_management_to_admins(client, sign_in, practice, admin_user):
    payer = payer_create(actor=admin_user, **PRAIRIE)
    sign_in(client, admin_user)
    html = client.get("/patients/payers/").content.decode()
    assert f"/patients/payers/{payer.pk}/edit/" in html
    assert f"/patients/payers/{payer.pk}/deactivate/" in html
    assert "/patients/payers/manage/new/" in html


def test_the_directory_has_a_nav_entry_for_those_who_may_list(client, sign_in, practice, biller):
    sign_in(client, biller)
    html = client.get("/").content.decode()
    assert 'href="/patients/payers/"' in html


def test_the_front_desk_adds_a_payer_through_the_form(client, sign_in, practice, desk):
    sign_in(client, desk)
    assert client.get("/patients/payers/new/").status_code == 200
    response = client.post(
        "/patients/payers/new/",
        {"name": "Heartland Benefit Plans", "payer_id": "amb03", "phone": "515 555 0103"},
    )
    assert response.status_code == 302
    payer = Payer.objects.get()
    assert (payer.payer_id, payer.phone) == ("AMB03", "(515) 555-0103")
    duplicate = client.post("/patients/payers/new/", {"name": "Heartland", "payer_id": "AMB03"})
    assert duplicate.status_code == 200
    assert "already has the payer ID AMB03" in duplicate.content.decode()
    bad = client.post(
        "/patients/payers/new/",
        {"name": "", "payer_id": "A-1", "state": "Illinois", "postal_code": "6270"},
    )
    assert set(bad.context["form"].errors) == {"name", "payer_id", "state", "postal_code"}
    assert Payer.objects.count() == 1


def test_adding_from_a_chart_returns_there_but_never_off_site(client, sign_in, practice, desk):
    sign_in(client, desk)
    back = client.post(
        "/patients/payers/new/?next=/patients/",
        {"name": "Summit Peak Insurance", "payer_id": "AMB06"},
    )
    assert back["Location"] == "/patients/"
    away = client.post(
        "/patients/payers/new/",
        {"name": "Evergreen Family Health", "payer_id": "AMB08", "next": "https://evil.test/"},
    )
    assert away["Location"] == "/patients/payers/"


def test_the_front_desk_cannot_edit_or_deactivate(client, sign_in, practice, admin_user, desk):
    payer = payer_create(actor=admin_user, **PRAIRIE)
    sign_in(client, desk)
    edit = client.post(f"/patients/payers/{payer.pk}/edit/", {**PRAIRIE, "name": "Renamed"})
    assert edit.status_code == 403
    assert client.post(f"/patients/payers/{payer.pk}/deactivate/").status_code == 403
    assert client.get("/patients/payers/manage/new/").status_code == 403
    payer.refresh_from_db()
    assert (payer.name, payer.active) == ("Prairie Mutual Health", True)


def test_an_admin_edits_and_deactivates_through_the_pages(client, sign_in, practice, admin_user):
    payer = payer_create(actor=admin_user, **PRAIRIE)
    sign_in(client, admin_user)
    form = client.get(f"/patients/payers/{payer.pk}/edit/")
    assert 'value="AMB01"' in form.content.decode()
    saved = client.post(
        f"/patients/payers/{payer.pk}/edit/",
        {"name": "Prairie Mutual", "payer_id": "AMB01", "city": "Springfield", "state": "il"},
    )
    assert saved.status_code == 302
    payer.refresh_from_db()
    assert (payer.name, payer.state) == ("Prairie Mutual", "IL")
    client.post(f"/patients/payers/{payer.pk}/deactivate/")
    payer.refresh_from_db()
    assert not payer.active
    client.post(f"/patients/payers/{payer.pk}/reactivate/")
    payer.refresh_from_db()
    assert payer.active
    assert client.post("/patients/payers/manage/new/", {"name": "X Plan", "payer_id": "AMB09"})[
        "Location"
    ] == ("/patients/payers/")


def test_an_unknown_payer_is_not_found(client, sign_in, practice, admin_user):
    sign_in(client, admin_user)
    response = client.get("/patients/payers/01890000-0000-7000-8000-000000000000/edit/")
    assert response.status_code == 404


@pytest.mark.parametrize("role", [Role.BILLER, Role.PRIVACY_OFFICER])
def test_listing_only_roles_cannot_add(client, sign_in, practice, role):
    sign_in(client, UserFactory(username="lister", roles=[role]))
    assert client.get("/patients/payers/").status_code == 200
    assert client.post("/patients/payers/new/", PRAIRIE).status_code == 403
    assert client.post("/patients/payers/manage/new/", PRAIRIE).status_code == 403
    assert not Payer.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, practice):
    for url in ("/patients/payers/", "/patients/payers/new/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
