--
-- hostile_preexisting: an object named like one of ours that already exists
-- makes CREATE EXTENSION fail instead of adopting it (CVE-2022-2625 class).
-- Proves: a pre-created schema "agentmesh" (owned by an unprivileged role,
-- with a planted function) is not adopted; a pre-existing LOGIN role named
-- like one of the group roles is refused; after each failure nothing of the
-- extension exists and the planted objects are unchanged.
--
\set VERBOSITY sqlstate
-- make sure the group roles exist (they outlive the extension), as NOLOGIN
CREATE EXTENSION agentmesh_lifecycle;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;

-- 1. schema agentmesh created beforehand by an unprivileged role
CREATE ROLE regress_squatter;
CREATE SCHEMA agentmesh AUTHORIZATION regress_squatter;
SET ROLE regress_squatter;
CREATE FUNCTION agentmesh.lm_verify_credential(token text) RETURNS text
	LANGUAGE sql AS $$ SELECT 'agent:planted' $$;
RESET ROLE;
CREATE EXTENSION agentmesh_lifecycle;
SELECT count(*) AS extension_rows FROM pg_extension WHERE extname = 'agentmesh_lifecycle';
SELECT nspowner::regrole AS schema_owner FROM pg_namespace WHERE nspname = 'agentmesh';
SELECT count(*) AS objects_in_schema FROM pg_proc WHERE pronamespace = 'agentmesh'::regnamespace;
DROP SCHEMA agentmesh CASCADE;

-- 2. a group-role name taken by a role that can log in
ALTER ROLE agentmesh_auditor LOGIN;
CREATE EXTENSION agentmesh_lifecycle;
SELECT count(*) AS extension_rows FROM pg_extension WHERE extname = 'agentmesh_lifecycle';
SELECT count(*) AS schema_rows FROM pg_namespace WHERE nspname = 'agentmesh';
ALTER ROLE agentmesh_auditor NOLOGIN;

-- 3. ... or a superuser
ALTER ROLE agentmesh_agent SUPERUSER;
CREATE EXTENSION agentmesh_lifecycle;
ALTER ROLE agentmesh_agent NOSUPERUSER;

-- with the squatters gone the install works
CREATE EXTENSION agentmesh_lifecycle;
SELECT count(*) AS extension_rows FROM pg_extension WHERE extname = 'agentmesh_lifecycle';
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
DROP ROLE regress_squatter;
