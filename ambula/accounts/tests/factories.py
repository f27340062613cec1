import factory

from ambula.accounts.roles import Role
from ambula.accounts.services import user_create

TEST_PASSWORD = "a-long-test-passphrase-42"


class UserFactory(factory.Factory):
    """Build users through the real service, so tests see what production writes."""

    class Meta:
        model = dict

    username = factory.Sequence(lambda number: f"user{number}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    full_name = factory.Faker("name")
    roles = factory.LazyFunction(lambda: [Role.PHYSICIAN])
    password = TEST_PASSWORD

    @classmethod
    def _create(cls, model_class, **fields):
        return user_create(actor=None, **fields)
