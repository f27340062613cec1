from django.contrib.auth.views import LoginView

from ambula.accounts.forms import SignInForm
from ambula.core.demo import DEMO_PASSWORD, DEMO_USERS


class SignInView(LoginView):
    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        # The template shows these only when the practice is the demo practice.
        return super().get_context_data(
            demo_users=DEMO_USERS, demo_password=DEMO_PASSWORD, **kwargs
        )
