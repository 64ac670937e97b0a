--
-- core_privileges: each group role can do what the grant table allows and
-- nothing else (42501); a role with no grant can do nothing; PUBLIC has no
-- privilege on anything in schema agentmesh; require_distinct_approver.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY sqlstate
SET client_min_messages = warning;
CREATE ROLE regress_admin NOLOGIN IN ROLE agentmesh_admin;
CREATE ROLE regress_approver NOLOGIN IN ROLE agentmesh_approver;
CREATE ROLE regress_requester NOLOGIN IN ROLE agentmesh_requester;
CREATE ROLE regress_agent NOLOGIN IN ROLE agentmesh_agent;
CREATE ROLE regress_auditor NOLOGIN IN ROLE agentmesh_auditor;
CREATE ROLE regress_nobody NOLOGIN;
RESET client_min_messages;

-- PUBLIC has nothing on any object of the schema
SELECT count(*) AS functions_public_can_execute FROM pg_proc
 WHERE pronamespace = 'agentmesh'::regnamespace AND has_function_privilege('public', oid, 'EXECUTE');
SELECT count(*) AS relations_public_can_touch FROM pg_class
 WHERE relnamespace = 'agentmesh'::regnamespace AND relkind IN ('r', 'S', 'v', 'm')
   AND (has_table_privilege('public', oid, 'SELECT') OR has_table_privilege('public', oid, 'INSERT')
		OR has_table_privilege('public', oid, 'UPDATE') OR has_table_privilege('public', oid, 'DELETE')
		OR has_table_privilege('public', oid, 'TRUNCATE') OR has_table_privilege('public', oid, 'REFERENCES')
		OR has_table_privilege('public', oid, 'TRIGGER'));
SELECT has_schema_privilege('public', 'agentmesh', 'USAGE') AS public_schema_usage;
SELECT has_schema_privilege('regress_nobody', 'agentmesh', 'USAGE') AS nobody_schema_usage;

-- The grant table, as the catalogs say it (function x role).
SELECT p.proname,
	   has_function_privilege('regress_admin', p.oid, 'EXECUTE') AS admin,
	   has_function_privilege('regress_approver', p.oid, 'EXECUTE') AS approver,
	   has_function_privilege('regress_requester', p.oid, 'EXECUTE') AS requester,
	   has_function_privilege('regress_agent', p.oid, 'EXECUTE') AS agent,
	   has_function_privilege('regress_auditor', p.oid, 'EXECUTE') AS auditor,
	   has_function_privilege('regress_nobody', p.oid, 'EXECUTE') AS nobody
  FROM pg_proc p WHERE p.pronamespace = 'agentmesh'::regnamespace
 ORDER BY 1;
SELECT c.relname, r.rolname,
	   string_agg(m.priv, ',' ORDER BY m.priv) AS privileges
  FROM pg_class c
 CROSS JOIN (VALUES ('regress_admin'), ('regress_approver'), ('regress_requester'),
					('regress_agent'), ('regress_auditor'), ('regress_nobody')) r(rolname)
 CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) m(priv)
 WHERE c.relnamespace = 'agentmesh'::regnamespace AND c.relkind = 'r'
   AND has_table_privilege(r.rolname, c.oid, m.priv)
 GROUP BY 1, 2 ORDER BY 1, 2;


-- Agents to work on in each state, made as superuser.
CREATE FUNCTION pg_temp.fp() RETURNS text LANGUAGE sql AS $$
	SELECT md5(coalesce((SELECT string_agg(a::text, ',' ORDER BY agent_id) FROM agentmesh.agents a), ''))
		|| md5(coalesce((SELECT string_agg(c::text, ',' ORDER BY credential_id) FROM agentmesh.credentials c), ''))
		|| (SELECT count(*) FROM agentmesh.audit_events)::text
		|| md5(coalesce((SELECT string_agg(p::text, ',' ORDER BY name) FROM agentmesh.policies p), ''))
$$;
SELECT agent_id AS p1 FROM agentmesh.lm_request('p1', 'o@example.com') \gset
SELECT agent_id AS prov FROM agentmesh.lm_request('prov', 'o@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'prov');
SELECT agent_id AS act FROM agentmesh.lm_request('act', 'o@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'act');
SELECT token AS tok FROM agentmesh.lm_activate(:'act') \gset
SELECT agent_id AS sus FROM agentmesh.lm_request('sus', 'o@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'sus');
SELECT state FROM agentmesh.lm_activate(:'sus');
SELECT state FROM agentmesh.lm_suspend(:'sus');
SELECT agent_id AS orph FROM agentmesh.lm_request('orph', 'o@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'orph');
SELECT state FROM agentmesh.lm_activate(:'orph');
SELECT state FROM agentmesh.lm_mark_orphaned(:'orph');

-- Each call as each role, inside a subtransaction that is rolled back so
-- that every role starts from the same data: 'ok' or the SQLSTATE.  SET
-- ROLE keeps the superuser as session user, so this grid shows the grants
-- (EXECUTE and table privileges) only; which agents each login may act on
-- is authz_matrix's grid.
CREATE FUNCTION pg_temp.try_as(r text, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	res text;
BEGIN
	BEGIN
		EXECUTE format('SET LOCAL ROLE %I', r);
		BEGIN
			EXECUTE sql;
			res := 'ok';
		EXCEPTION WHEN OTHERS THEN
			res := SQLSTATE;
		END;
		RAISE EXCEPTION USING ERRCODE = 'ZZ999';
	EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
		NULL;
	END;
	RETURN res;
END $$;
CREATE TEMP TABLE calls (i int, label text, sql text);
INSERT INTO calls VALUES
 (1, 'lm_get', format('SELECT agentmesh.lm_get(%L)', :'act')),
 (2, 'lm_list_by_state', 'SELECT count(*) FROM agentmesh.lm_list_by_state(''active'')'),
 (3, 'lm_list_by_owner', 'SELECT count(*) FROM agentmesh.lm_list_by_owner(''o@example.com'')'),
 (4, 'lm_summary', 'SELECT agentmesh.lm_summary()'),
 (5, 'lm_transitions', 'SELECT count(*) FROM agentmesh.lm_transitions()'),
 (6, 'lm_audit_trail', format('SELECT count(*) FROM agentmesh.lm_audit_trail(%L)', :'act')),
 (7, 'lm_verify_audit', 'SELECT agentmesh.lm_verify_audit()'),
 (8, 'lm_detect_orphans', 'SELECT count(*) FROM agentmesh.lm_detect_orphans(now())'),
 (9, 'lm_verify_credential', format('SELECT agentmesh.lm_verify_credential(%L)', :'tok')),
 (10, 'lm_heartbeat', format('SELECT agentmesh.lm_heartbeat(%L)', :'act')),
 (11, 'lm_request', 'SELECT agentmesh.lm_request(''new'', ''o@example.com'')'),
 (12, 'lm_approve', format('SELECT agentmesh.lm_approve(%L)', :'p1')),
 (13, 'lm_reject', format('SELECT agentmesh.lm_reject(%L)', :'p1')),
 (14, 'lm_activate', format('SELECT agentmesh.lm_activate(%L)', :'prov')),
 (15, 'lm_rotate_credentials', format('SELECT agentmesh.lm_rotate_credentials(%L)', :'act')),
 (16, 'lm_suspend', format('SELECT agentmesh.lm_suspend(%L)', :'act')),
 (17, 'lm_resume', format('SELECT agentmesh.lm_resume(%L)', :'sus')),
 (18, 'lm_change_owner', format('SELECT agentmesh.lm_change_owner(%L, ''x@example.com'')', :'act')),
 (19, 'lm_revoke_credentials', format('SELECT agentmesh.lm_revoke_credentials(%L, ''r'')', :'act')),
 (20, 'lm_check_and_rotate', 'SELECT count(*) FROM agentmesh.lm_check_and_rotate(now())'),
 (21, 'lm_mark_orphaned', format('SELECT agentmesh.lm_mark_orphaned(%L)', :'act')),
 (22, 'lm_reclaim', format('SELECT agentmesh.lm_reclaim(%L, ''x@example.com'')', :'orph')),
 (23, 'lm_decommission', format('SELECT agentmesh.lm_decommission(%L)', :'act')),
 (30, 'select agents', 'SELECT count(*) FROM agentmesh.agents'),
 (31, 'select credentials', 'SELECT count(*) FROM agentmesh.credentials'),
 (32, 'select audit_events', 'SELECT count(*) FROM agentmesh.audit_events'),
 (33, 'select policies', 'SELECT count(*) FROM agentmesh.policies'),
 (34, 'insert policies', 'INSERT INTO agentmesh.policies (name) VALUES (''regress-p'')'),
 (35, 'update policies', 'UPDATE agentmesh.policies SET audit_heartbeats = true WHERE name = ''default'''),
 (36, 'update agents', 'UPDATE agentmesh.agents SET purpose = ''x'''),
 (37, 'insert agents', 'INSERT INTO agentmesh.agents (agent_id, name, owner, state) VALUES (''agent:x'', ''x'', ''o'', ''pending_approval'')'),
 (38, 'insert audit_events', 'INSERT INTO agentmesh.audit_events (agent_id, seq, event_type, occurred_at, actor, db_user, hash) VALUES (''x'', 1, ''heartbeat'', now(), ''x'', ''x'', ''\x00'')'),
 (39, 'update credentials', 'UPDATE agentmesh.credentials SET revoked_at = now()'),
 (40, 'delete agents', 'DELETE FROM agentmesh.agents');

SELECT pg_temp.fp() AS fp0 \gset
SELECT c.label,
	   pg_temp.try_as('regress_admin', c.sql) AS admin,
	   pg_temp.try_as('regress_approver', c.sql) AS approver,
	   pg_temp.try_as('regress_requester', c.sql) AS requester,
	   pg_temp.try_as('regress_agent', c.sql) AS agent,
	   pg_temp.try_as('regress_auditor', c.sql) AS auditor,
	   pg_temp.try_as('regress_nobody', c.sql) AS nobody
  FROM calls c ORDER BY c.i;
SELECT pg_temp.fp() = :'fp0' AS nothing_changed_by_the_grid;

-- the role with no grant gets 42501 for every lm_* function and every table
SELECT count(*) AS functions, count(*) FILTER (WHERE
		 pg_temp.try_as('regress_nobody',
			format('SELECT %s(%s)', p.oid::regproc,
				   (SELECT string_agg('NULL', ', ') FROM unnest(p.proargtypes)))) = '42501')
		 AS refused_42501
  FROM pg_proc p WHERE p.pronamespace = 'agentmesh'::regnamespace AND p.proname LIKE 'lm\_%';
SELECT count(*) AS relations, count(*) FILTER (WHERE
		 pg_temp.try_as('regress_nobody', format('SELECT 1 FROM %s LIMIT 1', c.oid::regclass)) = '42501')
		 AS refused_42501
  FROM pg_class c WHERE c.relnamespace = 'agentmesh'::regnamespace AND c.relkind IN ('r', 'S');

-- require_distinct_approver: the requester cannot approve (42501)
INSERT INTO agentmesh.policies (name, require_distinct_approver) VALUES ('four-eyes', true);
SELECT agent_id AS fe FROM agentmesh.lm_request('four-eyes-bot', 'o@example.com',
	actor => 'alice@example.com', policy => 'four-eyes') \gset
SELECT agentmesh.lm_approve(:'fe', 'alice@example.com');
SELECT agentmesh.lm_approve(:'fe', 'ALICE@example.com');
SELECT state FROM agentmesh.lm_get(:'fe');
-- the same login cannot approve either, whatever actor it claims: the
-- requester is the session user recorded at request time (issue 10)
SELECT agentmesh.lm_approve(:'fe', 'bob@example.com');
SELECT state FROM agentmesh.lm_get(:'fe');
-- another login can, as bob
SET SESSION AUTHORIZATION regress_approver;
SELECT state FROM agentmesh.lm_approve(:'fe', 'bob@example.com');
RESET SESSION AUTHORIZATION;
-- with the session user as both requester and approver
SELECT agent_id AS fe2 FROM agentmesh.lm_request('four-eyes-2', 'o@example.com', policy => 'four-eyes') \gset
SELECT agentmesh.lm_approve(:'fe2');
SELECT state, audit_seq FROM agentmesh.lm_get(:'fe2');
-- the default policy allows it
SELECT agent_id AS se FROM agentmesh.lm_request('self', 'o@example.com', actor => 'alice@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'se', 'alice@example.com');

SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
DROP ROLE regress_admin, regress_approver, regress_requester, regress_agent,
	regress_auditor, regress_nobody;
RESET client_min_messages;
