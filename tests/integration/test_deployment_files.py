"""docker-compose.yml, the Dockerfile and .env.example, checked without a Docker engine.

No Docker engine or compose plugin runs on the build machines, so the deployment files are
checked here instead of by starting them:

- docker-compose.yml against the Compose Specification's JSON schema (deploy/compose-spec.json,
  provenance in deploy/README.md), and with `docker compose config` where the docker client
  and its compose plugin exist;
- every service's command against the project's real entry points: the Celery app and its
  queues, the worker/beat/flower options as Celery's own command line parses them, the
  gunicorn config and WSGI application (loaded by `gunicorn --check-config` under the compose
  environment), the manage.py commands, the health-check URLs;
- the compose environment: production settings, every variable they require present in
  .env.example, and its CHANGE-ME placeholders refused;
- the Dockerfile's COPY sources and CMD.

No database is used.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from cryptography.fernet import Fernet
from django.core.management import get_commands
from django.urls import resolve
from jsonschema import Draft202012Validator

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SCHEMA_FILE = REPO_ROOT / "deploy" / "compose-spec.json"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SETTINGS_DIR = REPO_ROOT / "mediation" / "settings"

APP_IMAGE = "mediation:latest"
PRODUCTION_SETTINGS = "mediation.settings.production"
EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "migrate",
    "web",
    "worker-sweeps",
    "worker-deliveries",
    "beat",
    "flower",
}
# Read by the postgres image, not by the application.
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


# --- loading ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the project's image."""
    return {name: s for name, s in services.items() if s.get("image") == APP_IMAGE}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; comments and blank lines skipped, surrounding quotes removed."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$`, for checking commands.

    A required variable (`:?`) that is unset becomes `<VAR>`; the test of `docker compose
    config` checks that compose really refuses it.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        value = variables.get(name)
        if operator in (":-", "-"):
            return value if value else argument
        if operator in (":?", "?"):
            return value if value else f"<{name}>"
        return value or ""

    return _INTERPOLATION.sub(replace, value)


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(interpolate(command, {}))
    return [interpolate(str(part), {}) for part in command]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def urls_in(text: str) -> list[str]:
    return re.findall(r"https?://[^\s\"')]+", text)


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def env_files_of(service: dict[str, Any]) -> list[tuple[str, bool]]:
    """(path, required) of each env_file entry."""
    entries = service.get("env_file") or []
    if isinstance(entries, str):
        entries = [entries]
    return [
        (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        for entry in entries
    ]


def parse_celery(argv: list[str]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(global options, subcommand, subcommand options), parsed by Celery's own command line.

    An option Celery does not know raises click.UsageError.
    """
    from workers.celery import app

    assert argv[0] == "celery", argv
    args = argv[1:]
    position = next(i for i, token in enumerate(args) if token in celery_cli.commands)
    global_context = click.Command("celery", params=celery_cli.params).make_context(
        "celery", args[:position]
    )
    global_context.obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    name = args[position]
    sub_context = celery_cli.commands[name].make_context(
        name, args[position + 1 :], parent=global_context
    )
    return global_context.params, name, sub_context.params


def app_queues() -> set[str]:
    """Every queue the Celery app sends to: its routes, its default queue, the beat schedule."""
    from workers.celery import app

    queues = {app.conf.task_default_queue}
    queues |= {route["queue"] for route in app.conf.task_routes.values()}
    queues |= {
        entry["options"]["queue"]
        for entry in app.conf.beat_schedule.values()
        if "queue" in entry.get("options", {})
    }
    return queues


def production_environment(service: dict[str, Any], *, replace_placeholders: bool) -> dict:
    """The environment compose gives `service`, from .env.example (not the checkout's .env).

    With `replace_placeholders`, every CHANGE-ME value gets a generated one, as an operator's
    .env would.
    """
    environment: dict[str, str] = {}
    for path, required in env_files_of(service):
        if path == ".env.example":
            environment.update(read_env_file(REPO_ROOT / path))
        else:
            assert not required, f"env_file {path} must be optional"
    environment.update(
        {key: interpolate(value, {}) for key, value in environment_of(service).items()}
    )
    if replace_placeholders:
        environment["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
        for key, value in environment.items():
            environment[key] = re.sub(
                r"CHANGE-ME[\w-]*", lambda _: hashlib.sha256(os.urandom(32)).hexdigest(), value
            )
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        **environment,
    }


# --- the schema -------------------------------------------------------------------------------


def test_vendored_schema_is_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "compose_spec.json"
    assert schema["title"] == "Compose Specification"
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    provenance = (REPO_ROOT / "deploy" / "README.md").read_text()
    assert f"SHA-256: `{digest}`" in provenance, "update deploy/README.md with the new digest"


def test_compose_file_is_valid_against_the_compose_specification(compose) -> None:
    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))

    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(compose)
    ]

    assert errors == []


def test_the_schema_check_catches_a_misspelt_key(compose) -> None:
    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["healtcheck"] = broken["services"]["web"].pop("healthcheck")
    broken["services"]["redis"]["restart"] = ["always"]

    paths = {"/".join(str(p) for p in e.absolute_path) for e in validator.iter_errors(broken)}

    assert {"services/web", "services/redis/restart"} <= paths


def _compose_plugin() -> str | None:
    """Why `docker compose` cannot run here, or None when it can."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client on PATH"
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    if version.returncode != 0:
        return "the docker client has no compose plugin (`docker compose version` failed)"
    return None


def test_docker_compose_config_accepts_the_file(tmp_path) -> None:
    reason = _compose_plugin()
    if reason:
        pytest.skip(f"`docker compose config` not run: {reason}; the schema test covers the file")
    # An empty interpolation file: the checkout's .env must not decide the outcome.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in {"FLOWER_BASIC_AUTH"}}
    base = ["docker", "compose", "--env-file", str(empty), "-f", str(COMPOSE_FILE), "config"]

    accepted = subprocess.run(
        [*base, "--quiet"],
        cwd=REPO_ROOT,
        env={**env, "FLOWER_BASIC_AUTH": "ops:test-only"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    refused = subprocess.run(
        [*base, "--quiet"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert accepted.returncode == 0, accepted.stderr
    assert refused.returncode != 0
    assert "FLOWER_BASIC_AUTH" in refused.stderr


# --- services -----------------------------------------------------------------------------------


def test_the_stack_has_its_services_with_restart_policies_and_health_checks(services) -> None:
    assert set(services) == EXPECTED_SERVICES
    for name, service in services.items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert service.get("restart") in {"unless-stopped", "always"}, name
        assert healthcheck_text(service), name


def test_only_the_database_the_case_files_and_beat_keep_state_in_volumes(compose, services):
    assert set(compose["volumes"]) == {"postgres-data", "beat-data", "media-data"}
    assert services["postgres"]["volumes"] == [
        "postgres-data:/var/lib/postgresql/data",
        "./deploy/postgres:/docker-entrypoint-initdb.d:ro",
    ]
    assert services["beat"]["volumes"] == ["beat-data:/var/lib/mediation"]
    # The attachments with FILE_STORAGE=local, at the MEDIA_ROOT of .env.example.
    assert services["web"]["volumes"] == ["media-data:/var/lib/mediation/media"]
    assert read_env_file(REPO_ROOT / ".env.example")["MEDIA_ROOT"] == "/var/lib/mediation/media"
    assert "volumes" not in services["redis"]


def test_published_ports_are_bound_to_the_loopback_address(services) -> None:
    published = {
        name: service["ports"] for name, service in services.items() if service.get("ports")
    }

    assert set(published) == {"web", "flower"}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_redis_is_a_transport_that_never_evicts(services) -> None:
    command = command_of(services["redis"])

    assert command[0] == "redis-server"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--save"] == ""
    assert options["--appendonly"] == "no"
    assert "Redis holds no record of truth" in COMPOSE_FILE.read_text()


def test_app_services_run_the_production_settings_from_the_environment(app_services) -> None:
    assert set(app_services) == EXPECTED_SERVICES - {"postgres", "redis"}
    for name, service in app_services.items():
        environment = environment_of(service)
        assert environment["DJANGO_SETTINGS_MODULE"] == PRODUCTION_SETTINGS, name
        assert (".env.example", True) in env_files_of(service), name
        assert (".env", False) in env_files_of(service), name
        # Values in the file are settings names or interpolated from .env, never secrets.
        for key, value in environment.items():
            literal = key == "DJANGO_SETTINGS_MODULE" or (
                name == "migrate" and key == "DATABASE_ROLE_CHECK"
            )
            assert literal or value.startswith("${"), (name, key)
    assert (SETTINGS_DIR / "production.py").is_file()


def _required_variables(path: Path) -> set[str]:
    """Names read with env.<type>("NAME") and no default: the settings cannot start without."""
    required = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and len(node.args) == 1
            and not any(keyword.arg == "default" for keyword in node.keywords)
        ):
            required.add(node.args[0].value)
    return required


def test_env_example_provides_every_variable_the_production_settings_require() -> None:
    required = _required_variables(SETTINGS_DIR / "production.py") | _required_variables(
        SETTINGS_DIR / "base.py"
    )
    provided = read_env_file(ENV_EXAMPLE)

    assert {"DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ID_HASH_KEY", "DATABASE_URL"} <= required
    assert required - set(provided) == set()
    assert all(provided[name] for name in required)


def test_every_variable_in_env_example_is_read_by_something() -> None:
    readers = "\n".join(
        path.read_text()
        for path in [
            *SETTINGS_DIR.glob("*.py"),
            COMPOSE_FILE,
            REPO_ROOT / "deploy" / "gunicorn.conf.py",
            REPO_ROOT / "deploy" / "postgres" / "10-roles.sh",
        ]
    )

    unread = {
        name
        for name in read_env_file(ENV_EXAMPLE)
        if name not in POSTGRES_IMAGE_VARIABLES and not re.search(rf"\b{name}\b", readers)
    }

    assert unread == set()


def test_production_settings_refuse_the_env_example_placeholders(app_services) -> None:
    environment = production_environment(app_services["web"], replace_placeholders=False)

    result = subprocess.run(
        [sys.executable, "-c", "import mediation.wsgi"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "still holds the public placeholder from .env.example" in result.stderr


def test_web_command_loads_gunicorn_config_and_wsgi_app_under_the_compose_environment(
    app_services,
) -> None:
    web = app_services["web"]
    command = command_of(web)
    assert command[0] == "gunicorn"
    assert command[-1] == "mediation.wsgi:application"
    config = command[command.index("--config") + 1]
    assert (REPO_ROOT / config).is_file()

    # --check-config imports the WSGI application (so the production settings) and exits.
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", *command[1:]],
        cwd=REPO_ROOT,
        env=production_environment(web, replace_placeholders=True),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_web_health_check_uses_healthz(app_services) -> None:
    from mediation.core.views import healthz

    [url] = urls_in(healthcheck_text(app_services["web"]))

    assert url == "http://127.0.0.1:8000/healthz"
    assert resolve("/healthz").func is healthz
    # The engine's health page that docs/DEPLOY.md tells operators to monitor.
    assert resolve("/health/").url_name == "health"


def test_manage_py_commands_exist(app_services) -> None:
    commands = {
        name: command_of(service)
        for name, service in app_services.items()
        if command_of(service)[:2] == ["python", "manage.py"]
    }

    assert set(commands) == {"migrate"}
    for argv in commands.values():
        assert argv[2] in get_commands(), argv


def test_celery_commands_match_the_celery_app(app_services) -> None:
    celery_services = {
        name: parse_celery(command_of(service))
        for name, service in app_services.items()
        if command_of(service)[:1] == ["celery"]
    }
    assert set(celery_services) == {"worker-sweeps", "worker-deliveries", "beat", "flower"}
    for global_options, _, _ in celery_services.values():
        assert global_options["app"] == "workers.celery"

    workers = {name: p for name, (_, sub, p) in celery_services.items() if sub == "worker"}
    consumed = {name: set(options["queues"]) for name, options in workers.items()}
    assert consumed == {
        "worker-sweeps": {"sweeps"},
        # `reports`: the statistics refresh, kept off the one-process sweeps worker.
        "worker-deliveries": {"deliveries", "reports"},
    }
    # Every queue the app sends to has a worker, and no worker waits on a queue nothing uses.
    assert set().union(*consumed.values()) == app_queues()
    assert workers["worker-sweeps"]["concurrency"] == 1
    assert [name for name, (_, sub, _) in celery_services.items() if sub == "beat"] == ["beat"]


def test_worker_health_checks_ping_their_own_worker(app_services) -> None:
    for name in ("worker-sweeps", "worker-deliveries"):
        service = app_services[name]
        _, _, options = parse_celery(command_of(service))
        node_prefix = options["hostname"].split("@")[0]
        check = shlex.split(interpolate(healthcheck_text(service).removeprefix("CMD-SHELL "), {}))

        _, subcommand, ping = parse_celery(check)

        assert subcommand == "inspect"
        assert ping["command"] == "ping"
        assert ping["destination"] == [f"{node_prefix}@$HOSTNAME"]


def test_beat_health_check_watches_its_schedule_file(app_services) -> None:
    beat = app_services["beat"]
    _, _, options = parse_celery(command_of(beat))

    assert options["schedule"].startswith("/var/lib/mediation/")
    assert f'"{options["schedule"]}*"' in healthcheck_text(beat)


def test_flower_requires_basic_auth_and_checks_a_real_page(app_services) -> None:
    import flower.options  # defines Flower's options on tornado's parser
    from flower.urls import handlers
    from tornado.options import options as flower_options

    flower = app_services["flower"]
    _, subcommand, params = parse_celery(command_of(flower))
    assert subcommand == "flower"
    flower_args = dict(arg.removeprefix("--").split("=", 1) for arg in params["tornado_argv"])
    for name in flower_args:
        assert name in flower_options, f"flower has no option --{name}"

    auth = environment_of(flower)["FLOWER_BASIC_AUTH"]
    assert auth.startswith("${FLOWER_BASIC_AUTH:?"), "compose must refuse to start without it"
    assert flower["ports"] == [f"127.0.0.1:{flower_args['port']}:{flower_args['port']}"]
    [url] = urls_in(healthcheck_text(flower))
    assert url == f"http://127.0.0.1:{flower_args['port']}/healthcheck"
    patterns = [h.regex.pattern if hasattr(h, "regex") else h[0] for h in handlers]
    assert any(re.fullmatch(pattern, "/healthcheck") for pattern in patterns)


# --- Dockerfile ---------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def test_dockerfile_copies_files_that_exist() -> None:
    copies = [args for keyword, args in dockerfile_instructions() if keyword in {"COPY", "ADD"}]

    assert copies
    for arguments in copies:
        parts = [p for p in shlex.split(arguments) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file"


def test_dockerfile_cmd_is_the_web_command_and_its_files_are_in_the_image(app_services) -> None:
    instructions = dockerfile_instructions()
    [cmd] = [json.loads(args) for keyword, args in instructions if keyword == "CMD"]
    copied = {
        source
        for keyword, args in instructions
        if keyword == "COPY"
        for source in [p for p in shlex.split(args) if not p.startswith("--")][:-1]
    }

    assert cmd == command_of(app_services["web"])
    assert cmd[cmd.index("--config") + 1] in copied
    # Everything the compose commands run from the working directory is in the image.
    assert {"manage.py", "mediation", "workers"} <= copied


def test_migrate_runs_as_the_owner_and_everything_else_as_the_application_role(
    app_services,
) -> None:
    provided = read_env_file(ENV_EXAMPLE)
    assert "mediation_app" in provided["DATABASE_URL"]
    assert "mediation_owner" in provided["DATABASE_OWNER_URL"]
    assert provided["POSTGRES_USER"] not in {"mediation_app", "mediation_owner"}

    migrate = environment_of(app_services["migrate"])
    assert migrate["DATABASE_URL"].startswith("${DATABASE_OWNER_URL")
    assert migrate["DATABASE_ROLE_CHECK"] == "false"
    for name, service in app_services.items():
        if name != "migrate":
            assert "DATABASE_URL" not in environment_of(service), name  # .env's: the app role


def test_the_init_script_creates_both_roles_and_applies_the_grants() -> None:
    script = (REPO_ROOT / "deploy" / "postgres" / "10-roles.sh").read_text()
    grants = (REPO_ROOT / "deploy" / "postgres" / "grants.psql").read_text()

    assert 'CREATE ROLE :"owner" LOGIN NOSUPERUSER' in script
    assert 'CREATE ROLE :"app" LOGIN NOSUPERUSER' in script
    assert 'ALTER DATABASE :"dbname" OWNER TO :"owner"' in script
    assert "grants.psql" in script
    assert "ALTER DEFAULT PRIVILEGES FOR ROLE" in grants
    assert "TRUNCATE" not in grants.split("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES")[0]
    assert os.access(REPO_ROOT / "deploy" / "postgres" / "10-roles.sh", os.X_OK)
