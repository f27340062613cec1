import pytest
from django.core.exceptions import ValidationError

from ambula.accounts.models import RoleAssignment, User
from ambula.accounts.roles import Role
from ambula.accounts.services import user_create
from ambula.accounts.tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_user_create_normalises_and_hashes_with_argon2():
    user = user_create(
        actor=None,
        username="  MRivera ",
        email="M.Rivera@Clinic.Example ",
        full_name=" Dr. Morgan Rivera ",
        roles=[Role.PHYSICIAN, Role.ADMIN],
        password=TEST_PASSWORD,
    )
    assert user.username == "mrivera"
    assert user.email == "m.rivera@clinic.example"
    assert user.full_name == "Dr. Morgan Rivera"
    assert user.roles == [Role.ADMIN, Role.PHYSICIAN]
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password(TEST_PASSWORD)


def test_user_without_password_cannot_sign_in_yet():
    user = UserFactory(password=None)
    assert not user.has_usable_password()


def test_usernames_are_unique_whatever_the_case():
    UserFactory(username="jlee")
    with pytest.raises(ValidationError) as error:
        UserFactory(username="JLee")
    assert error.value.error_dict["__all__"][0].code == "username_taken"
    assert User.objects.count() == 1


def test_emails_are_unique_whatever_the_case():
    UserFactory(email="front@clinic.example")
    with pytest.raises(ValidationError) as error:
        UserFactory(email="FRONT@clinic.example")
    assert error.value.error_dict["__all__"][0].code == "email_taken"


def test_an_unknown_role_writes_nothing():
    with pytest.raises(ValueError):
        UserFactory(username="ghost", roles=["superhero"])
    assert not User.objects.filter(username="ghost").exists()
    assert not RoleAssignment.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", ""),
        ("email", "not-an-email"),
        ("full_name", ""),
        pytest.param("username", "x" * 151, id="username-too-long"),
    ],
)
def test_invalid_fields_are_reported_by_name(field, value):
    with pytest.raises(ValidationError) as error:
        UserFactory(**{field: value})
    assert field in error.value.error_dict
    assert not User.objects.exists()


def test_login_by_username_ignores_case(client):
    UserFactory(username="nurse1")
    assert client.login(username="NURSE1", password=TEST_PASSWORD)


@pytest.mark.parametrize(
    ("full_name", "initials"),
    [("Dr. Priya Raman", "PR"), ("Sam", "S"), ("Ana María de la Cruz", "AC"), ("Dr.", "N")],
)
def test_initials_skip_titles(full_name, initials):
    assert UserFactory(username="nobody", full_name=full_name).initials == initials
