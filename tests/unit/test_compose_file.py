"""docker-compose.yml cannot be run here (no Docker engine), so it is checked statically against
the code: every service's settings are provided, and ports agree with `make up`."""

from pathlib import Path

import yaml

from deploy.keycloak.provision import REALM
from deploy.keycloak.server import KEYCLOAK_VERSION
from services.cli import Service, service_module, service_settings

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())


def test_each_service_runs_from_the_one_image_with_its_settings_and_port():
    for service in Service:
        spec = COMPOSE["services"][service.value]
        defaults = service_settings(service)
        prefix = service.value.upper()
        assert spec["command"] == ["serve", service.value]
        assert spec["ports"] == [f"{defaults.port}:{defaults.port}"]
        assert spec["environment"][f"{prefix}_PORT"] == str(defaults.port)
        assert spec["environment"][f"{prefix}_DATABASE_URL"].endswith(f"@postgres:5432/{service.value}")
        assert spec["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert f":{defaults.port}/readyz" in " ".join(spec["healthcheck"]["test"])
        assert spec["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
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
        # Files the service creates on first start (its checkpoint key) default to paths relative
        # to the working directory: it must be the volume they share.
        volumes = COMPOSE["services"][service.value]["volumes"]
        assert f"captives-secrets:{workdir}" in volumes, (workdir, volumes)
        # No signing key anywhere: the services verify the issuer's tokens against its keys.
        assert not any("SIGNING" in name for name in env), env


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
    assert all(port.startswith("127.0.0.1:") for port in keycloak["ports"])  # dev mode: not on the network
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
    assert f"PLAINTEXT://{host}:{port}" in broker["KAFKA_ADVERTISED_LISTENERS"]
    # The services create their topics (with unlimited retention); the broker must not invent them.
    assert broker["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "KAFKA_TOPIC_PREFIX" not in shared or shared["KAFKA_TOPIC_PREFIX"] == ""
    # Unprefixed, the topics the services produce and consume are the channels of the contract.
    asyncapi = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml").read_text())
    channels = {channel["address"] for channel in asyncapi["channels"].values()}
    for service in Service:
        definition = service_module(service).definition
        assert {definition.topic, *definition.consumes} <= channels, service
