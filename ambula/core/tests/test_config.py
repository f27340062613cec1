import os
import stat
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambula import config


@pytest.fixture
def load(tmp_path):
    def load_with(**environ):
        return config.load({"AMBULA_DATA_DIR": str(tmp_path / "data"), **environ}, cwd=tmp_path)

    return load_with


def test_defaults_are_safe(load, tmp_path):
    settings = load()
    assert settings.debug is False
    assert settings.https is False
    assert settings.allowed_hosts == ["localhost", "127.0.0.1", "[::1]"]
    assert settings.time_zone == "UTC"
    assert settings.redis_url is None
    assert settings.log_format == "text"
    assert settings.database["ENGINE"] == "django.db.backends.sqlite3"
    assert settings.database["NAME"] == str(tmp_path / "data" / "ambula.sqlite3")


def test_data_dir_defaults_to_var_in_the_working_directory(tmp_path):
    settings = config.load({}, cwd=tmp_path)
    assert settings.data_dir == tmp_path / "var"
    assert (tmp_path / "var").is_dir()


def test_relative_data_dir_is_taken_from_the_working_directory(tmp_path):
    settings = config.load({"AMBULA_DATA_DIR": "state/here"}, cwd=tmp_path)
    assert settings.data_dir == tmp_path / "state" / "here"


def test_data_dir_is_created_readable_by_owner_only(load, tmp_path):
    load()
    data_dir = tmp_path / "data"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for child in ("documents", "queue", "cache", "keys"):
        assert stat.S_IMODE((data_dir / child).stat().st_mode) == 0o700


def test_secret_key_is_generated_once_with_owner_only_permissions(load, tmp_path):
    first = load()
    key_file = tmp_path / "data" / "secret_key"
    assert first.secret_key_file == key_file
    assert len(first.secret_key) >= config.MINIMUM_SECRET_KEY_LENGTH
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load().secret_key == first.secret_key


def test_secret_key_from_environment_wins_and_writes_no_file(load, tmp_path):
    settings = load(AMBULA_SECRET_KEY="k" * 60)
    assert settings.secret_key == "k" * 60
    assert settings.secret_key_file is None
    assert not (tmp_path / "data" / "secret_key").exists()


def test_processes_starting_together_agree_on_one_key(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    keys, barrier = [], threading.Barrier(8)

    def start():
        barrier.wait()
        keys.append(config.load_or_create_secret_key(data_dir)[0])

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1


def test_truncated_key_file_is_refused_not_silently_replaced(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "secret_key").write_text("short\n")
    with pytest.raises(config.ConfigurationError, match="too short"):
        config.load_or_create_secret_key(data_dir)
    assert (data_dir / "secret_key").read_text() == "short\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("Yes", True), (" on ", True), ("0", False), ("off", False)],
)
def test_debug_flag_words(load, value, expected):
    assert load(AMBULA_DEBUG=value).debug is expected


def test_unknown_boolean_word_is_an_error_naming_the_variable(load):
    with pytest.raises(config.ConfigurationError, match="AMBULA_DEBUG"):
        load(AMBULA_DEBUG="maybe")


@given(st.text(max_size=20))
def test_parse_bool_accepts_or_rejects_cleanly(value):
    try:
        result = config.parse_bool("AMBULA_X", value, default=False)
    except config.ConfigurationError:
        assert value.strip().lower() not in config.TRUE_WORDS | config.FALSE_WORDS
    else:
        assert result is (value.strip().lower() in config.TRUE_WORDS)


def test_allowed_hosts_are_a_comma_separated_list(load):
    settings = load(AMBULA_ALLOWED_HOSTS=" clinic.example.org, ,10.0.0.5 ")
    assert settings.allowed_hosts == ["clinic.example.org", "10.0.0.5"]


def test_time_zone_must_be_an_iana_name(load):
    assert load(AMBULA_TIME_ZONE="America/Chicago").time_zone == "America/Chicago"
    with pytest.raises(config.ConfigurationError, match="AMBULA_TIME_ZONE"):
        load(AMBULA_TIME_ZONE="Mars/Olympus_Mons")


def test_log_settings_are_validated(load):
    assert load(AMBULA_LOG_FORMAT="JSON").log_format == "json"
    assert load(AMBULA_LOG_LEVEL="debug").log_level == "DEBUG"
    with pytest.raises(config.ConfigurationError, match="AMBULA_LOG_FORMAT"):
        load(AMBULA_LOG_FORMAT="xml")
    with pytest.raises(config.ConfigurationError, match="AMBULA_LOG_LEVEL"):
        load(AMBULA_LOG_LEVEL="loud")


def test_sqlite_runs_in_wal_mode_with_immediate_transactions(load):
    options = load().database["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]
    assert options["timeout"] >= 5


def test_postgres_url_is_parsed_with_persistent_connections(load):
    database = load(AMBULA_DATABASE_URL="postgres://clinic:s3cret@db.internal:5433/ambula").database
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", 5433, "ambula")
    assert (database["USER"], database["PASSWORD"]) == ("clinic", "s3cret")
    assert database["CONN_MAX_AGE"] > 0
    assert database["CONN_HEALTH_CHECKS"] is True
    assert "OPTIONS" not in database or "transaction_mode" not in database["OPTIONS"]


@pytest.mark.parametrize("url", ["mysql://root@localhost/ambula", "ambula.db", "http://x"])
def test_unsupported_database_urls_are_refused(load, url):
    with pytest.raises(config.ConfigurationError, match="AMBULA_DATABASE_URL"):
        load(AMBULA_DATABASE_URL=url)


def test_redis_url_must_be_a_redis_url(load):
    assert load(AMBULA_REDIS_URL="redis://127.0.0.1:6379/0").redis_url == "redis://127.0.0.1:6379/0"
    with pytest.raises(config.ConfigurationError, match="AMBULA_REDIS_URL"):
        load(AMBULA_REDIS_URL="127.0.0.1:6379")


def test_https_and_proxy_flags(load):
    settings = load(AMBULA_HTTPS="true", AMBULA_BEHIND_PROXY="1")
    assert settings.https is True
    assert settings.behind_proxy is True


def test_loading_does_not_touch_the_process_environment(load):
    before = dict(os.environ)
    load(AMBULA_DEBUG="true")
    assert dict(os.environ) == before
