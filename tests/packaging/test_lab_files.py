"""The lab deployment's files, checked without containers (none can be pulled here).

An admin who brings the lab up with compose or systemd would notice: a compose file Docker refuses, a
setting the server silently ignores (a misspelt SPHEROSEG_ name), a command or option the program does
not have, a Dockerfile that copies a file the repository lacks, a unit systemd rejects, Prometheus
scraping a port nothing listens on, or a dashboard asking a data source that is not provisioned. Each is
checked against the real thing: the compose specification's JSON schema (vendored, see
compose-spec.LICENSE.md), the server's settings class, the click parsers of ``spheroseg`` and Dask's own
``dask scheduler`` / ``dask worker``, the repository's files, ``systemd-analyze verify`` and ``nginx -t``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from cluster.launch.tuning import worker_config_environment
from cluster.model.card import MODEL_DIR_ENV
from server.settings import Settings
from spheroseg_testing import nginx_command
from tests.packaging.lab import check_command

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "packaging" / "lab"
ENV_NAMES_OUTSIDE_SETTINGS = {MODEL_DIR_ENV, "SPHEROSEG_CONFIG"}  # read by cluster and by the settings loader
SETTINGS = {f"SPHEROSEG_{name.upper()}" for name in Settings.model_fields}
EDGE_VARIABLES = {
    "SPHEROSEG_EDGE_LISTEN",
    "SPHEROSEG_REPLICA_1",
    "SPHEROSEG_REPLICA_2",
    "SPHEROSEG_EDGE_CACHE",
}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((LAB / "compose.yaml").read_text())
    return loaded


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines() if line and line[0] != "#")
    return {key: value for key, _, value in pairs}


def _named_in_comments(path: Path) -> set[str]:
    return set(re.findall(r"^# (SPHEROSEG_[A-Z0-9_]+)=", path.read_text(), re.MULTILINE))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _spheroseg_images(compose: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("spheroseg-"):
            yield name, service


# -- compose -----------------------------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    jsonschema.validate(_compose(), schema, cls=jsonschema.Draft7Validator)


def test_a_compose_file_the_specification_refuses_is_caught() -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    broken = _compose()
    broken["services"]["server1"]["restart_policy"] = "always"  # a key compose does not have
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def test_compose_has_the_whole_topology() -> None:
    services = _compose()["services"]
    replicas = [s for s in services.values() if s.get("command", [])[:3] == ["spheroseg", "server", "serve"]]
    assert len(replicas) == 2
    assert services["db"]["image"].startswith("postgres:15")
    assert services["edge"]["image"].startswith("nginx:")
    workers = {name: s for name, s in services.items() if s.get("command", [])[:2] == ["dask", "worker"]}
    assert len(workers) >= 2
    devices = []
    for worker in workers.values():
        assert worker["runtime"] == "nvidia" and "GPU=1" in worker["command"]
        (reservation,) = worker["deploy"]["resources"]["reservations"]["devices"]
        assert reservation["driver"] == "nvidia" and reservation["capabilities"] == ["gpu"]
        assert _environment(worker)["NVIDIA_VISIBLE_DEVICES"] == ",".join(reservation["device_ids"])
        devices += reservation["device_ids"]
    assert len(devices) == len(set(devices)) == len(workers), "one worker per GPU, each its own device"


def test_every_command_in_compose_is_a_real_command_with_real_options() -> None:
    commands = [s["command"] for _, s in _spheroseg_images(_compose()) if "command" in s]
    assert len(commands) == 6  # migrate, the scheduler, two replicas, two GPU workers
    for command in commands:
        check_command(command)


def test_a_misspelt_option_is_caught() -> None:
    with pytest.raises(click.UsageError):
        check_command(["spheroseg", "server", "serve", "--hots", "0.0.0.0"])
    with pytest.raises(click.UsageError):
        check_command(["dask", "worker", "tcp://scheduler:8786", "--resource", "GPU=1"])


def test_every_spheroseg_variable_in_compose_is_a_real_setting() -> None:
    compose = _compose()
    for name, service in _spheroseg_images(compose):
        for key in _environment(service):
            if key.startswith("SPHEROSEG_"):
                assert key in SETTINGS | ENV_NAMES_OUTSIDE_SETTINGS, f"{name}: {key} is no setting"
    edge = _environment(compose["services"]["edge"])
    assert {k for k in edge if k.startswith("SPHEROSEG_")} == EDGE_VARIABLES
    template = (LAB / "nginx" / "spheroseg.conf.template").read_text()
    assert set(re.findall(r"\$\{(SPHEROSEG_[A-Z0-9_]+)\}", template)) == EDGE_VARIABLES


def test_env_example_names_every_setting_and_only_real_ones() -> None:
    path = LAB / ".env.example"
    named = set(_env_file(path)) | _named_in_comments(path)
    spheroseg = {name for name in named if name.startswith("SPHEROSEG_")} - ENV_NAMES_OUTSIDE_SETTINGS
    assert not spheroseg - SETTINGS, f"not settings: {sorted(spheroseg - SETTINGS)}"
    assert not SETTINGS - spheroseg, f"settings .env.example does not name: {sorted(SETTINGS - spheroseg)}"


def test_the_replicas_environment_follows_the_production_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    replica = _compose()["services"]["server1"]
    assert replica["env_file"] == ".env"
    environment = {**_env_file(LAB / ".env.example"), **_environment(replica)}
    environment = {k: re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "filled-in", v) for k, v in environment.items()}
    for key in list(os.environ):
        if key.startswith("SPHEROSEG_"):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.secret_key is not None and len(settings.secret()) >= 32
    assert not settings.introspection_enabled and not settings.graphiql
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.storage_url.startswith("s3://") and settings.scheduler == "tcp://scheduler:8786"
    assert settings.delivery_purge == "nginx" and settings.delivery_nginx_cache_path


# -- Dockerfiles -------------------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


DOCKERFILES = sorted(LAB.glob("*.Dockerfile"))
KNOWN = {"FROM", "RUN", "COPY", "ENV", "USER", "WORKDIR", "EXPOSE", "CMD", "ENTRYPOINT", "ARG", "LABEL"}


def test_compose_builds_the_dockerfiles_here_from_the_repository_root() -> None:
    built = {
        (LAB / service["build"]["context"]).resolve() / service["build"]["dockerfile"]
        for service in _compose()["services"].values()
        if "build" in service
    }
    assert built == set(DOCKERFILES)
    assert {
        (LAB / s["build"]["context"]).resolve() for s in _compose()["services"].values() if "build" in s
    } == {REPO}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_each_dockerfile_copies_what_exists_and_runs_real_commands(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    assert {keyword for keyword, _ in instructions} <= KNOWN
    # The context is the whole repository: its ignore file lets in only what is copied (no .venv).
    ignore = Path(f"{dockerfile}.dockerignore").read_text().splitlines()
    assert "*" in ignore
    let_in = {line[1:] for line in ignore if line.startswith("!")}
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    stages = 0
    for keyword, arguments in instructions:
        if keyword == "FROM":
            stages += 1
        elif keyword == "COPY" and not arguments.startswith("--from="):
            *sources, _target = shlex.split(arguments)
            for source in sources:
                assert (REPO / source).exists(), f"{dockerfile.name}: COPY {source}: not in the repository"
                assert source.rstrip("/") in let_in, (
                    f"{dockerfile.name}: COPY {source}: its .dockerignore drops it"
                )
        elif keyword == "RUN":
            for wanted in re.findall(r"\"\.\[([a-z,]+)\]\"", arguments):
                assert set(wanted.split(",")) <= extras, f"{dockerfile.name}: no extra {wanted}"
            for step in re.split(r"&&|\|\|", arguments):
                program = shlex.split(step)[0]
                assert program in {"python", "groupadd", "useradd"} or program.startswith(
                    "/opt/spheroseg/bin/"
                )
        elif keyword == "CMD":
            check_command(json.loads(arguments))
    assert stages == 2, "a build stage and a slim runtime stage"
    # An installed package carries no weights: the image copies them and says where (cluster.model.card).
    env = " ".join(arguments for keyword, arguments in instructions if keyword == "ENV")
    assert "COPY resources/models /opt/spheroseg/models" in {f"{k} {a}" for k, a in instructions}
    assert f"{MODEL_DIR_ENV}=/opt/spheroseg/models" in env
    user = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert user and user[-1] != "root", "the services run unprivileged"


def test_the_worker_image_insists_on_a_cuda_build_of_torch() -> None:
    run = " ".join(a for k, a in dockerfile_instructions(LAB / "worker.Dockerfile") if k == "RUN")
    assert '"torch==2.13.0"' in run and "torch.version.cuda" in run


# -- Prometheus, Grafana, nginx ----------------------------------------------------------------------------


def test_prometheus_scrapes_every_replica_the_scheduler_and_every_worker_where_they_listen() -> None:
    services = _compose()["services"]
    listening: set[str] = set()
    for name, service in services.items():
        command = service.get("command", [])
        if command[:3] == ["spheroseg", "server", "serve"]:
            listening.add(f"{name}:{command[command.index('--port') + 1]}")
        elif command[:2] == ["dask", "scheduler"] or command[:2] == ["dask", "worker"]:
            host = service.get("hostname", name)
            listening.add(f"{host}:{command[command.index('--dashboard-address') + 1].rsplit(':', 1)[1]}")
    config = yaml.safe_load((LAB / "prometheus.yml").read_text())
    scraped = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert scraped == listening
    assert {j["job_name"] for j in config["scrape_configs"]} == {
        "spheroseg-server",
        "dask-scheduler",
        "dask-worker",
    }


def test_prometheus_accepts_its_configuration_and_the_alert_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (apt-get install prometheus)"
    checked = subprocess.run(
        [promtool, "check", "config", str(LAB / "prometheus.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0 and "5 rules found" in checked.stdout, checked.stdout + checked.stderr
    mounted = _compose()["services"]["prometheus"]["volumes"]
    assert "./alerts.yml:/etc/prometheus/alerts.yml:ro" in mounted


def test_the_grafana_dashboard_reads_the_provisioned_prometheus() -> None:
    grafana = LAB / "grafana"
    (source,) = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    dashboard = json.loads((grafana / "dashboards" / "spheroseg.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        assert all(target["expr"] for target in panel["targets"])
    mounted = [v for v in _compose()["services"]["grafana"]["volumes"] if "dashboards" in v]
    assert mounted == ["./grafana/dashboards:/var/lib/grafana/dashboards:ro"]


def test_nginx_accepts_the_edge_template_filled_in(tmp_path: Path) -> None:
    """The template as local.py's edge runs it: inside spheroseg_testing's nginx configuration."""
    site = (LAB / "nginx" / "spheroseg.conf.template").read_text()
    for name, value in {
        "SPHEROSEG_EDGE_LISTEN": "127.0.0.1:18080",
        "SPHEROSEG_REPLICA_1": "127.0.0.1:18001",
        "SPHEROSEG_REPLICA_2": "127.0.0.1:18002",
        "SPHEROSEG_EDGE_CACHE": str(tmp_path / "cache"),
    }.items():
        site = site.replace("${" + name + "}", value)
    binary, *arguments = nginx_command(tmp_path, site)
    checked = subprocess.run([binary, "-t", *arguments], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# -- systemd -----------------------------------------------------------------------------------------------

UNITS = LAB / "systemd"


def _exec_start(unit: Path) -> list[str]:
    (line,) = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on each unit (templates as an instance), the programs pointed at this
    machine's installation instead of /opt/spheroseg (verify checks that they are executable)."""
    verify = shutil.which("systemd-analyze")
    assert verify, "systemd-analyze is missing (apt-get install systemd)"
    here = str(Path(sys.executable).parent)
    units = []
    for unit in sorted(UNITS.glob("*.service")):
        name = unit.name.replace("@.", "@0.") if "worker" in unit.name else unit.name.replace("@.", "@8000.")
        (tmp_path / name).write_text(unit.read_text().replace("/opt/spheroseg/bin", here))
        units.append(str(tmp_path / name))
    assert len(units) == 4
    checked = subprocess.run([verify, "verify", "--man=no", *units], capture_output=True, text=True)
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr


def test_workers_keep_the_malloc_settings_every_launcher_gives_them() -> None:
    """Dask's nanny would slow segmentation with a malloc tunable (cluster/launch/tuning.py)."""
    wanted = worker_config_environment()
    line = next(
        line for line in (UNITS / "spheroseg-worker@.service").read_text().splitlines() if "DASK_" in line
    )
    key, _, value = shlex.split(line.removeprefix("Environment="))[0].partition("=")
    assert {key: value} == wanted
    for name, service in _compose()["services"].items():
        if service.get("command", [])[:2] == ["dask", "worker"]:
            assert wanted.items() <= _environment(service).items(), name


def test_systemd_units_start_real_commands_with_real_options() -> None:
    for unit in sorted(UNITS.glob("*.service")):
        argv = _exec_start(unit)
        assert argv[0].startswith("/opt/spheroseg/bin/")
        check_command([Path(argv[0]).name, *(a.replace("%i", "0") for a in argv[1:])])
        for line in unit.read_text().splitlines():
            for key in re.findall(r"^Environment=\"?(SPHEROSEG_[A-Z0-9_]+)=", line):
                assert key in SETTINGS, f"{unit.name}: {key} is no setting"
