"""The studio's defences: the token on every API request and page, published files only
(no traversal, no absolute paths, no symlink out of the run's folder), size-limited and
type-checked uploads, URLs through castline's guard, markup from sources treated as text, and
errors as JSON (never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from castline.engine import episodes, runtime
from castline.studio import catalog, create_app
from tests.conftest import EXAMPLE_SOURCES, EXAMPLE_TOPIC
from tests.studio.conftest import AUTH, HEAT_CHECK, TOKEN, uploads

ROUTES = [
    "/api/shows",
    f"/api/shows/{HEAT_CHECK}/episodes",
    "/api/runs/abc",
    "/api/runs/abc/events",
    "/api/runs/abc/stream",
    "/api/review",
    "/api/runs/abc/files/episode.mp3",
    "/api/openapi.json",
    "/api/no-such-route",
]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization":
                         f"Basic {TOKEN}"}, {"Cookie": "castline_studio=wrong"}])  # fmt: skip
def test_every_api_request_without_the_token_is_refused_with_401(
    client: TestClient, headers: dict[str, str]
) -> None:
    for route in ROUTES:
        response = client.get(route, headers=headers)
        assert response.status_code == 401, route
        assert response.headers["www-authenticate"] == "Bearer"
        assert "token" in response.json()["error"]
    for route in ("/api/estimate", "/api/episodes", "/api/review/abc/approve"):
        assert client.post(route, headers=headers).status_code == 401, route


def test_the_token_opens_the_api_and_the_pages_set_a_strict_http_only_cookie(
    client: TestClient,
) -> None:
    assert client.get("/api/shows", headers=AUTH).status_code == 200
    schema = client.get("/api/openapi.json", headers=AUTH).json()
    assert schema["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert "/api/runs/{run_id}/stream" in schema["paths"]

    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
    wrong = client.get("/review?token=nope", follow_redirects=False)
    assert "failed=1" in wrong.headers["location"] and "set-cookie" not in wrong.headers
    given = client.get("/review?token=" + TOKEN, follow_redirects=False)
    assert given.status_code == 303 and given.headers["location"] == "/review"  # token dropped
    cookie = given.headers["set-cookie"]
    assert f"castline_studio={TOKEN}" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert client.get("/review").status_code == 200  # the cookie now opens pages and the API
    assert client.get("/api/review").status_code == 200

    client.cookies.clear()
    login = client.post("/login?next=/start", data={"token": TOKEN}, follow_redirects=False)
    assert login.headers["location"] == "/start" and "HttpOnly" in login.headers["set-cookie"]
    away = client.post("/login?next=//evil.example", data={"token": TOKEN}, follow_redirects=False)
    assert away.headers["location"] == "/"
    slash = client.post(
        "/login?next=/%5Cevil.example", data={"token": TOKEN}, follow_redirects=False
    )
    assert slash.headers["location"] == "/"


def test_only_the_run_s_published_files_can_be_downloaded(
    client: TestClient, show_copy: Path, tmp_path: Path
) -> None:
    outcome = episodes.produce(show_copy, EXAMPLE_TOPIC, EXAMPLE_SOURCES)
    folder = outcome.output_dir
    assert folder is not None
    base = f"/api/runs/{outcome.run_id}/files/"
    script = client.get(base + "script.md", headers=AUTH)
    assert script.status_code == 200 and script.content == (folder / "script.md").read_bytes()
    assert script.headers["content-security-policy"].startswith("sandbox")

    secret = tmp_path / "secret.txt"
    secret.write_text("not for the studio")
    (folder / "extra.txt").write_text("in the folder, never published")
    for name, status in [
        ("..%2F..%2Fshow.yaml", 400),
        ("..%2F..%2F..%2Fsecret.txt", 400),
        ("%2Fetc%2Fpasswd", 400),
        (str(secret).replace("/", "%2F"), 400),
        ("sub%2Fscript.md", 400),
        ("%2E%2E", 400),
        ("extra.txt", 404),
        ("secret.txt", 404),
    ]:
        response = client.get(base + name, headers=AUTH)
        assert response.status_code == status, (name, response.text)
        assert "not for the studio" not in response.text
        assert response.json()["status"] == status
    # a published file replaced by a symlink out of the folder is refused, not followed
    (folder / "show-notes.md").unlink()
    (folder / "show-notes.md").symlink_to(secret)
    refused = client.get(base + "show-notes.md", headers=AUTH)
    assert refused.status_code == 404 and "not for the studio" not in refused.text
    assert client.get("/api/runs/nosuchrun/files/script.md", headers=AUTH).status_code == 404


def test_an_upload_over_the_limit_is_refused_with_413(show_copy: Path) -> None:
    app = create_app(runtime.store(), TOKEN, shows=[show_copy], max_upload_bytes=2000)
    with TestClient(app, raise_server_exceptions=False) as client:
        form = {"show": HEAT_CHECK, "topic": EXAMPLE_TOPIC}
        big = [("files", ("notes.md", b"# Heat\n" + b"cities run hot " * 200))]
        response = client.post("/api/estimate", data=form, files=big, headers=AUTH)
        assert response.status_code == 413, response.text
        assert "2,000 bytes" in response.json()["error"]
        # a body far past every file's limit is refused by its length, before it is read
        multipart = {**AUTH, "Content-Type": "multipart/form-data; boundary=b"}
        whole = client.post("/api/estimate", content=b"x" * 1_200_000, headers=multipart)
        assert whole.status_code == 413 and "bytes allowed" in whole.json()["error"]
        chunks = iter([b"--b\r\n", b"x" * 700_000, b"x" * 700_000])  # no Content-Length
        chunked = client.post("/api/estimate", content=chunks, headers=multipart)
        assert chunked.status_code == 413 and "bytes" in chunked.json()["error"]
        assert runtime.store().list_runs() == []


def test_uploads_are_type_checked_by_castline_s_source_reader(client: TestClient) -> None:
    form = {"show": HEAT_CHECK, "topic": EXAMPLE_TOPIC}
    for name, body, reason in [
        ("tool.exe", b"MZ\x90\x00", "unsupported file type '.exe'"),
        ("fake.pdf", b"# not a pdf at all, just words about heat", "pdf"),
        ("binary.md", bytes(range(256)) * 10, "binary.md"),
    ]:
        response = client.post(
            "/api/estimate", data=form, files=[("files", (name, body))], headers=AUTH
        )
        assert response.status_code == 422, (name, response.text)
        message = response.json()["error"]
        assert reason in message and "castline-studio-" not in message  # no temporary paths
    assert runtime.store().list_runs() == []


def test_a_url_source_goes_through_castline_s_guard(client: TestClient) -> None:
    form = {"show": HEAT_CHECK, "topic": EXAMPLE_TOPIC, "urls": "http://127.0.0.1:9/heat.html"}
    response = client.post("/api/episodes", data=form, headers=AUTH)
    assert response.status_code == 422, response.text
    assert "loopback" in response.json()["error"]
    bad = client.post("/api/estimate", data={**form, "urls": "not a url"}, headers=AUTH)
    assert bad.status_code == 400 and "not an http(s) URL" in bad.json()["error"]
    assert runtime.store().list_runs() == []


def test_markup_in_a_source_or_topic_reaches_the_page_only_as_json_text(
    client: TestClient, tmp_path: Path
) -> None:
    hostile = tmp_path / "hostile.md"
    planted = "<script>alert('pwned')</script>"
    hostile.write_text(
        "# Cities and heat\n\nCities run hot because asphalt and dark roofs store the heat of "
        "the day and release it slowly at night, which is why cities stay warm after sunset.\n\n"
        f"A planted tag {planted} sits in this sentence about how cities run hot in summer.\n\n"
        "Trees and cool roofs lower the temperature of a street by several degrees in the "
        "afternoon, and the cities that plant them spend less on cooling.\n"
    )
    topic = f"Why cities run hot {planted}"
    form = {"show": HEAT_CHECK, "topic": topic}
    started = client.post(
        "/api/episodes", data=form, files=uploads([hostile, EXAMPLE_SOURCES[0]]), headers=AUTH
    )
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    detail = client.get(f"/api/runs/{run_id}", headers=AUTH)
    assert detail.headers["content-type"] == "application/json"
    assert detail.headers["x-content-type-options"] == "nosniff"
    assert detail.json()["run"]["topic"] == topic  # the data as it is, for textContent
    sources = runtime.store().load_sources(run_id)
    assert any(planted in json.dumps(s) for s in sources)  # read as text, not stripped
    client.cookies.set("castline_studio", TOKEN)
    for page in (f"/runs/{run_id}", f"/episodes/{run_id}", "/", "/review"):
        shown = client.get(page)
        assert shown.status_code == 200 and "<main>" in shown.text
        assert "alert(" not in shown.text and "pwned" not in shown.text  # pages carry no data
        assert "script-src 'self';" in shown.headers["content-security-policy"]
    scripts = Path(catalog.__file__).parent / "static"
    for js in scripts.glob("*.js"):
        assert "innerHTML" not in js.read_text(), js.name


def test_errors_are_json_with_a_message_and_never_a_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    missing = client.post("/api/estimate", data={"show": HEAT_CHECK}, headers=AUTH)
    assert missing.status_code == 422 and "topic" in missing.json()["error"]
    unknown = client.post("/api/estimate", data={"show": "nope", "topic": "x"}, headers=AUTH)
    assert unknown.status_code == 400 and "no show bible" in unknown.json()["error"]
    no_run = client.get("/api/runs/nosuchrun", headers=AUTH)
    assert no_run.status_code == 404 and "nosuchrun" in no_run.json()["error"]
    no_stream = client.get("/api/runs/nosuchrun/stream", headers=AUTH)
    assert no_stream.status_code == 404 and "nosuchrun" in no_stream.json()["error"]
    no_show = client.get("/api/shows/nope/episodes", headers=AUTH)
    assert no_show.status_code == 404
    assert client.get("/api/no-such-route", headers=AUTH).status_code == 404

    def bug(*_args: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(catalog, "shows", bug)
    broken = client.get("/api/shows", headers=AUTH)
    assert broken.status_code == 500
    assert broken.json()["error"].startswith("internal error: ZeroDivisionError")
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err + broken.text
