"""A throwaway PostgreSQL server for the test suite, so the Postgres paths always run.

A pytest plugin (tests/conftest.py loads it). Once per test session it makes a cluster in a
temporary directory (in /dev/shm when it has room) with `initdb`, starts it with `pg_ctl` on a
free 127.0.0.1 port, its Unix socket in that directory and fsync off, and stops and deletes it
when the session ends. Postgres refuses to run as root, so as root the server runs as the
`postgres` user (made by the Debian package; `nobody` without it). With
`CASTLINE_TEST_POSTGRES_URL` set, that server is used instead; its role must be allowed to create
databases.

Fixtures:

- `postgres_server` (session): the server; `postgres_server_url` (session): the URL of a
  database made on it for the session.
- `postgres_url`: a fresh, empty database of its own for one test, dropped after it.
- `database_url_param`: a store URL for each backend in turn: a test that takes it runs twice,
  as `test_x[sqlite]` (a file in tmp_path) and `test_x[postgres]` (a `postgres_url` database).

URLs are SQLAlchemy URLs with the psycopg driver (`postgresql+psycopg://`). Tests that use the
server are marked `postgres` (`pytest -m "not postgres"` leaves them out). Without the server
binaries (or psycopg) these tests are skipped, except on CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from castline.store import engine as store_engine

URL_VARIABLE = "CASTLINE_TEST_POSTGRES_URL"
PREFIX = "castline-pg-"
OWNER_FILE = "pytest.pid"  # which test session a cluster belongs to
SESSION_DATABASE = "castline"
SETTINGS = {  # speed over durability: the cluster is thrown away
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",  # every store engine keeps a small pool; stress tests use dozens
    "log_min_messages": "warning",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: runs against the test PostgreSQL server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if {"postgres_server", "postgres_server_url", "postgres_url"} & set(names):
            item.add_marker(pytest.mark.postgres)


class PostgresServer:
    """A server the tests may create databases on; `url` names the session's database."""

    def __init__(self, url: str) -> None:
        self.url = url
        # one connection for CREATE and DROP DATABASE (neither may run in a transaction)
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        with self.admin.connect() as connection:
            version = connection.dialect.server_version_info or (0,)
        # Postgres 15 copies the template through the WAL by default: slower for small ones
        self.strategy = " STRATEGY = FILE_COPY" if version >= (15,) else ""

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"castline_test_{uuid.uuid4().hex[:16]}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"{self.strategy}')
        return sa.make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop a database that `create_database` made, closing what still connects to it."""
        with store_engine._engines_lock:
            cached = store_engine._engines.pop(url, None)
        if cached is not None:
            cached.dispose()
        name = sa.make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')

    def close(self) -> None:
        self.admin.dispose()


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI is set: the Postgres tests must run)", pytrace=False)
    pytest.skip(reason)


def find_binaries() -> Path | None:
    """The directory with initdb, pg_ctl and postgres: the one initdb on PATH lives in, else the
    newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH)."""
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda path: _version(path.parent.name), reverse=True)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _base_directory() -> Path:
    """Where clusters live: in memory (/dev/shm) when it has room, making a database takes tens
    of milliseconds there instead of hundreds on a busy disk; else the temporary directory."""
    memory = Path("/dev/shm")
    with contextlib.suppress(OSError):
        if os.access(memory, os.W_OK | os.X_OK) and shutil.disk_usage(memory).free > 1 << 30:
            return memory
    return Path(tempfile.gettempdir())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A Postgres cluster in a temporary directory, run by an unprivileged user."""

    def __init__(self, binaries: Path, root: Path | None = None) -> None:
        """A new cluster directory, or the existing one at `root`."""
        self.binaries = binaries
        self.account = self._account()
        if root is None:
            root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=_base_directory()))
            (root / OWNER_FILE).write_text(str(os.getpid()))
            if self.account is not None:
                os.chown(root, self.account.pw_uid, self.account.pw_gid)
        self.root = root
        self.data = root / "data"
        self.port = 0

    @staticmethod
    def _account() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise RuntimeError("running as root with neither a postgres nor a nobody user")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        account = self.account
        return subprocess.run(
            [str(self.binaries / args[0]), *args[1:]],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )

    def start(self) -> None:
        done = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
            "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        with (self.data / "postgresql.conf").open("a") as conf:  # keeps the owner
            conf.write(f"\nunix_socket_directories = '{self.root}'\n")
            conf.writelines(f"{key} = {value}\n" for key, value in SETTINGS.items())
        log = self.root / "server.log"
        for _ in range(5):  # another process may take the free port before the server does
            self.port = _free_port()
            done = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(log), "-o", f"-p {self.port}",
                "-w", "-t", "60", "start",
            )  # fmt: skip
            if done.returncode == 0:
                return
            if "already in use" not in log.read_text(errors="replace"):
                break
        text = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}{done.stderr}{text}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


def _stop_abandoned(binaries: Path) -> None:
    """Stop the clusters of earlier test sessions that died before they could (a kill -9)."""
    account = Cluster._account()
    uid = account.pw_uid if account else os.geteuid()  # who would run (and could stop) it
    bases = {_base_directory(), Path(tempfile.gettempdir())}
    for root in (found for base in bases for found in base.glob(f"{PREFIX}*")):
        try:
            if root.stat().st_uid != uid:
                continue  # another user's
            owner = int((root / OWNER_FILE).read_text())
            if _session_alive(owner):
                continue  # its session is still running
        except (OSError, ValueError):
            continue  # not ours to judge
        Cluster(binaries, root).stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The Postgres server of this session: `CASTLINE_TEST_POSTGRES_URL`'s, or one started here."""
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("psycopg is not installed (pip install 'castline[postgres]')")
    given = os.environ.get(URL_VARIABLE, "")
    if given:
        parsed = sa.make_url(given)
        if parsed.get_backend_name() != "postgresql":
            pytest.fail(f"{URL_VARIABLE} is not a postgresql URL: {parsed!r}", pytrace=False)
        if parsed.host not in {None, "", "localhost", "127.0.0.1", "::1"}:
            where = f"{URL_VARIABLE} must name a local server, not {parsed.host!r}"
            pytest.fail(where, pytrace=False)
        server = PostgresServer(parsed.set(drivername="postgresql+psycopg").render_as_string(False))
        yield server
        server.close()
        return
    binaries = find_binaries()
    if binaries is None:
        _unavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
            f"/usr/lib/postgresql/*/bin: install postgresql or set {URL_VARIABLE}"
        )
    _stop_abandoned(binaries)
    cluster = Cluster(binaries)
    try:
        cluster.start()
        maintenance = sa.create_engine(
            cluster.url, isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        with maintenance.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {SESSION_DATABASE}")
        maintenance.dispose()
        server = PostgresServer(cluster.url.rsplit("/", 1)[0] + f"/{SESSION_DATABASE}")
        yield server
        server.close()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_server_url(postgres_server: PostgresServer) -> str:
    """The URL of a database on the test server, shared by the whole session."""
    return postgres_server.url


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty Postgres database for this test alone."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url_param(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on each backend in turn: a SQLite file in tmp_path, a fresh Postgres database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _session_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
