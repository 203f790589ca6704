"""Start a real, throw-away PostgreSQL cluster (Debian's binaries) for tests.

`make test` installs the binaries (tests/servers/install.sh); a missing binary is a failure
with a clear message, never a skip. initdb refuses to run as root, so when the tests run as
root the cluster is created and run by the `postgres` system user (runuser), in a temp dir it
owns, on a free loopback port with its unix socket inside that dir. Stopped and removed on exit.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import free_port, wait_until

SUPERUSER = "postgres"


def find_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl."""
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    candidates = [c for c in candidates if (c / "pg_ctl").exists()]
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
            "run `make test` or `bash tests/servers/install.sh` (installs Debian's postgresql)"
        )
    return max(candidates, key=lambda c: int(c.parent.name) if c.parent.name.isdigit() else 0)


def _run_as_owner_prefix() -> list[str]:
    """`runuser -u postgres --` when we are root (initdb refuses root), else nothing."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise RuntimeError(
            "running as root but there is no `postgres` system user to own the test cluster: "
            "install Debian's postgresql package (`bash tests/servers/install.sh`)"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root and `runuser` is missing: cannot start PostgreSQL as `postgres`")
    return [runuser, "-u", SUPERUSER, "--"]


@dataclass
class PostgresServer:
    """A running cluster: connect with `url(dbname)` (TCP on 127.0.0.1, trust auth)."""

    port: int
    base_dir: Path
    bin_dir: Path
    prefix: list[str]
    options: str = ""  # the postgres command line it was started with (for a restart after a pause)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self, mode: str = "fast", down_seconds: float = 0.0) -> None:
        """Restart on the same port and data dir: `fast` (sessions ended, a clean shutdown) or
        `immediate` (the postmaster and backends killed: crash recovery at start, as after a crash),
        staying down `down_seconds` in between (clients then also meet refused connections).
        """
        self.shut_down(mode)
        time.sleep(down_seconds)
        self.start()

    def _pg_ctl(self) -> tuple[list[str], Path]:
        return [*self.prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir)], self.base_dir / "postgres.log"

    def shut_down(self, mode: str = "fast") -> None:
        """Stop the server (checked, unlike the teardown's `stop`), to be started again with `start`."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"pg_ctl shutdown mode {mode!r}")
        pg_ctl, log = self._pg_ctl()
        _check([*pg_ctl, "-m", mode, "-w", "-t", "60", "stop"], f"pg_ctl stop -m {mode}", log)

    def start(self) -> None:
        """Start a shut-down server on its port and data dir, with its command line; return once it accepts."""
        pg_ctl, log = self._pg_ctl()
        _check([*pg_ctl, "-l", str(log), "-o", self.options, "-w", "-t", "60", "start"], "pg_ctl start", log)
        wait_until(lambda: _can_connect(self.port), 30, "PostgreSQL after restart")

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )


def _check(args: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")


def _can_connect(port: int) -> bool:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", connect_timeout=2):
        return True


@contextmanager
def postgres_server(settings: Mapping[str, str] | None = None) -> Iterator[PostgresServer]:
    """A running throw-away PostgreSQL cluster; stopped and deleted afterwards.

    `settings` are extra server parameters given as `-c name=value` after the defaults (so they
    win), e.g. {"shared_preload_libraries": "pg_stat_statements"} for a benchmark that counts
    statements; none by default, so the tests' cluster stays what it was."""
    extra = ""
    for name, value in (settings or {}).items():
        if not name.replace("_", "").replace(".", "").isalnum() or any(c in str(value) for c in " '\"\\"):
            raise ValueError(f"postgres_server: setting {name}={value!r} must be one word "
                             "(no spaces or quotes)")
        extra += f" -c {name}={value}"
    bin_dir = find_bin_dir()
    prefix = _run_as_owner_prefix()
    base_dir = Path(tempfile.mkdtemp(prefix="powerdesk-pg-"))
    if prefix:  # the cluster's owner must own its directory
        owner = pwd.getpwnam(SUPERUSER)
        os.chown(base_dir, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(free_port(), base_dir, bin_dir, prefix)
    log = base_dir / "postgres.log"
    started = False
    try:
        _check(
            [*prefix, str(bin_dir / "initdb"), "-D", str(server.data_dir), "-U", SUPERUSER,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
            "initdb",
        )
        options = server.options = (f"-p {server.port} -c listen_addresses=127.0.0.1 -k {base_dir} "
                                     "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                                     "-c max_connections=50" + extra)
        _check(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(server.data_dir), "-l", str(log),
             "-o", options, "-w", "-t", "60", "start"],
            "pg_ctl start",
            log,
        )
        started = True
        wait_until(lambda: _can_connect(server.port), 30, "PostgreSQL")
        yield server
    finally:
        if started:
            server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
