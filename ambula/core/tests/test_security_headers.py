import re

import pytest


@pytest.mark.parametrize("path", ["/accounts/login/", "/healthz", "/no-such-page"])
def test_security_headers_on_every_response(client, db, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_no_hsts_over_plain_http(client, db):
    assert "Strict-Transport-Security" not in client.get("/accounts/login/")


def test_hsts_over_https(client, db, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_pages_for_signed_in_users_are_never_cached(signed_in_client):
    response = signed_in_client.get("/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_pages_carry_no_inline_script_or_style(signed_in_client, client):
    pages = [signed_in_client.get("/").content.decode()]
    signed_in_client.post("/accounts/logout/")
    pages.append(client.get("/accounts/login/").content.decode())
    for html in pages:
        for script in re.findall(r"<script[^>]*>", html):
            assert "src=" in script, script
        for body in re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.DOTALL):
            assert not body.strip(), "inline script body"
        assert "<style" not in html
        assert " style=" not in html
        assert not re.search(r"\son[a-z]+=", html), "inline event handler"


def test_htmx_is_served_from_our_own_static_files(client, db):
    html = client.get("/accounts/login/").content.decode()
    htmx = re.search(r'<script src="([^"]*htmx[^"]*)"', html)
    assert htmx and htmx.group(1).startswith("/static/django_htmx/")
