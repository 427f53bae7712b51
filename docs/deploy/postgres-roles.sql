-- orderflow's PostgreSQL roles (docs/security.md):
--   orderflow_owner    owns the schema; only `orderflow db upgrade` connects as it.
--   orderflow_runtime  workers, scheduler, webhooks and the CLI: rows only, no DDL, no TRUNCATE.
--
-- Run once, as a superuser, connected to orderflow's (new, empty) database:
--   createdb orderflow
--   psql -v ON_ERROR_STOP=1 -d orderflow -f docs/deploy/postgres-roles.sql
-- then give both roles a password from psql (it sends a hash, so the password never appears in
-- this file, in shell history or in the server's log):
--   \password orderflow_owner
--   \password orderflow_runtime
-- and migrate as the owner:
--   ORDERFLOW_DATABASE_URL=postgresql+psycopg://orderflow_owner:…@host/orderflow orderflow db upgrade

BEGIN;

CREATE ROLE orderflow_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE ROLE orderflow_runtime LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

-- Only these two roles may connect; only the owner may create temporary tables.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO orderflow_owner', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO orderflow_runtime', current_database());
END
$$;

-- The migrations create their tables in `public`: the owner owns it, nobody else creates in it
-- (PostgreSQL before 15 lets every role create in `public` by default).
ALTER SCHEMA public OWNER TO orderflow_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO orderflow_runtime;

-- Rows only, on every table and sequence the owner creates from now on (every future migration)...
ALTER DEFAULT PRIVILEGES FOR ROLE orderflow_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO orderflow_runtime;
ALTER DEFAULT PRIVILEGES FOR ROLE orderflow_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO orderflow_runtime;

-- ...and on those already there (when the roles are added to an installation that has tables).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO orderflow_runtime;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO orderflow_runtime;

COMMIT;
