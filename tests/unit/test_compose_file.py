"""docker-compose.yml cannot be run here (no Docker engine), so it is checked statically against
the code: every service's settings are provided, and ports agree with `make up`."""

from pathlib import Path

import yaml

from services.cli import Service, service_settings

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
        }


def test_images_are_pinned():
    for name in ("kafka", "postgres"):
        image = COMPOSE["services"][name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
