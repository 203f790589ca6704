"""docs/deploy/: what can be checked without a docker daemon — commands, variables, upstreams, units.

Every `powerdesk …` command line in the Dockerfile, compose.yaml and the systemd units is parsed by
the real CLI (an unknown command or option fails); every POWERDESK_* variable they set is read by
the code and documented in docs/deploy/README.md; nginx's upstreams are compose's replicas; the
units pass `systemd-analyze verify`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "docs" / "deploy"
SOURCES = ("agent", "billing_core", "channels", "knowledge_base", "tools", "evals")
EXAMPLES = {"%i": "2026-07", "$$PERIOD": "2026-07", "$PERIOD": "2026-07"}


@lru_cache(maxsize=1)
def root_app() -> typer.Typer:
    from channels import cli

    cli._register_subcommands()
    return cli.app


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def powerdesk_command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after `powerdesk`) of every command line in the deployment files."""
    found: list[tuple[str, list[str]]] = []

    def add(where: str, text: str) -> None:
        for part in text.split("&&"):
            for placeholder, value in EXAMPLES.items():
                part = part.replace(placeholder, value)
            words = shlex.split(part)
            if words and words[0] == "exec":
                words = words[1:]
            if words and Path(words[0]).name == "powerdesk":
                found.append((where, words[1:]))

    for name, service in compose()["services"].items():
        entrypoint, command = service.get("entrypoint"), service.get("command")
        if entrypoint and entrypoint[:2] == ["sh", "-c"]:
            add(f"compose {name}", entrypoint[2])
        elif isinstance(command, list) and command and "image" in service and service["image"].startswith("powerdesk"):
            found.append((f"compose {name}", command))
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M).group(1))
    assert entry == ["powerdesk"]
    found.append(("Dockerfile CMD", json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))))
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith("ExecStart"):
                add(unit.name, line.split("=", 1)[1])
    return found


def test_every_command_line_parses_with_the_real_cli() -> None:
    lines = powerdesk_command_lines()
    wheres = {where for where, _ in lines}
    assert {"compose app1", "compose migrate", "compose cycle-worker", "compose notify", "Dockerfile CMD",
            "powerdesk-serve@.service", "powerdesk-cycle-worker@.service", "powerdesk-notify.service"} <= wheres
    runner = CliRunner()
    for where, argv in lines:
        result = runner.invoke(root_app(), [*argv, "--help"])  # options before --help are parsed first
        assert result.exit_code == 0, f"{where}: powerdesk {' '.join(argv)}: {result.output}"
    broken = runner.invoke(root_app(), ["billing", "cycle-worker", "--perod", "2026-07", "--help"])
    assert broken.exit_code != 0  # the check can fail


def test_every_variable_is_read_by_the_code_and_documented() -> None:
    texts = [p.read_text(encoding="utf-8") for p in DEPLOY.rglob("*") if p.is_file() and p.suffix != ".md"]
    names = set(re.findall(r"POWERDESK_[A-Z_]+[A-Z]", "\n".join(texts)))
    assert {"POWERDESK_DATABASE_URL", "POWERDESK_REDIS_URL", "POWERDESK_CHROMA_URL",
            "POWERDESK_SHUTDOWN_GRACE_SECONDS"} <= names
    code = "\n".join(p.read_text(encoding="utf-8") for package in SOURCES for p in (REPO / package).rglob("*.py"))
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name in sorted(names):
        assert f'"{name}"' in code, f"{name} is set by docs/deploy but no code reads it"
        assert f"`{name}`" in readme, f"{name} is not documented in docs/deploy/README.md"


def test_nginx_balances_exactly_the_serve_replicas() -> None:
    services = compose()["services"]
    replicas = {name for name, s in services.items() if (s.get("command") or [None])[0] == "serve"}
    assert replicas == {"app1", "app2", "app3"}
    upstreams = set(re.findall(r"^\s*server (\w+):8000", (DEPLOY / "nginx.conf").read_text(), re.M))
    assert upstreams == replicas
    grace = int(services["app1"]["environment"]["POWERDESK_SHUTDOWN_GRACE_SECONDS"])
    assert int(services["app1"]["stop_grace_period"].rstrip("s")) > grace  # drained before docker kills


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian's systemd package) is needed to check the units"
    binary = Path(sys.executable).with_name("powerdesk")
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text(encoding="utf-8").replace("/opt/powerdesk/.venv/bin/powerdesk", str(binary))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    done = subprocess.run([analyze, "verify", *sorted(str(p) for p in tmp_path.glob("*.service"))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
