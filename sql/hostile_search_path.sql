--
-- hostile_search_path: CREATE EXTENSION and every lm_* call under a
-- search_path whose first schema (ahead of pg_catalog) holds fake sha256(),
-- now(), length(), nextval(), pg_current_xact_id() and fake =, <>, ~, <, >,
-- >= operators.  Each fake bumps a sequence (non-transactional, so a call
-- is counted even when its error is caught somewhere) and then raises.
-- Proves: the install script and the C code never resolve an unqualified
-- name through the caller's search_path; the fakes are called zero times.
--
\set VERBOSITY terse
CREATE SCHEMA hostile;
CREATE SEQUENCE hostile.fake_calls;
CREATE FUNCTION hostile.trap(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_catalog.nextval('hostile.fake_calls');
	RAISE EXCEPTION 'hostile % called', what;
END $$;
CREATE FUNCTION hostile.sha256(bytea) RETURNS bytea LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('sha256'); RETURN NULL; END $$;
CREATE FUNCTION hostile.now() RETURNS timestamptz LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('now'); RETURN NULL; END $$;
CREATE FUNCTION hostile.length(bytea) RETURNS int LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('length'); RETURN 32; END $$;
CREATE FUNCTION hostile.nextval(regclass) RETURNS bigint LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('nextval'); RETURN 1; END $$;
CREATE FUNCTION hostile.pg_current_xact_id() RETURNS xid8 LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('pg_current_xact_id'); RETURN NULL; END $$;
CREATE FUNCTION hostile.text_cmp(text, text) RETURNS bool LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('text operator'); RETURN true; END $$;
CREATE FUNCTION hostile.interval_cmp(interval, interval) RETURNS bool LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('interval operator'); RETURN true; END $$;
CREATE FUNCTION hostile.ts_cmp(timestamptz, timestamptz) RETURNS bool LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('timestamptz operator'); RETURN true; END $$;
CREATE FUNCTION hostile.bytea_cmp(bytea, bytea) RETURNS bool LANGUAGE plpgsql
	AS $$ BEGIN PERFORM hostile.trap('bytea operator'); RETURN true; END $$;
CREATE OPERATOR hostile.=  (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.text_cmp);
CREATE OPERATOR hostile.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.text_cmp);
CREATE OPERATOR hostile.~  (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.text_cmp);
CREATE OPERATOR hostile.=  (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = hostile.bytea_cmp);
CREATE OPERATOR hostile.>  (LEFTARG = interval, RIGHTARG = interval, FUNCTION = hostile.interval_cmp);
CREATE OPERATOR hostile.>= (LEFTARG = interval, RIGHTARG = interval, FUNCTION = hostile.interval_cmp);
CREATE OPERATOR hostile.<  (LEFTARG = interval, RIGHTARG = interval, FUNCTION = hostile.interval_cmp);
CREATE OPERATOR hostile.<= (LEFTARG = interval, RIGHTARG = interval, FUNCTION = hostile.interval_cmp);
CREATE OPERATOR hostile.>  (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = hostile.ts_cmp);
CREATE OPERATOR hostile.<  (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = hostile.ts_cmp);
CREATE OPERATOR hostile.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = hostile.ts_cmp);
CREATE OPERATOR hostile.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = hostile.ts_cmp);
-- the fakes work: a plain comparison under this path is trapped
SET search_path = hostile, pg_catalog, public;
SELECT 'a'::text = 'a'::text;
SELECT pg_catalog.setval('hostile.fake_calls', 1, false);

-- install under the hostile path
CREATE EXTENSION agentmesh_lifecycle;

-- the whole lifecycle under the same path (the test's own comparisons are
-- written OPERATOR(pg_catalog.=) so that only the extension is exercised)
SELECT (agentmesh.lm_request('bot', 'alice@example.com', actor => 'alice')).agent_id AS a \gset
SELECT state FROM agentmesh.lm_approve(:'a', 'approver');
SELECT state, token AS tok FROM agentmesh.lm_activate(:'a') \gset
SELECT :'state';
SELECT agentmesh.lm_verify_credential(:'tok') OPERATOR(pg_catalog.=) :'a' AS token_verifies;
SELECT state, credential_id IS NOT NULL AS with_credential FROM agentmesh.lm_heartbeat(:'a', :'tok');
SELECT state FROM agentmesh.lm_rotate_credentials(:'a');
SELECT action FROM agentmesh.lm_check_and_rotate(pg_catalog.now() + '1 hour', allow_future => true);
SELECT count(*) AS orphans FROM agentmesh.lm_detect_orphans(pg_catalog.now() + '30 days');
SELECT state FROM agentmesh.lm_suspend(:'a', 'incident');
SELECT state FROM agentmesh.lm_resume(:'a');
SELECT state, owner FROM agentmesh.lm_change_owner(:'a', 'bob@example.com');
SELECT state FROM agentmesh.lm_mark_orphaned(:'a');
SELECT state FROM agentmesh.lm_reclaim(:'a', 'carol@example.com');
SELECT state FROM agentmesh.lm_revoke_credentials(:'a', 'leaked');
SELECT state FROM agentmesh.lm_decommission(:'a', 'retired');
SELECT (agentmesh.lm_request('bot2', 'dave@example.com')).agent_id AS b \gset
SELECT state FROM agentmesh.lm_reject(:'b', 'not needed');
SELECT count(*) FROM agentmesh.lm_list_by_state('decommissioned');
SELECT count(*) FROM agentmesh.lm_list_by_owner('carol@example.com');
SELECT count(*) FROM agentmesh.lm_audit_trail(:'a');
SELECT agentmesh.lm_summary() -> 'total_agents' AS total_agents;
SELECT intact, problem FROM agentmesh.lm_verify_audit();
-- a policy change (audited by the policies trigger) under the hostile path
INSERT INTO agentmesh.policies (name, rotation_overlap) VALUES ('strict', '1 minute');
UPDATE agentmesh.policies SET heartbeat_interval = '1 minute' WHERE name OPERATOR(pg_catalog.=) 'strict';
SELECT intact FROM agentmesh.lm_verify_audit();

-- no fake was ever called
SELECT is_called AS any_fake_called FROM hostile.fake_calls;

RESET search_path;
SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
DROP SCHEMA hostile CASCADE;
RESET client_min_messages;
