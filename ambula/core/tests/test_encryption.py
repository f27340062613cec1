"""The cipher, the token format and the key ring (ambula/core/encryption.py)."""

import base64
import json
import os
import re
import stat
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ambula.core import encryption
from ambula.core.encryption import (
    KEYS_VARIABLE,
    DecryptionError,
    KeyRingError,
    blind_index,
    decrypt,
    encrypt,
    key_ring,
    key_ring_add_key,
    key_ring_remove_key,
    read_key_ring_file,
    token_key_id,
)

TOKEN = re.compile(r"enc1:k[0-9]+:[A-Za-z0-9_-]+")
AAD = b"testing_encryptedsample.note.0190a0f0-0000-7000-8000-000000000001"
fixture_friendly = hypothesis_settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200
)


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path, monkeypatch):
    """A key ring of this test's own, created in a fresh keys directory on first use."""
    monkeypatch.delenv(KEYS_VARIABLE, raising=False)
    settings.KEYS_DIR = tmp_path / "keys"
    return settings.KEYS_DIR


def random_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def flip(token: str, position: int) -> str:
    """Flip one bit of the sealed bytes (nonce, ciphertext or tag) of a token."""
    prefix, key_id, encoded = token.split(":")
    sealed = bytearray(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    sealed[position] ^= 0x01
    return f"{prefix}:{key_id}:{base64.urlsafe_b64encode(bytes(sealed)).rstrip(b'=').decode()}"


# Tokens


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"x", "Zoë, née Ångström — 患者".encode(), os.urandom(1000), b"A" * (2 * 1024 * 1024)],
    ids=["empty", "one byte", "unicode", "binary", "2 MiB"],
)
def test_a_value_round_trips_as_an_ascii_token(plaintext):
    token = encrypt(plaintext, aad=AAD)

    assert TOKEN.fullmatch(token)
    assert token.isascii()
    assert token_key_id(token) == "k1"
    assert decrypt(token, aad=AAD) == plaintext


def test_equal_plaintexts_encrypt_differently():
    assert encrypt(b"same", aad=AAD) != encrypt(b"same", aad=AAD)


def test_the_token_is_nonce_ciphertext_and_tag():
    token = encrypt(b"12345", aad=AAD)
    sealed = base64.urlsafe_b64decode(token.split(":")[2] + "==")

    assert len(sealed) == 12 + 5 + 16
    assert b"12345" not in sealed


def test_a_token_under_other_associated_data_does_not_decrypt():
    token = encrypt(b"123-45-6789", aad=AAD)

    with pytest.raises(DecryptionError, match="another row or column"):
        decrypt(token, aad=AAD.replace(b"0001", b"0002"))
    with pytest.raises(DecryptionError):
        decrypt(token, aad=b"testing_encryptedsample.ssn.0190a0f0-0000-7000-8000-000000000001")


def test_every_flipped_bit_is_detected_never_garbage():
    token = encrypt(b"diagnosis: ...", aad=AAD)
    sealed_length = 12 + len(b"diagnosis: ...") + 16

    for position in range(sealed_length):
        with pytest.raises(DecryptionError):
            decrypt(flip(token, position), aad=AAD)


def test_a_token_under_an_unknown_key_is_refused():
    token = encrypt(b"secret", aad=AAD)

    with pytest.raises(DecryptionError, match="k7, which is not in the key ring"):
        decrypt(token.replace("enc1:k1:", "enc1:k7:"), aad=AAD)


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "secret plaintext",
        "enc1:k1:",
        "enc1:k1:AAAA",
        "enc2:k1:" + "A" * 40,
        "enc1:key1:" + "A" * 40,
        "enc1:k0:" + "A" * 40,
        "enc1:k1:" + "A" * 40 + "=",
        "enc1:k1:" + "A" * 39 + "+",
        "enc1:k1:" + "A" * 41,  # 41 base64 characters cannot be whole bytes
        " enc1:k1:" + "A" * 40,
        "enc1:k1:" + "A" * 40 + "\n",
    ],
)
def test_malformed_tokens_are_refused(malformed):
    with pytest.raises(DecryptionError):
        decrypt(malformed, aad=AAD)


@pytest.mark.parametrize("not_a_string", [None, b"enc1:k1:AAAA", 12, ["enc1"]])
def test_values_that_are_not_strings_are_refused(not_a_string):
    with pytest.raises(DecryptionError, match="expected a token string"):
        decrypt(not_a_string, aad=AAD)


def test_a_token_with_stray_trailing_bits_is_refused():
    token = encrypt(b"x", aad=AAD)
    last = token[-1]
    # The final character of unpadded base64 carries unused low bits; a different spelling of
    # the same bytes is not accepted.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]

    with pytest.raises(DecryptionError):
        decrypt(token[:-1] + sibling, aad=AAD)


@fixture_friendly
@given(text=st.text())
def test_any_text_is_refused_cleanly(text):
    with pytest.raises(DecryptionError):
        decrypt(text, aad=AAD)


@fixture_friendly
@given(sealed=st.binary(max_size=200), key_number=st.integers(min_value=1, max_value=999))
def test_any_well_formed_but_forged_token_is_refused(sealed, key_number):
    encoded = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    with pytest.raises(DecryptionError):
        decrypt(f"enc1:k{key_number}:{encoded}", aad=AAD)


@fixture_friendly
@given(data=st.data())
def test_any_edit_to_a_token_is_refused_or_changes_nothing(data):
    plaintext = b"member id W123456789"
    token = encrypt(plaintext, aad=AAD)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.text(min_size=0, max_size=3))
    edited = token[:position] + replacement + token[position + 1 :]

    if edited == token:
        assert decrypt(edited, aad=AAD) == plaintext
    else:
        with pytest.raises(DecryptionError):
            decrypt(edited, aad=AAD)


# The key file


def test_the_key_file_is_created_private_on_first_use(key_dir):
    token = encrypt(b"x", aad=AAD)

    path = key_dir / "encryption.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    document = json.loads(path.read_text())
    assert document["active"] == "k1"
    assert len(base64.b64decode(document["keys"]["k1"])) == 32
    assert len(base64.b64decode(document["index_key"])) == 32
    assert document["index_key"] != document["keys"]["k1"]
    assert decrypt(token, aad=AAD) == b"x"


def test_the_key_file_is_created_once_when_processes_start_together(key_dir):
    path = key_dir / "encryption.json"
    rings, barrier = [], threading.Barrier(8)

    def load():
        barrier.wait()
        rings.append(read_key_ring_file(path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(rings) == 8
    assert len({ring.keys["k1"] for ring in rings}) == 1
    assert len({ring.index_key for ring in rings}) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(entry.name for entry in key_dir.iterdir()) == ["encryption.json"]


def test_the_key_ring_is_read_once_per_process(key_dir):
    first = key_ring()
    (key_dir / "encryption.json").write_text("not json")  # only a reload would notice

    assert key_ring() is first
    with pytest.raises(ImproperlyConfigured, match="not valid JSON"):
        encryption.reload_key_ring()


def test_a_broken_key_file_is_a_clear_error(key_dir):
    key_dir.mkdir()
    document = {"active": "k1", "keys": {"k1": "c2hvcnQ="}, "index_key": random_key()}
    (key_dir / "encryption.json").write_text(json.dumps(document))

    with pytest.raises(ImproperlyConfigured, match=r"encryption.json: key k1 is 5 bytes"):
        encrypt(b"x", aad=AAD)


# Rotation of the key file


def test_adding_a_key_makes_it_active_and_old_tokens_still_decrypt():
    old_token = encrypt(b"old", aad=AAD)

    ring = key_ring_add_key()

    assert ring.active_key_id == "k2"
    assert ring.key_ids == ["k1", "k2"]
    assert token_key_id(encrypt(b"new", aad=AAD)) == "k2"
    assert decrypt(old_token, aad=AAD) == b"old"


def test_concurrent_rotations_each_add_their_own_key(key_dir):
    key_ring()
    barrier = threading.Barrier(4)

    def rotate():
        barrier.wait()
        key_ring_add_key()

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    document = json.loads((key_dir / "encryption.json").read_text())
    assert sorted(document["keys"]) == ["k1", "k2", "k3", "k4", "k5"]
    assert document["active"] == "k5"


def test_a_process_picks_up_a_rotation_done_by_another(key_dir, monkeypatch):
    old_token = encrypt(b"old", aad=AAD)
    # Another process rotates: the file changes under this one's cached ring.
    path = key_dir / "encryption.json"
    rotated = read_key_ring_file(path).with_new_active_key()
    encryption._replace_private_file(path, rotated.to_json())
    new_token = f"enc1:k2:{encryption._b64encode_url(_seal(rotated, b'new'))}"

    # A token under the new key is readable at once ...
    assert decrypt(new_token, aad=AAD) == b"new"
    assert decrypt(old_token, aad=AAD) == b"old"
    # ... and new values use it once the recheck interval has passed.
    monkeypatch.setattr(encryption, "KEY_RING_RECHECK_SECONDS", 0)
    assert token_key_id(encrypt(b"x", aad=AAD)) == "k2"


def _seal(ring, plaintext: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + ring.cipher(ring.active_key_id).encrypt(nonce, plaintext, AAD)


def test_removing_a_key_makes_its_tokens_unreadable():
    old_token = encrypt(b"old", aad=AAD)
    key_ring_add_key()

    ring = key_ring_remove_key("k1")

    assert ring.key_ids == ["k2"]
    with pytest.raises(DecryptionError, match="k1, which is not in the key ring"):
        decrypt(old_token, aad=AAD)


def test_the_active_or_an_unknown_key_cannot_be_removed():
    key_ring()

    with pytest.raises(KeyRingError, match="k1 is the active key"):
        key_ring_remove_key("k1")
    with pytest.raises(KeyRingError, match="There is no key k9"):
        key_ring_remove_key("k9")


# Keys from the environment


def test_keys_from_the_environment_are_used_and_no_file_is_written(key_dir, monkeypatch):
    k1, k2 = random_key(), random_key()
    document = {"active": "k1", "keys": {"k1": k1}, "index_key": random_key()}
    monkeypatch.setenv(KEYS_VARIABLE, json.dumps(document))
    old_token = encrypt(b"old", aad=AAD)

    monkeypatch.setenv(
        KEYS_VARIABLE, json.dumps({**document, "active": "k2", "keys": {"k1": k1, "k2": k2}})
    )
    new_token = encrypt(b"new", aad=AAD)

    assert token_key_id(old_token) == "k1"
    assert token_key_id(new_token) == "k2"
    assert decrypt(old_token, aad=AAD) == b"old"
    assert decrypt(new_token, aad=AAD) == b"new"
    assert key_ring().source == "the AMBULA_ENCRYPTION_KEYS variable"
    assert not key_dir.exists()


def test_keys_from_the_environment_cannot_be_rotated_by_ambula(monkeypatch):
    document = {"active": "k1", "keys": {"k1": random_key()}, "index_key": random_key()}
    monkeypatch.setenv(KEYS_VARIABLE, json.dumps(document))

    with pytest.raises(KeyRingError, match="come from AMBULA_ENCRYPTION_KEYS"):
        key_ring_add_key()
    with pytest.raises(KeyRingError, match="come from AMBULA_ENCRYPTION_KEYS"):
        key_ring_remove_key("k1")


SECRET = random_key()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must be a JSON object"),
        ({"active": "k1", "index_key": SECRET}, 'needs "keys"'),
        ({"active": "k1", "keys": {"key1": SECRET}, "index_key": SECRET}, "key ids are k1, k2"),
        ({"active": "k1", "keys": {"k1": "not base64!"}, "index_key": SECRET}, "not valid base64"),
        (
            {"active": "k1", "keys": {"k1": base64.b64encode(b"0" * 16).decode()}},
            "key k1 is 16 bytes; it must be 32",
        ),
        ({"active": "k1", "keys": {"k1": 12}, "index_key": SECRET}, "must be a base64 string"),
        ({"active": "k2", "keys": {"k1": SECRET}, "index_key": SECRET}, '"active" must name'),
        ({"active": "k1", "keys": {"k1": random_key()}}, '"index_key" must be a base64'),
        ({"active": "k1", "keys": {"k1": SECRET}, "index_key": SECRET}, "must differ"),
    ],
)
def test_a_bad_environment_key_ring_is_a_clear_error(monkeypatch, document, message):
    text = document if isinstance(document, str) else json.dumps(document)
    monkeypatch.setenv(KEYS_VARIABLE, text)

    with pytest.raises(ImproperlyConfigured, match=re.escape(message)) as raised:
        encrypt(b"x", aad=AAD)

    assert str(raised.value).startswith("AMBULA_ENCRYPTION_KEYS")
    assert SECRET not in str(raised.value)


# Blind indexes


def test_a_blind_index_is_a_stable_keyed_hash_per_purpose(monkeypatch):
    index = blind_index("123456789", purpose="patients.ssn")

    assert re.fullmatch(r"[0-9a-f]{64}", index)
    assert blind_index("123456789", purpose="patients.ssn") == index
    assert blind_index("123456788", purpose="patients.ssn") != index
    assert blind_index("123456789", purpose="coverage.member_id") != index
    # Not a plain hash: someone with the database but not the keys cannot test guesses.
    import hashlib

    assert index != hashlib.sha256(b"123456789").hexdigest()


def test_a_blind_index_survives_key_rotation():
    index = blind_index("W123", purpose="coverage.member_id")

    key_ring_add_key()
    key_ring_remove_key("k1")

    assert blind_index("W123", purpose="coverage.member_id") == index


def test_a_blind_index_depends_on_the_index_key(monkeypatch):
    index = blind_index("W123", purpose="coverage.member_id")
    document = {"active": "k1", "keys": {"k1": random_key()}, "index_key": random_key()}
    monkeypatch.setenv(KEYS_VARIABLE, json.dumps(document))

    assert blind_index("W123", purpose="coverage.member_id") != index


def test_a_blind_index_needs_a_purpose_and_text():
    with pytest.raises(ValueError, match="needs a purpose"):
        blind_index("x", purpose="")
    with pytest.raises(TypeError):
        blind_index(123, purpose="patients.ssn")
