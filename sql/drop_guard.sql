--
-- drop_guard: DROP EXTENSION agentmesh_lifecycle (with or without CASCADE)
-- and DROP SCHEMA agentmesh CASCADE are refused (55000) while audit rows
-- exist, and the extension and its rows stay; with the superuser-only
-- setting agentmesh_lifecycle.allow_drop they are allowed; a non-superuser
-- cannot set it; an extension without audit rows drops as before; other
-- DROP EXTENSION / DROP SCHEMA statements are not affected.
--
CREATE EXTENSION agentmesh_lifecycle;
CREATE EXTENSION pgcrypto;

-- without audit rows the extension drops as before
SHOW agentmesh_lifecycle.allow_drop;
DROP EXTENSION agentmesh_lifecycle;
CREATE EXTENSION agentmesh_lifecycle;

SELECT agent_id AS a1 FROM agentmesh.lm_request('guarded', 'alice', actor => 'alice') \gset
SELECT count(*) AS events FROM agentmesh.audit_events \gset

-- refused, with its SQLSTATE, message and hint
\set VERBOSITY default
DROP EXTENSION agentmesh_lifecycle;
\set VERBOSITY sqlstate
DROP EXTENSION agentmesh_lifecycle CASCADE;
DROP EXTENSION IF EXISTS agentmesh_lifecycle;
DROP EXTENSION pgcrypto, agentmesh_lifecycle;
DROP SCHEMA agentmesh CASCADE;
DROP SCHEMA IF EXISTS agentmesh CASCADE;
-- replica mode does not switch the guard off
SET session_replication_role = replica;
DROP EXTENSION agentmesh_lifecycle;
RESET session_replication_role;
-- a SQLSTATE a script can catch
\set VERBOSITY terse
DO $$
BEGIN
	DROP EXTENSION agentmesh_lifecycle CASCADE;
EXCEPTION WHEN object_not_in_prerequisite_state THEN
	RAISE NOTICE 'refused with SQLSTATE %', SQLSTATE;
END
$$;
\set VERBOSITY sqlstate
-- still there, with every row
SELECT extname FROM pg_extension WHERE extname = 'agentmesh_lifecycle';
SELECT count(*) = :events AS events_kept,
	   (SELECT count(*) FROM agentmesh.agents WHERE agent_id = :'a1') AS agent_kept
  FROM agentmesh.audit_events;

-- other DROP EXTENSION / DROP SCHEMA statements are not affected
CREATE SCHEMA drop_guard_other;
DROP SCHEMA drop_guard_other;
DROP EXTENSION pgcrypto;

-- a non-superuser cannot set the setting (42501)
CREATE ROLE drop_guard_user NOLOGIN;
SET ROLE drop_guard_user;
SET agentmesh_lifecycle.allow_drop = on;
SHOW agentmesh_lifecycle.allow_drop;
RESET ROLE;
DROP ROLE drop_guard_user;

-- DROP SCHEMA agentmesh with the setting passes the guard, and PostgreSQL
-- itself refuses to drop a member of the extension (2BP01)
SET agentmesh_lifecycle.allow_drop = on;
\set VERBOSITY terse
DROP SCHEMA agentmesh CASCADE;
\set VERBOSITY sqlstate
-- a SET LOCAL that was rolled back leaves the guard on
RESET agentmesh_lifecycle.allow_drop;
BEGIN;
SET LOCAL agentmesh_lifecycle.allow_drop = on;
ROLLBACK;
DROP EXTENSION agentmesh_lifecycle;

-- allowed with the setting, CASCADE or not
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle CASCADE;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'agentmesh_lifecycle';
CREATE EXTENSION agentmesh_lifecycle;
SELECT agent_id IS NOT NULL AS requested FROM agentmesh.lm_request('again', 'alice', actor => 'alice');
DROP EXTENSION agentmesh_lifecycle;
RESET agentmesh_lifecycle.allow_drop;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'agentmesh_lifecycle';
