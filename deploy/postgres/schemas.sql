-- One schema per service, owned by the services' database user (POSTGRES_USER).
CREATE SCHEMA IF NOT EXISTS intake;
CREATE SCHEMA IF NOT EXISTS escalation;
CREATE SCHEMA IF NOT EXISTS notifier;
CREATE SCHEMA IF NOT EXISTS followup;
CREATE SCHEMA IF NOT EXISTS console;
