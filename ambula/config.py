"""Read Ambula's configuration from the environment.

Every setting comes from an ``AMBULA_*`` variable with a safe default. The parsing lives here,
apart from ``settings.py``, so it can be tested with any environment without reloading Django.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
LOG_FORMATS = frozenset({"text", "json"})
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
SECRET_KEY_FILE = "secret_key"  # noqa: S105  (a file name, not a secret)
MINIMUM_SECRET_KEY_LENGTH = 50
DEFAULT_PWNED_PASSWORDS_URL = "https://api.pwnedpasswords.com/range/"
# Plain http only to this machine, e.g. a local mirror of the Pwned Passwords range API.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


class ConfigurationError(Exception):
    """An AMBULA_* variable holds a value Ambula cannot use."""


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database: dict
    secret_key: str
    secret_key_file: Path | None  # None when the key comes from AMBULA_SECRET_KEY
    debug: bool
    allowed_hosts: list[str]
    time_zone: str
    redis_url: str | None
    https: bool
    behind_proxy: bool
    log_format: str
    log_level: str
    pwned_passwords_check: bool
    pwned_passwords_url: str
    base_url: str
    email: dict
    trusted_proxies: tuple


def parse_bool(name: str, value: str | None, *, default: bool) -> bool:
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {value!r}.")


def parse_list(value: str | None, *, default: list[str]) -> list[str]:
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_pwned_passwords_url(value: str | None) -> str:
    """Check the range API URL: https, or plain http to this machine only."""
    url = value or DEFAULT_PWNED_PASSWORDS_URL
    try:
        parts = urlsplit(url)
        scheme, hostname = parts.scheme, parts.hostname
    except ValueError:
        scheme, hostname = "", None
    # The parsed host, not a string prefix: "http://localhost.example.com" is not this machine.
    if hostname and (scheme == "https" or (scheme == "http" and hostname in LOOPBACK_HOSTS)):
        return url
    # The value itself stays out of the message: a private mirror's URL may hold a password.
    raise ConfigurationError(
        "AMBULA_PWNED_PASSWORDS_URL must start with https://, or with http://127.0.0.1 or "
        "http://localhost for a mirror on this machine."
    )


EMAIL_SCHEMES = {"smtp": (False, False), "smtp+starttls": (True, False), "smtps": (False, True)}


def email_settings(url: str | None, sender: str | None) -> dict:
    """Turn AMBULA_EMAIL_URL into Django's EMAIL_* settings (console when unset)."""
    settings = {"DEFAULT_FROM_EMAIL": sender or "Ambula <no-reply@localhost>"}
    if not url or url == "console:":
        return settings | {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigurationError("AMBULA_EMAIL_URL is not a valid URL.") from None
    if parts.scheme not in EMAIL_SCHEMES or not parts.hostname:
        raise ConfigurationError(
            "AMBULA_EMAIL_URL must look like smtp://host:25, "
            "smtp+starttls://user:password@host:587 or smtps://user:password@host:465."
        )
    use_tls, use_ssl = EMAIL_SCHEMES[parts.scheme]
    try:
        port = parts.port or (465 if use_ssl else 587 if use_tls else 25)
    except ValueError:
        raise ConfigurationError("AMBULA_EMAIL_URL has an invalid port.") from None
    return settings | {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
        "EMAIL_TIMEOUT": 20,
    }


def parse_networks(name: str, value: str | None, *, default: list[str]) -> tuple:
    try:
        items = parse_list(value, default=default)
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as error:
        raise ConfigurationError(f"{name}: {error}") from None


def parse_base_url(value: str | None) -> str:
    url = (value or "http://127.0.0.1:8000").rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in {"http", "https"}
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        raise ConfigurationError("AMBULA_BASE_URL must be like https://clinic.example.org.")
    return url


def ensure_data_dir(path: Path) -> Path:
    """Create the data directory readable by its owner only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for child in ("documents", "queue", "cache", "keys"):
        (path / child).mkdir(mode=0o700, exist_ok=True)
    return path


def read_or_create_private_file(path: Path, make_content) -> str:
    """Return the file's text, first writing `make_content()` to it (0600) if it is missing.

    Written whole to a private file, then linked into place: a process starting at the same
    moment sees either no file or the complete one, and only one content ever wins.
    """
    if not path.exists():
        descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(descriptor, "w") as draft_file:
                draft_file.write(make_content())
                draft_file.flush()
                os.fsync(draft_file.fileno())  # a crash must not leave an empty key behind
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    return path.read_text()


def load_or_create_secret_key(data_dir: Path) -> tuple[str, Path]:
    """Return the key kept in the data directory, generating it (0600) on first run."""
    key_path = data_dir / SECRET_KEY_FILE
    key = read_or_create_private_file(key_path, lambda: secrets.token_urlsafe(64) + "\n").strip()
    if len(key) < MINIMUM_SECRET_KEY_LENGTH:
        raise ConfigurationError(
            f"{key_path} is empty or too short; delete it to generate a new key."
        )
    return key, key_path


def database_settings(url: str | None, data_dir: Path) -> dict:
    """Turn AMBULA_DATABASE_URL into Django's DATABASES entry."""
    if not url:
        url = f"sqlite:///{data_dir / 'ambula.sqlite3'}"
    scheme = urlsplit(url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ConfigurationError(
            f"AMBULA_DATABASE_URL must start with sqlite:// or postgres://, not {scheme or url!r}."
        )
    try:
        database = dj_database_url.parse(url)
    except ValueError as error:
        raise ConfigurationError(f"AMBULA_DATABASE_URL is malformed: {error}") from None
    database["ATOMIC_REQUESTS"] = False
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["OPTIONS"] = {
            # Writers queue behind one another instead of failing with "database is locked":
            # IMMEDIATE takes the write lock at BEGIN, the busy timeout makes others wait.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000"
            ),
        }
    else:
        database["CONN_MAX_AGE"] = 60
        database["CONN_HEALTH_CHECKS"] = True
    return database


def load(environ: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> Config:
    """Build the configuration from an environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    base = cwd or Path.cwd()

    data_dir = Path(env.get("AMBULA_DATA_DIR") or base / "var").expanduser()
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    ensure_data_dir(data_dir)

    if env.get("AMBULA_SECRET_KEY"):
        secret_key, secret_key_file = env["AMBULA_SECRET_KEY"], None
    else:
        secret_key, secret_key_file = load_or_create_secret_key(data_dir)

    time_zone = env.get("AMBULA_TIME_ZONE") or "UTC"
    if time_zone not in zoneinfo.available_timezones():
        raise ConfigurationError(f"AMBULA_TIME_ZONE {time_zone!r} is not an IANA time zone.")

    log_format = (env.get("AMBULA_LOG_FORMAT") or "text").lower()
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(f"AMBULA_LOG_FORMAT must be text or json, not {log_format!r}.")
    log_level = (env.get("AMBULA_LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigurationError(f"AMBULA_LOG_LEVEL {log_level!r} is not a logging level.")

    redis_url = env.get("AMBULA_REDIS_URL") or None
    if redis_url and urlsplit(redis_url).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigurationError("AMBULA_REDIS_URL must start with redis://, rediss:// or unix://.")

    return Config(
        data_dir=data_dir,
        database=database_settings(env.get("AMBULA_DATABASE_URL"), data_dir),
        secret_key=secret_key,
        secret_key_file=secret_key_file,
        debug=parse_bool("AMBULA_DEBUG", env.get("AMBULA_DEBUG"), default=False),
        allowed_hosts=parse_list(
            env.get("AMBULA_ALLOWED_HOSTS"), default=["localhost", "127.0.0.1", "[::1]"]
        ),
        time_zone=time_zone,
        redis_url=redis_url,
        https=parse_bool("AMBULA_HTTPS", env.get("AMBULA_HTTPS"), default=False),
        behind_proxy=parse_bool(
            "AMBULA_BEHIND_PROXY", env.get("AMBULA_BEHIND_PROXY"), default=False
        ),
        log_format=log_format,
        log_level=log_level,
        pwned_passwords_check=parse_bool(
            "AMBULA_PWNED_PASSWORDS_CHECK", env.get("AMBULA_PWNED_PASSWORDS_CHECK"), default=False
        ),
        pwned_passwords_url=parse_pwned_passwords_url(env.get("AMBULA_PWNED_PASSWORDS_URL")),
        base_url=parse_base_url(env.get("AMBULA_BASE_URL")),
        email=email_settings(env.get("AMBULA_EMAIL_URL"), env.get("AMBULA_EMAIL_FROM")),
        trusted_proxies=parse_networks(
            "AMBULA_TRUSTED_PROXIES",
            env.get("AMBULA_TRUSTED_PROXIES"),
            default=["127.0.0.1", "::1"],
        ),
    )
