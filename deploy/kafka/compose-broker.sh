#!/bin/bash
# The secured broker of docker-compose.yml, in the official apache/kafka image (used instead of the
# image's own start script, which cannot add a SCRAM credential when it formats the storage).
#
# Every KAFKA_<NAME> variable of the container becomes the broker property <name> (lower case,
# "_" -> ".", as the image itself reads them). The admin password, a docker secret, goes only into
# files of mode 0600: the JAAS lines of both listeners, the SCRAM credential added when the
# storage is first formatted, and the client config the healthcheck uses.
set -euo pipefail
# (Overridable so that tests/integration/test_compose_broker.py can run this script without Docker.)
bin=${CAPTIVES_KAFKA_BIN:-/opt/kafka/bin}
secret=${CAPTIVES_ADMIN_SECRET:-/run/secrets/kafka/admin}
[ -s "$secret" ] || { echo "no admin secret at $secret: run 'make compose-secrets' first" >&2; exit 1; }
admin=$(tr -d '\n' < "$secret")
config=${CAPTIVES_CONFIG_DIR:-/tmp/captives}
mkdir -p "$config" && chmod 700 "$config"
umask 077
properties="$config/server.properties"
: > "$properties"
while IFS='=' read -r name value; do
  case "$name" in KAFKA_HOME|KAFKA_VERSION|KAFKA_OPTS|KAFKA_HEAP_OPTS|KAFKA_LOG4J_OPTS|KAFKA_JVM_PERFORMANCE_OPTS) continue ;; esac
  key=$(echo "${name#KAFKA_}" | tr '[:upper:]' '[:lower:]' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
  echo "$key=$value" >> "$properties"
done < <(env | grep '^KAFKA_' | sort)
cat >> "$properties" <<PROPERTIES
listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
PROPERTIES
cat > "$config/admin.properties" <<CLIENT
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
CLIENT
logs=$(grep '^log.dirs=' "$properties" | cut -d= -f2)
if [ ! -f "$logs/meta.properties" ]; then
  "$bin/kafka-storage.sh" format --ignore-formatted -c "$properties" \
    -t "$("$bin/kafka-storage.sh" random-uuid)" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$admin]"
fi
exec "$bin/kafka-server-start.sh" "$properties"
