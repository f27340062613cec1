"""Deployment checks run by `ambula check` (Django's `check --deploy` plus these).

They replace Django's checks for DEBUG, the secret key and TLS with errors that name the
AMBULA_* variable to change, and add what only Ambula knows: file permissions of its data.
"""

import stat
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Info, Tags, Warning, register

from ambula.config import MINIMUM_SECRET_KEY_LENGTH

# ASVS level 2 asks for no more than 30 minutes of idle time.
MAXIMUM_RECOMMENDED_IDLE_MINUTES = 30


def secret_key_is_weak(key: str) -> bool:
    return (
        len(key) < MINIMUM_SECRET_KEY_LENGTH
        or len(set(key)) < 5
        or key.startswith("django-insecure-")
    )


def readable_by_others(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


@register(Tags.security, deploy=True)
def check_debug_off(app_configs, **kwargs):
    if settings.DEBUG:
        return [
            Error(
                "Debug mode is on: error pages would show internal details, including data.",
                hint="Unset AMBULA_DEBUG or set it to false.",
                id="ambula.E001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs):
    if secret_key_is_weak(settings.SECRET_KEY):
        return [
            Error(
                "The secret key is weak: short, repetitive or a development placeholder.",
                hint=(
                    f"Set AMBULA_SECRET_KEY to at least {MINIMUM_SECRET_KEY_LENGTH} random "
                    "characters, or unset it to use the key generated in the data directory."
                ),
                id="ambula.E002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_tls(app_configs, **kwargs):
    if not settings.HTTPS:
        return [
            Error(
                "HTTPS is not configured: passwords and patient data would cross the network "
                "in clear text, and cookies are not marked secure.",
                hint=(
                    "Serve with `ambula serve --certfile ... --keyfile ...`, or put a TLS proxy "
                    "in front and set AMBULA_HTTPS=true and AMBULA_BEHIND_PROXY=true."
                ),
                id="ambula.E003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_data_permissions(app_configs, **kwargs):
    config = settings.CONFIG
    protected = [config.data_dir, config.secret_key_file]
    return [
        Error(
            f"{path} can be read or written by other users of this machine.",
            hint=f"Run: chmod {'700' if path.is_dir() else '600'} {path}",
            id="ambula.E004",
        )
        for path in protected
        if path is not None and path.exists() and readable_by_others(path)
    ]


@register(Tags.database, deploy=True)
def check_database_engine(app_configs, **kwargs):
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return [
            Info(
                "Using SQLite: right for one machine; use PostgreSQL for several app servers.",
                hint="Set AMBULA_DATABASE_URL=postgres://... to move to PostgreSQL.",
                id="ambula.I001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_allowed_hosts(app_configs, **kwargs):
    if "*" in settings.ALLOWED_HOSTS:
        return [
            Error(
                "AMBULA_ALLOWED_HOSTS contains '*': any Host header would be accepted.",
                hint="List the host names users reach Ambula by, e.g. clinic.example.org.",
                id="ambula.E005",
            )
        ]
    return []


@register(Tags.database, deploy=True)
def check_practice_security(app_configs, databases=None, **kwargs):
    """What only the database knows: a demo left loaded, two-step sign-in off, long idle."""
    if not databases:
        return []
    from django.db import DatabaseError

    from ambula.core.selectors import practice_get

    try:
        practice = practice_get()
    except DatabaseError:
        return [
            Error(
                "The database cannot be read, or is not migrated.",
                hint="Run `ambula migrate`.",
                id="ambula.E006",
            )
        ]
    if practice is None:
        return []
    problems = []
    if practice.is_demo:
        problems.append(
            Error(
                "This is the demo practice, with published demo passwords.",
                hint="Start production from an empty database and `ambula createuser`.",
                id="ambula.E007",
            )
        )
    if not practice.mfa_required:
        problems.append(
            Warning(
                "Two-step sign-in is not required for staff.",
                hint="Turn it on under Security (administrators).",
                id="ambula.W001",
            )
        )
    if practice.idle_timeout_minutes > MAXIMUM_RECOMMENDED_IDLE_MINUTES:
        problems.append(
            Warning(
                f"Idle sessions end only after {practice.idle_timeout_minutes} minutes.",
                hint=f"Use {MAXIMUM_RECOMMENDED_IDLE_MINUTES} minutes or less under Security.",
                id="ambula.W002",
            )
        )
    return problems
