"""Django settings for Ambula. Every value comes from AMBULA_* variables (see ambula/config.py)."""

import os
from pathlib import Path

from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from ambula import config as ambula_config
from ambula.logging import logging_config
from ambula.smart.keys import oidc_private_key

CONFIG = ambula_config.load()
BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = CONFIG.data_dir
# Key material (encryption key ring, audit key): files here, 0600, or AMBULA_* variables.
KEYS_DIR = DATA_DIR / "keys"

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts

INSTALLED_APPS = [
    "ambula.core",
    "ambula.accounts",
    "ambula.patients",
    "ambula.terminology",
    "ambula.scheduling",
    "ambula.audit",
    "ambula.smart",
    "ambula.fhir",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "huey.contrib.djhuey",
    "oauth2_provider",
]
# The test suite's own models (ambula/testing/models.py); set by ambula/testing/pytest_plugin.py.
if os.environ.get("AMBULA_TESTING") == "1":
    INSTALLED_APPS.append("ambula.testing")

MIDDLEWARE = [
    "ambula.core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "ambula.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "ambula.accounts.middleware.SessionTimeoutMiddleware",
    "ambula.accounts.middleware.AccessPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "ambula.core.middleware.ApplicationErrorMiddleware",
]

AUTHENTICATION_BACKENDS = ["ambula.accounts.backends.RoleAwareBackend"]
ROOT_URLCONF = "ambula.urls"
WSGI_APPLICATION = "ambula.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ambula.core.context_processors.practice",
            ],
        },
    },
]

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {
        "NAME": "ambula.accounts.passwords.MaximumLengthValidator",
        "OPTIONS": {"max_length": 128},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "ambula.accounts.passwords.IdentityValidator"},
    {"NAME": "ambula.accounts.passwords.StrengthValidator", "OPTIONS": {"min_score": 3}},
    {"NAME": "ambula.accounts.passwords.PwnedPasswordsValidator"},
]
PWNED_PASSWORDS_CHECK = CONFIG.pwned_passwords_check
PWNED_PASSWORDS_URL = CONFIG.pwned_passwords_url

if CONFIG.redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CONFIG.redis_url,
            "KEY_PREFIX": "ambula",
        }
    }
    HUEY = {"name": "ambula", "huey_class": "huey.RedisHuey", "url": CONFIG.redis_url}
else:
    # A file cache is shared by every process on the machine, unlike a per-process memory cache.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }
    HUEY = {
        "name": "ambula",
        "huey_class": "huey.SqliteHuey",
        "filename": str(DATA_DIR / "queue" / "huey.sqlite3"),
    }
HUEY |= {"immediate": False, "utc": True, "consumer": {"workers": 2, "worker_type": "thread"}}

# Failed sign-ins: slow down after a few, lock after more (ambula/accounts/throttling.py).
LOGIN_THROTTLE = {
    "lock_after": 10,  # one username from one address
    "slow_down_after": 3,  # one username from anywhere
    "username_lock_after": 100,
    "max_delay_seconds": 30,
    "address_slow_down_after": 10,
    "address_lock_after": 50,
    "lock_minutes": 15,
    "forget_after_minutes": 15,
}
# Sessions end after this long however active the user is; the idle limit is a practice setting.
SESSION_ABSOLUTE_TIMEOUT_SECONDS = 12 * 60 * 60
# How long an invitation or set-password link stays valid.
PASSWORD_RESET_TIMEOUT = 72 * 60 * 60

# Sessions and cookies. Idle and absolute timeouts are enforced on the server by the accounts app.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = "ambula_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_FAILURE_VIEW = "ambula.core.views.csrf_failure"

# Transport security. HSTS is sent only on responses that travelled over HTTPS.
HTTPS = CONFIG.https
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 365 * 24 * 60 * 60
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if CONFIG.behind_proxy:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = False
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = CONFIG.time_zone
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DATA_DIR / "documents"},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    # Uploaded patient documents, encrypted on disk (ambula/core/storage.py).
    "documents": {
        "BACKEND": "ambula.core.storage.EncryptedFileSystemStorage",
        "OPTIONS": {"location": DATA_DIR / "documents"},
    },
}
# The largest document a user may upload; larger ones are refused before anything is written.
DOCUMENT_MAX_BYTES = 25 * 1024 * 1024
# Serving straight from the app directories keeps `make run` and tests free of collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Links in emails and printed by `ambula createuser` start with this.
BASE_URL = CONFIG.base_url
EMAIL_BACKEND = CONFIG.email["EMAIL_BACKEND"]
EMAIL_HOST = CONFIG.email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = CONFIG.email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = CONFIG.email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = CONFIG.email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = CONFIG.email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = CONFIG.email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = CONFIG.email.get("EMAIL_TIMEOUT")
DEFAULT_FROM_EMAIL = SERVER_EMAIL = CONFIG.email["DEFAULT_FROM_EMAIL"]

LOGGING_CONFIG = "logging.config.dictConfig"
LOGGING = logging_config(log_format=CONFIG.log_format, level=CONFIG.log_level)

SILENCED_SYSTEM_CHECKS = [
    # Usernames are unique case-insensitively (a Lower() constraint), stricter than unique=True.
    "auth.E003",
    "auth.W004",  # the same check, as Django words it when the backend is our own
    # ambula/core/checks.py replaces these with errors that name the AMBULA_* setting to change.
    "security.W008",
    "security.W009",
    "security.W012",
    "security.W016",
    "security.W018",
    # Joining the browsers' HSTS preload list binds the practice's whole domain: their call.
    "security.W021",
    # http redirect URIs: accepted only for loopback addresses (RFC 8252 native and developer
    # apps), which registration enforces (ambula/smart/services.py).
    "oauth2_provider.W008",
]

# OAuth 2.0 / SMART on FHIR (ambula/smart/). The OIDC signing key is read on first use.
OAUTH2_PROVIDER = {
    "PKCE_REQUIRED": True,
    # RFC 9700 (OAuth 2.0 Security BCP) throughout: no implicit or password grant, S256 only,
    # no tokens in query strings, `iss` in authorization responses, tokens stored only as
    # their SHA-256, refresh token replay revokes the family, exact redirect URIs.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": 60 * 60,
    "ID_TOKEN_EXPIRE_SECONDS": 60 * 60,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 90 * 24 * 60 * 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "SCOPES_BACKEND_CLASS": "ambula.smart.oauth.SmartScopes",
    "OAUTH2_VALIDATOR_CLASS": "ambula.smart.oauth.SmartValidator",
    # http is accepted only for localhost redirect URIs (ambula/smart/services.py).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": lazy(oidc_private_key, str)(),
}
# DOT's own models, named so that migrations referring to them resolve.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105 (a model)
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"  # noqa: S105
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"  # noqa: S105
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
