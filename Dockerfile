# One image for the three services; the command picks the service:
#   docker run ... captives serve intake|status|disposition
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY tools ./tools
# Of deploy/, what the image runs: the services read the agency directory, and the compose file's
# keycloak-provision step runs `python -m deploy.keycloak provision` (tests/unit/test_compose_file.py
# checks that every module these commands import is copied).
COPY deploy/__init__.py deploy/processes.py ./deploy/
COPY deploy/auth ./deploy/auth
COPY deploy/keycloak/*.py deploy/keycloak/demo-persons.toml ./deploy/keycloak/
RUN pip install --no-cache-dir . && useradd --system --uid 10001 captives \
    && mkdir -p /var/lib/captives && chown captives /var/lib/captives
USER captives
# Relative paths in the settings (var/keys/<service>.pem for checkpoint keys, the client registry,
# the token key) land in the volume the three services share, not in the read-only /app.
WORKDIR /var/lib/captives
EXPOSE 8001 8002 8003
ENTRYPOINT ["captives"]
CMD ["serve", "intake"]
