"""Start a real, throw-away nginx (Debian's package) in front of test replicas.

The configuration is docs/deploy/nginx.conf itself with only what a test must change: the upstream
servers (the test's `powerdesk serve` ports), the listening port, and the paths an unprivileged
process can write (pid, logs, temp files under a temp dir). Whatever else the deployment file says
(retries, keep-alive, SSE buffering, body limit) is what the test exercises.
"""

from __future__ import annotations

import re
import socket
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import free_port, wait_until

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "nginx.conf"
_UPSTREAM_SERVER = re.compile(r"^(\s*)server \S+:8000( [^;]*)?;\n", re.M)


def deploy_config(upstreams: Sequence[str], port: int, base_dir: Path) -> str:
    """docs/deploy/nginx.conf with `upstreams` ("127.0.0.1:PORT") for its servers, listening on
    127.0.0.1:`port`, writing only under `base_dir`."""
    text = DEPLOY_CONF.read_text(encoding="utf-8")
    servers = _UPSTREAM_SERVER.findall(text)
    if not servers:
        raise ValueError(f"{DEPLOY_CONF}: no 'server NAME:8000' line in the upstream")
    indent, options = servers[0]
    lines = "".join(f"{indent}server {address}{options};\n" for address in upstreams)
    first = True

    def replace(_match: re.Match[str]) -> str:
        nonlocal first
        out, first = (lines if first else ""), False
        return out

    text = _UPSTREAM_SERVER.sub(replace, text)
    text, listens = re.subn(r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{port};", text, flags=re.M)
    if listens != 1:
        raise ValueError(f"{DEPLOY_CONF}: expected one 'listen 80;'")
    text = text.replace("worker_processes auto;", "worker_processes 1;")  # 2 shared cores here
    paths = ("    log_format upstream_log '$request $status upstream=$upstream_addr';\n"
             f"    access_log {base_dir}/access.log upstream_log;\n"
             + "".join(f"    {kind}_temp_path {base_dir}/{kind};\n"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")))
    text = text.replace("http {\n", "http {\n" + paths, 1)
    return f"pid {base_dir}/nginx.pid;\nerror_log {base_dir}/error.log warn;\n" + text


@dataclass
class NginxServer:
    url: str
    base_dir: Path
    process: subprocess.Popen[bytes]

    def access_log(self) -> str:
        path = self.base_dir / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def error_log(self) -> str:
        path = self.base_dir / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # nginx: SIGTERM = fast shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def nginx_server(upstreams: Sequence[str]) -> Iterator[NginxServer]:
    """nginx in the foreground on a free port balancing `upstreams`; stopped and removed afterwards."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        raise RuntimeError("nginx not found: run `make test` (tests/servers/install.sh installs Debian's nginx)")
    base_dir = Path(tempfile.mkdtemp(prefix="powerdesk-nginx-"))
    base_dir.chmod(0o777)  # when the master runs as root its workers run as nobody and write temp files here
    port = free_port()
    conf = base_dir / "nginx.conf"
    conf.write_text(deploy_config(upstreams, port, base_dir), encoding="utf-8")
    check = subprocess.run([binary, "-t", "-q", "-e", str(base_dir / "error.log"), "-p", str(base_dir),
                            "-c", str(conf)], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t refused the generated config: {check.stderr}")
    process = subprocess.Popen([binary, "-e", str(base_dir / "error.log"), "-p", str(base_dir), "-c", str(conf),
                                "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = NginxServer(f"http://127.0.0.1:{port}", base_dir, process)
    try:
        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {server.error_log()}")
            # A bare connect: a request now would reach the upstreams and could mark one failed.
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True

        wait_until(listening, 15, "nginx")
        yield server
    finally:
        server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
