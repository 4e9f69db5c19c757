# One image for the three services; the command picks the service:
#   docker run ... captives serve intake|status|disposition
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY deploy/__init__.py deploy/processes.py ./deploy/
COPY deploy/kafka/__init__.py deploy/kafka/node.py deploy/kafka/pom.xml deploy/kafka/log4j2.properties ./deploy/kafka/
COPY deploy/postgres ./deploy/postgres
COPY deploy/auth ./deploy/auth
COPY deploy/keycloak/__init__.py deploy/keycloak/__main__.py deploy/keycloak/provision.py deploy/keycloak/realm.py \
     deploy/keycloak/server.py deploy/keycloak/demo-persons.toml ./deploy/keycloak/
RUN pip install --no-cache-dir . && useradd --system --uid 10001 captives \
    && mkdir -p /var/lib/captives && chown captives /var/lib/captives
USER captives
# Relative paths in the settings (var/keys/<service>.pem for checkpoint keys, the client registry,
# the token key) land in the volume the three services share, not in the read-only /app.
WORKDIR /var/lib/captives
EXPOSE 8001 8002 8003
ENTRYPOINT ["captives"]
CMD ["serve", "intake"]
