-- docker-compose: one database per service (each service owns its data).
CREATE DATABASE intake;
CREATE DATABASE status;
CREATE DATABASE disposition;
