"""Every audit action, in one documented list. Namespaced and in the past tense."""

ACTIONS: dict[str, str] = {
    # Authentication
    "auth.signed_in": "A user signed in (password and, where required, second factor).",
    "auth.sign_in_failed": "A sign-in attempt failed: wrong password, code, or a locked account.",
    "auth.signed_out": "A user signed out.",
    "auth.session_timed_out": "A session ended after inactivity or its maximum length.",
    "auth.password_changed": "A user changed their password; their other sessions ended.",
    "auth.password_set": "A user set their password from an invitation or set-password link.",
    "auth.mfa_enrolled": "A user enrolled an authenticator app.",
    "auth.mfa_recovery_code_used": "A user signed in with a one-time recovery code.",
    "auth.mfa_recovery_codes_regenerated": "A user replaced their recovery codes.",
    "auth.access_denied": "A user asked for something their role does not allow.",
    # Accounts and privileges
    "accounts.user_invited": "An administrator invited a new user.",
    "accounts.user_created": "A user account was created (command line or demo).",
    "accounts.roles_changed": "A user's roles were changed.",
    "accounts.user_deactivated": "A user was deactivated and their sessions ended.",
    "accounts.user_reactivated": "A user was reactivated.",
    "accounts.mfa_reset": "An administrator removed a user's authenticator and recovery codes.",
    "accounts.user_unlocked": "An administrator lifted a sign-in lock.",
    "accounts.sessions_ended": "A user's sessions were ended.",
    # Practice
    "practice.settings_changed": "The practice's security settings were changed.",
}
