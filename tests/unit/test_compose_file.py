"""docker-compose.yml cannot be run here (no Docker engine), so it is checked statically against
the code: every service's settings are provided, and ports agree with `make up`."""

import fnmatch
import subprocess
import sys
from pathlib import Path

import yaml

from deploy.keycloak.provision import REALM
from deploy.keycloak.server import KEYCLOAK_VERSION
from shared.broker.access import ADMIN, PRINCIPALS
from shared.broker.settings import KafkaSettings
from tools.services import Service, service_module, service_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_each_service_runs_from_the_one_image_with_its_settings_and_port():
    for service in Service:
        spec = COMPOSE["services"][service.value]
        defaults = service_settings(service)
        prefix = service.value.upper()
        assert spec["command"] == ["serve", service.value]
        assert spec["ports"] == [f"{defaults.port}:{defaults.port}"]
        assert spec["environment"][f"{prefix}_PORT"] == str(defaults.port)
        # Its database URL (with the `captives` login's password) comes from compose-secrets' env file.
        assert f"{prefix}_DATABASE_URL" not in spec["environment"]
        assert "./var/postgres/services.env" in spec["env_file"]
        assert spec["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert f":{defaults.port}/readyz" in " ".join(spec["healthcheck"]["test"])
        assert spec["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "kafka-provision": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "keycloak-provision": {"condition": "service_completed_successfully"},
        }


def test_images_are_pinned():
    for name in ("kafka", "postgres"):
        image = COMPOSE["services"][name]["image"]
        assert ":" in image and not image.endswith(":latest"), image


def _environment(service: str) -> dict:
    return {name: str(value) for name, value in COMPOSE["services"][service]["environment"].items()}


def test_every_setting_without_a_default_is_provided_and_file_paths_are_writable():
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    workdir = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("WORKDIR")][-1]
    for service in Service:
        settings_class = type(service_settings(service))
        env = _environment(service.value)
        prefix = settings_class.model_config.get("env_prefix", "")
        for name, field in settings_class.model_fields.items():
            if field.is_required():
                assert f"{prefix}{name}".upper() in env, (
                    f"{service.value}: {prefix}{name} has no default and is not set"
                )
        # Files the services read or write by relative path are in the working directory: the volume.
        volumes = COMPOSE["services"][service.value]["volumes"]
        assert f"captives-secrets:{workdir}" in volumes, (workdir, volumes)
        # Its record-signing key is its own secret, never in the shared volume; the pins are all three.
        prefix = service.value.upper()
        secrets = _secrets(service.value)
        assert secrets[env[f"{prefix}_SIGNING_KEY_FILE"]] == f"signing-{service.value}"
        assert not any(
            source.startswith("signing-") and source != f"signing-{service.value}" for source in secrets.values()
        )
        pins = env[f"{prefix}_SIGNING_PINS_DIR"]
        assert {f"{pins}/{other.value}.pub": f"pins-{other.value}" for other in Service}.items() <= secrets.items()
        assert COMPOSE["secrets"][f"signing-{service.value}"]["file"] == f"./var/keys/{service.value}.pem"
        # No token-signing key anywhere: the services verify the issuer's tokens against its keys.
        assert not any("TOKEN" in name and "KEY" in name for name in env), env


def test_the_services_verify_the_tokens_keycloak_issues_and_wait_for_its_realm():
    keycloak = COMPOSE["services"]["keycloak"]
    hostname = _environment("keycloak")["KC_HOSTNAME"]
    for service in Service:
        env = _environment(service.value)
        assert env["AUTH_OIDC_ISSUER"] == f"{hostname}/realms/{REALM}"
        assert env["AUTH_OIDC_JWKS_URI"].startswith("http://keycloak:")
        depends = COMPOSE["services"][service.value]["depends_on"]
        assert depends["keycloak-provision"]["condition"] == "service_completed_successfully"
    assert keycloak["image"].endswith(f":{KEYCLOAK_VERSION}")
    assert all(port.startswith("127.0.0.1:") for port in keycloak["ports"])  # plain HTTP: loopback only
    # Production mode, on the stack's PostgreSQL as its own login; no volume holds its keys.
    assert keycloak["command"][0] == "start" and "start-dev" not in keycloak["command"]
    kc = _environment("keycloak")
    assert (kc["KC_DB"], kc["KC_DB_USERNAME"]) == ("postgres", "keycloak")
    assert kc["KC_DB_URL"] == "jdbc:postgresql://postgres:5432/keycloak"
    assert "KC_DB_PASSWORD" not in kc and keycloak["env_file"] == ["./var/postgres/keycloak.env"]
    assert "volumes" not in keycloak and "keycloak-data" not in COMPOSE["volumes"]
    assert keycloak["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "provision" in COMPOSE["services"]["keycloak-provision"]["command"]


def test_the_services_agree_on_the_broker_and_the_topic_names():
    kafka_settings = {
        service: {name: value for name, value in _environment(service.value).items() if name.startswith("KAFKA_")}
        for service in Service
    }
    assert len({tuple(sorted(found.items())) for found in kafka_settings.values()}) == 1, kafka_settings
    shared = kafka_settings[Service.intake]
    broker = _environment("kafka")
    host, port = shared["KAFKA_BOOTSTRAP_SERVERS"].split(":")
    assert f"BROKER://{host}:{port}" in broker["KAFKA_ADVERTISED_LISTENERS"]
    # The services create their topics (with unlimited retention); the broker must not invent them.
    assert broker["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "KAFKA_TOPIC_PREFIX" not in shared or shared["KAFKA_TOPIC_PREFIX"] == ""
    # Unprefixed, the topics the services produce and consume are the channels of the contract.
    asyncapi = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml").read_text())
    channels = {channel["address"] for channel in asyncapi["channels"].values()}
    for service in Service:
        definition = service_module(service).definition
        assert {definition.topic, *definition.consumes} <= channels, service


def _listeners(broker: dict) -> dict[str, str]:
    """Listener name -> its security protocol."""
    return dict(pair.split(":") for pair in broker["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))


def test_the_broker_takes_only_authenticated_clients_and_denies_what_no_acl_allows():
    broker = _environment("kafka")
    protocols = _listeners(broker)
    names = {listener.split("://")[0] for listener in broker["KAFKA_LISTENERS"].split(",")}
    assert names <= set(protocols), (names, protocols)
    # No PLAINTEXT (or SSL-only) listener: every connection authenticates with SASL.
    assert set(protocols.values()) <= {"SASL_PLAINTEXT", "SASL_SSL"}, protocols
    client = broker["KAFKA_ADVERTISED_LISTENERS"].split("://")[0]
    assert broker["KAFKA_LISTENER_NAME_BROKER_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert broker["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert broker["KAFKA_INTER_BROKER_LISTENER_NAME"] == client
    # The controller listens on the container's loopback only.
    assert "CONTROLLER://localhost:" in broker["KAFKA_LISTENERS"]
    assert broker["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert broker["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert broker["KAFKA_SUPER_USERS"] == f"User:{ADMIN}"
    # Its start script adds admin's SCRAM credential when formatting, from the secret only.
    script = (ROOT / "deploy" / "kafka" / "compose-broker.sh").read_text()
    assert "--add-scram" in script and "SCRAM-SHA-512=[name=admin" in script
    assert "/opt/captives/compose-broker.sh" in COMPOSE["services"]["kafka"]["entrypoint"]
    assert (
        "./deploy/kafka/compose-broker.sh:/opt/captives/compose-broker.sh:ro" in COMPOSE["services"]["kafka"]["volumes"]
    )
    assert "--command-config" in " ".join(COMPOSE["services"]["kafka"]["healthcheck"]["test"])


def _secrets(service: str) -> dict[str, str]:
    """target path -> secret name, of what `service` mounts."""
    return {entry["target"]: entry["source"] for entry in COMPOSE["services"][service].get("secrets", [])}


def test_each_service_connects_as_its_own_principal_with_only_its_own_secret():
    for service in Service:
        env = _environment(service.value)
        assert env["KAFKA_SECURITY_PROTOCOL"] in {"SASL_PLAINTEXT", "SASL_SSL"}
        assert "KAFKA_SASL_PASSWORD" not in env and "KAFKA_SASL_USERNAME" not in env  # it is its name
        directory = env["KAFKA_CREDENTIALS_DIR"]
        kafka_secrets = {target: source for target, source in _secrets(service.value).items() if "kafka" in source}
        assert kafka_secrets == {f"{directory}/{service.value}": f"kafka-{service.value}"}
        # The settings it reads are the ones it is given.
        settings = KafkaSettings(credentials_dir=directory, security_protocol=env["KAFKA_SECURITY_PROTOCOL"])
        assert Path(settings.credentials_dir) / service.value == Path(f"{directory}/{service.value}")
    assert _secrets("kafka") == {"/run/secrets/kafka/admin": "kafka-admin"}
    provision = COMPOSE["services"]["kafka-provision"]
    assert provision["command"] == ["kafka", "provision"]
    assert set(_secrets("kafka-provision").values()) == {f"kafka-{principal}" for principal in PRINCIPALS}


def test_the_secrets_are_generated_into_the_git_ignored_var_directory_never_committed():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "var/" in ignored
    for name, secret in COMPOSE["secrets"].items():
        assert secret["file"].startswith(("./var/kafka/credentials/", "./var/keys/", "./var/postgres/")), (name, secret)
    assert "compose-secrets:" in (ROOT / "Makefile").read_text()


def test_each_service_gets_its_own_key_encryption_key_from_an_env_file_compose_secrets_makes(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tools.cli import app

    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("compose-secrets:", 1)[1].split("\n\n", 1)[0]
    assert "captives keys compose-env var/keys" in target
    for service in Service:
        spec = COMPOSE["services"][service.value]
        # Its own KEK file (beside the database URLs), and no KEK in the environment block or in a
        # file on the shared volume (the default var/keys/<service>.kek under the working directory).
        assert spec["env_file"] == [f"./var/keys/{service.value}.env", "./var/postgres/services.env"]
        assert not any("KEK" in name for name in spec["environment"]), spec["environment"]

    made = CliRunner().invoke(app, ["keys", "compose-env", str(tmp_path / "keys")])
    assert made.exit_code == 0, made.output
    texts = {}
    for service in Service:
        path = tmp_path / "keys" / f"{service.value}.env"
        assert path.stat().st_mode & 0o777 == 0o600
        name, _, value = path.read_text().strip().partition("=")
        monkeypatch.setenv(name, value)  # as compose puts it in the service's environment
        assert service_settings(service).kek.get_secret_value() == value
        texts[service] = path.read_text()
    assert len(set(texts.values())) == len(texts)  # one key per service
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    # Run again, the keys are kept: a new one would orphan every captive key wrapped with the old.
    # Each signing key opens with its service's KEK alone, and is the one pinned for it.
    from shared.evidence import signing
    from shared.privacy.kek import load_kek

    keys = {}
    for service in Service:
        kek = load_kek(secret=texts[service].strip().partition("=")[2], path=tmp_path / "unused")
        key = signing.load_or_create_key(tmp_path / "keys" / f"{service.value}.pem", kek)
        keys[service] = signing.key_id(key.public_key())
        assert list(signing.read_pins(tmp_path / "keys" / "pinned", service.value)) == [keys[service]]
    assert len(set(keys.values())) == len(keys)
    again = CliRunner().invoke(app, ["keys", "compose-env", str(tmp_path / "keys")])
    assert again.exit_code == 0 and "kept" in again.output
    assert {s: (tmp_path / "keys" / f"{s.value}.env").read_text() for s in Service} == texts
    assert all(f"signing key {keys[s]}" in again.output for s in Service)


def test_the_log_of_record_is_written_to_the_kafka_volume():
    kafka = COMPOSE["services"]["kafka"]
    log_dirs = _environment("kafka")["KAFKA_LOG_DIRS"]
    mounts = dict(volume.split(":", 1)[::-1] for volume in kafka["volumes"] if not volume.startswith("./"))
    # Without it the image writes to /tmp inside the container: recreating it would wipe the log.
    assert mounts.get(log_dirs) == "kafka-data", (log_dirs, kafka["volumes"])
    assert "kafka-data" in COMPOSE["volumes"]
    # The start script reads log.dirs from the properties it writes from KAFKA_* (formats it).
    assert "log.dirs" in (ROOT / "deploy" / "kafka" / "compose-broker.sh").read_text()


def test_postgres_is_healthy_only_once_every_service_database_exists():
    check = " ".join(COMPOSE["services"]["postgres"]["healthcheck"]["test"])
    created = (ROOT / "deploy" / "postgres" / "init-roles.sh").read_text()
    for database in [service.value for service in Service] + ["keycloak"]:
        assert f"CREATE DATABASE {database} OWNER" in created
        assert f"'{database}'" in check
    assert f"= {len(Service) + 1}" in check and "pg_isready" not in check
    postgres = COMPOSE["services"]["postgres"]
    assert "./deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/init-roles.sh:ro" in postgres["volumes"]
    assert set(postgres["secrets"]) == {"postgres-admin", "postgres-captives", "postgres-keycloak"}
    assert "POSTGRES_PASSWORD" not in postgres["environment"]  # from its secret file only
    # tests/integration/test_compose_postgres.py runs this check against a real server.


def test_compose_secrets_makes_the_database_logins_and_keeps_them(tmp_path):
    from typer.testing import CliRunner

    from tools.cli import app

    target = (ROOT / "Makefile").read_text().split("compose-secrets:", 1)[1].split("\n\n", 1)[0]
    assert "captives keys compose-database var/postgres" in target
    made = CliRunner().invoke(app, ["keys", "compose-database", str(tmp_path / "postgres")])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "postgres"
    assert folder.stat().st_mode & 0o777 == 0o700
    passwords = {login: (folder / login).read_text() for login in ("admin", "captives", "keycloak")}
    assert len(set(passwords.values())) == 3 and all(len(p) >= 40 for p in passwords.values())
    for env in ("services.env", "keycloak.env"):
        assert (folder / env).stat().st_mode & 0o777 == 0o600
    urls = dict(line.split("=", 1) for line in (folder / "services.env").read_text().splitlines())
    for service in Service:
        assert urls[f"{service.value.upper()}_DATABASE_URL"] == (
            f"postgresql+psycopg://captives:{passwords['captives']}@postgres:5432/{service.value}"
        )
    assert (folder / "keycloak.env").read_text() == f"KC_DB_PASSWORD={passwords['keycloak']}\n"
    again = CliRunner().invoke(app, ["keys", "compose-database", str(tmp_path / "postgres")])
    assert again.exit_code == 0 and {login: (folder / login).read_text() for login in passwords} == passwords


# What the image runs: `captives serve <service>` and `captives kafka provision` (tools/cli.py) and
# the realm's provisioning (deploy/keycloak/__main__.py).
IMAGE_COMMANDS = ("tools.cli", "deploy.keycloak.__main__")


def test_the_image_holds_every_module_its_commands_import():
    root = Path(__file__).resolve().parents[2]
    copied = [
        source
        for line in (root / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.removeprefix("COPY ").rstrip(" \\").split()[:-1]
    ]
    program = (
        "import importlib, sys\n"
        f"for name in {IMAGE_COMMANDS!r}: importlib.import_module(name)\n"
        "for module in list(sys.modules.values()):\n"
        "    print(getattr(module, '__file__', None) or '')\n"
    )
    files = subprocess.run([sys.executable, "-c", program], cwd=root, capture_output=True, text=True, check=True)
    ours = sorted(
        {
            str(Path(file).resolve().relative_to(root))
            for file in files.stdout.split()
            if Path(file).resolve().is_relative_to(root) and ".venv" not in Path(file).parts
        }
    )
    assert any(name.startswith("tools/") for name in ours) and any(name.startswith("deploy/keycloak/") for name in ours)
    missing = [
        name
        for name in ours
        if not any(fnmatch.fnmatch(name, pattern) or name.startswith(pattern.rstrip("/") + "/") for pattern in copied)
    ]
    assert not missing, f"the Dockerfile copies none of {missing}"
