from django.contrib.auth.backends import ModelBackend

from ambula.accounts.models import User


class RoleAwareBackend(ModelBackend):
    """Django's password backend, loading the user's roles with the user.

    The permission policy and every audit event read `user.roles`; loading them once per
    request saves a query each time. Role changes take effect on the user's next request.
    """

    def get_user(self, user_id):
        try:
            user = User.objects.prefetch_related("role_assignments").get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
