--
-- authz_matrix: who may do what on which agent (issue 10), as real logins.
-- Two teams, each with a requester login; an approver; an agent login per
-- active agent; an admin; an auditor.  Every function and every table read
-- by every login, against an agent of team A and one of team B, each call
-- rolled back so that every login starts from the same data.  The grid it
-- prints is the table in docs/roles.md.  Nothing changes in the grid
-- (fingerprint), and invisible agents behave exactly as unknown ids.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY sqlstate
\i test/fingerprint.sql

SET client_min_messages = warning;
CREATE ROLE regress_az_team_a NOLOGIN;
CREATE ROLE regress_az_team_b NOLOGIN;
CREATE ROLE regress_az_req_a LOGIN IN ROLE agentmesh_requester, regress_az_team_a;
CREATE ROLE regress_az_req_b LOGIN IN ROLE agentmesh_requester, regress_az_team_b;
CREATE ROLE regress_az_approver LOGIN IN ROLE agentmesh_approver;
CREATE ROLE regress_az_agent_a LOGIN IN ROLE agentmesh_agent;
CREATE ROLE regress_az_agent_b LOGIN IN ROLE agentmesh_agent;
CREATE ROLE regress_az_admin LOGIN IN ROLE agentmesh_admin;
CREATE ROLE regress_az_auditor LOGIN IN ROLE agentmesh_auditor;
RESET client_min_messages;

-- Each team's agents in every state the grid needs, requested by the team's
-- own login, approved by the approver, run by the admin.
CREATE TEMP TABLE ag (team text, kind text, agent_id text, token text);
GRANT SELECT ON ag TO PUBLIC;
CREATE FUNCTION pg_temp.make_team(t text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	k text;
	a text;
	tok text;
BEGIN
	FOREACH k IN ARRAY ARRAY['pending', 'provisioned', 'active', 'suspended', 'orphaned'] LOOP
		EXECUTE format('SET LOCAL SESSION AUTHORIZATION %I', 'regress_az_req_' || t);
		a := (agentmesh.lm_request(t || '-' || k, 'owner-' || t || '@example.com',
								   actor => 'req-' || t, team => 'regress_az_team_' || t)).agent_id;
		RESET SESSION AUTHORIZATION;
		tok := NULL;
		IF k <> 'pending' THEN
			SET LOCAL SESSION AUTHORIZATION regress_az_approver;
			PERFORM agentmesh.lm_approve(a, 'approver');
			RESET SESSION AUTHORIZATION;
		END IF;
		IF k IN ('active', 'suspended', 'orphaned') THEN
			tok := (agentmesh.lm_activate(a)).token;
		END IF;
		IF k = 'suspended' THEN PERFORM agentmesh.lm_suspend(a); END IF;
		IF k = 'orphaned' THEN PERFORM agentmesh.lm_mark_orphaned(a); END IF;
		INSERT INTO ag VALUES (t, k, a, tok);
	END LOOP;
END $$;
SELECT pg_temp.make_team('a'), pg_temp.make_team('b');
SELECT a.team, a.kind, g.state, g.team AS agent_team, g.requested_by
  FROM ag a JOIN agentmesh.agents g USING (agent_id) ORDER BY 1, g.created_at;

-- One call as one login, rolled back: 'ok', 'row'/'none' for reads (no row
-- is what an unknown id gives), or the SQLSTATE.
CREATE FUNCTION pg_temp.try_as(login text, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	res text;
	r text;
BEGIN
	BEGIN
		EXECUTE format('SET LOCAL SESSION AUTHORIZATION %I', login);
		BEGIN
			EXECUTE sql INTO r;
			res := coalesce(r, 'ok');
		EXCEPTION WHEN OTHERS THEN
			res := SQLSTATE;
		END;
		RAISE EXCEPTION USING ERRCODE = 'ZZ999';
	EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
		NULL;
	END;
	RETURN res;
END $$;

-- The calls.  %1$s: the target team's letter, %2$s: the other's; :x(kind)
-- and :t(kind) stand for the target's agent id and token of that kind.
CREATE TEMP TABLE calls (i int, label text, sql text);
INSERT INTO calls VALUES
 (1, 'lm_request(team => x)', $$SELECT 'ok' FROM agentmesh.lm_request('n', 'o@example.com', team => 'regress_az_team_%1$s')$$),
 (2, 'lm_approve', $$SELECT 'ok' FROM agentmesh.lm_approve(:x(pending))$$),
 (3, 'lm_reject', $$SELECT 'ok' FROM agentmesh.lm_reject(:x(pending))$$),
 (4, 'lm_activate', $$SELECT 'ok' FROM agentmesh.lm_activate(:x(provisioned))$$),
 (5, 'lm_rotate_credentials', $$SELECT 'ok' FROM agentmesh.lm_rotate_credentials(:x(active))$$),
 (6, 'lm_revoke_credentials', $$SELECT 'ok' FROM agentmesh.lm_revoke_credentials(:x(active), 'r')$$),
 (7, 'lm_suspend', $$SELECT 'ok' FROM agentmesh.lm_suspend(:x(active))$$),
 (8, 'lm_resume', $$SELECT 'ok' FROM agentmesh.lm_resume(:x(suspended))$$),
 (9, 'lm_decommission', $$SELECT 'ok' FROM agentmesh.lm_decommission(:x(active))$$),
 (10, 'lm_change_owner', $$SELECT 'ok' FROM agentmesh.lm_change_owner(:x(active), 'x@example.com')$$),
 (11, 'lm_change_team', $$SELECT 'ok' FROM agentmesh.lm_change_team(:x(active), 'regress_az_team_%2$s')$$),
 (12, 'lm_mark_orphaned', $$SELECT 'ok' FROM agentmesh.lm_mark_orphaned(:x(active))$$),
 (13, 'lm_reclaim', $$SELECT 'ok' FROM agentmesh.lm_reclaim(:x(orphaned), 'x@example.com')$$),
 (14, 'lm_heartbeat(x)', $$SELECT 'ok' FROM agentmesh.lm_heartbeat(:x(active))$$),
 (15, 'lm_heartbeat(x, x''s token)', $$SELECT 'ok' FROM agentmesh.lm_heartbeat(:x(active), :t(active))$$),
 (16, 'lm_heartbeat(x, other''s token)', $$SELECT 'ok' FROM agentmesh.lm_heartbeat(:x(active), :o(active))$$),
 (17, 'lm_verify_credential(x''s token)', $$SELECT CASE WHEN agentmesh.lm_verify_credential(:t(active)) IS NULL THEN 'none' ELSE 'row' END$$),
 (18, 'lm_get', $$SELECT CASE WHEN agentmesh.lm_get(:x(active)) IS NULL THEN 'none' ELSE 'row' END$$),
 (19, 'lm_list_by_state', $$SELECT CASE WHEN count(*) > 0 THEN 'row' ELSE 'none' END FROM agentmesh.lm_list_by_state('active') WHERE agent_id = :x(active)$$),
 (20, 'lm_list_by_owner', $$SELECT CASE WHEN count(*) > 0 THEN 'row' ELSE 'none' END FROM agentmesh.lm_list_by_owner('owner-%1$s@example.com')$$),
 (21, 'lm_summary', $$SELECT CASE WHEN agentmesh.lm_summary()->'by_owner' ? 'owner-%1$s@example.com' THEN 'row' ELSE 'none' END$$),
 (22, 'lm_audit_trail', $$SELECT CASE WHEN count(*) > 0 THEN 'row' ELSE 'none' END FROM agentmesh.lm_audit_trail(:x(active))$$),
 (23, 'lm_detect_orphans', $$SELECT CASE WHEN count(*) > 0 THEN 'row' ELSE 'none' END FROM agentmesh.lm_detect_orphans(now() + interval '30 days') WHERE agent_id = :x(active)$$),
 (24, 'lm_verify_audit(x)', $$SELECT CASE WHEN events_checked > 0 THEN 'row' ELSE 'none' END FROM agentmesh.lm_verify_audit(:x(active))$$),
 (30, 'SELECT agents', $$SELECT CASE WHEN count(*) > 0 THEN 'row' ELSE 'none' END FROM agentmesh.agents WHERE agent_id = :x(active)$$),
 (31, 'SELECT credentials', $$SELECT CASE WHEN count(*) > 0 THEN 'row' ELSE 'none' END FROM agentmesh.credentials WHERE agent_id = :x(active)$$),
 (32, 'SELECT audit_events', $$SELECT CASE WHEN count(*) > 0 THEN 'row' ELSE 'none' END FROM agentmesh.audit_events WHERE agent_id = :x(active)$$),
 (33, 'SELECT policies', $$SELECT CASE WHEN count(*) > 0 THEN 'row' ELSE 'none' END FROM agentmesh.policies$$);

-- The SQL of a call against team t's agents.
CREATE FUNCTION pg_temp.call_sql(sql text, t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	o text := CASE t WHEN 'a' THEN 'b' ELSE 'a' END;
	r record;
BEGIN
	sql := format(sql, t, o);
	FOR r IN SELECT * FROM ag LOOP
		IF r.team = t THEN
			sql := replace(sql, ':x(' || r.kind || ')', quote_literal(r.agent_id));
			sql := replace(sql, ':t(' || r.kind || ')', coalesce(quote_literal(r.token), 'NULL'));
		ELSE
			sql := replace(sql, ':o(' || r.kind || ')', coalesce(quote_literal(r.token), 'NULL'));
		END IF;
	END LOOP;
	RETURN sql;
END $$;
CREATE FUNCTION pg_temp.cell(login text, sql text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.try_as(login, pg_temp.call_sql(sql, 'a')) || ' / '
		|| pg_temp.try_as(login, pg_temp.call_sql(sql, 'b'))
$$;

-- The matrix: each cell is "on team A's agent / on team B's agent".
SELECT pg_temp.fp() AS fp0 \gset
SELECT c.label AS "function or table",
	   pg_temp.cell('regress_az_req_a', c.sql) AS req_a,
	   pg_temp.cell('regress_az_req_b', c.sql) AS req_b,
	   pg_temp.cell('regress_az_approver', c.sql) AS approver,
	   pg_temp.cell('regress_az_agent_a', c.sql) AS agent_a,
	   pg_temp.cell('regress_az_agent_b', c.sql) AS agent_b,
	   pg_temp.cell('regress_az_admin', c.sql) AS admin,
	   pg_temp.cell('regress_az_auditor', c.sql) AS auditor
  FROM calls c ORDER BY c.i;
SELECT pg_temp.fp() = :'fp0' AS nothing_changed_by_the_grid;

-- An invisible agent is an unknown one: the same SQLSTATE and the same
-- message as for an id that does not exist, for every write a team may do.
SELECT agent_id AS act_a FROM ag WHERE team = 'a' AND kind = 'active' \gset
SELECT agent_id AS prov_a FROM ag WHERE team = 'a' AND kind = 'provisioned' \gset
SELECT token AS tok_a FROM ag WHERE team = 'a' AND kind = 'active' \gset
SELECT agent_id AS act_b FROM ag WHERE team = 'b' AND kind = 'active' \gset
SELECT token AS tok_b FROM ag WHERE team = 'b' AND kind = 'active' \gset
SELECT agent_id AS sus_a FROM ag WHERE team = 'a' AND kind = 'suspended' \gset
CREATE FUNCTION pg_temp.msg_as(login text, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	res text;
BEGIN
	BEGIN
		EXECUTE format('SET LOCAL SESSION AUTHORIZATION %I', login);
		BEGIN
			EXECUTE sql;
			res := 'ok';
		EXCEPTION WHEN OTHERS THEN
			res := SQLSTATE || ' ' || SQLERRM;
		END;
		RAISE EXCEPTION USING ERRCODE = 'ZZ999';
	EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
		NULL;
	END;
	RETURN res;
END $$;
SELECT f AS function,
	   replace(pg_temp.msg_as('regress_az_req_b', format('SELECT agentmesh.%s(%L%s)', f, :'act_a', extra)), :'act_a', 'ID')
	 = replace(pg_temp.msg_as('regress_az_req_b', format('SELECT agentmesh.%s(%L%s)', f, 'agent:no-such-agent', extra)),
			   'agent:no-such-agent', 'ID') AS same_as_unknown,
	   replace(pg_temp.msg_as('regress_az_req_b', format('SELECT agentmesh.%s(%L%s)', f, :'act_a', extra)), :'act_a', 'ID') AS refusal
  FROM (VALUES ('lm_activate', ''), ('lm_rotate_credentials', ''), ('lm_revoke_credentials', ', ''r'''),
			   ('lm_suspend', ''), ('lm_decommission', '')) v(f, extra);
-- and for an agent login's heartbeat: no token, a wrong one, another
-- agent's, an unknown agent, a suspended agent: one message
SELECT pg_temp.msg_as('regress_az_agent_b', format('SELECT agentmesh.lm_heartbeat(%L)', :'act_a')) AS no_token,
	   pg_temp.msg_as('regress_az_agent_b', format('SELECT agentmesh.lm_heartbeat(%L, %L)', :'act_a', 'amk_' || repeat('0', 72))) AS wrong_token,
	   pg_temp.msg_as('regress_az_agent_b', format('SELECT agentmesh.lm_heartbeat(%L, %L)', :'act_a', :'tok_b'))
	 = pg_temp.msg_as('regress_az_agent_b', format('SELECT agentmesh.lm_heartbeat(%L)', :'act_a')) AS other_token_same,
	   pg_temp.msg_as('regress_az_agent_b', 'SELECT agentmesh.lm_heartbeat(''agent:no-such-agent'')')
	 = pg_temp.msg_as('regress_az_agent_b', format('SELECT agentmesh.lm_heartbeat(%L)', :'act_a')) AS unknown_same,
	   pg_temp.msg_as('regress_az_agent_b', format('SELECT agentmesh.lm_heartbeat(%L)', :'sus_a'))
	 = pg_temp.msg_as('regress_az_agent_b', format('SELECT agentmesh.lm_heartbeat(%L)', :'act_a')) AS suspended_same;

-- ----------------------------------------------------------------------
-- The attacks of issue 10's "Why", each at top level, each refused with
-- nothing changed.
-- ----------------------------------------------------------------------
-- (SQLSTATEs only: the messages name generated agent ids; they were shown above)
\set VERBOSITY sqlstate
SELECT pg_temp.fp() AS fp1 \gset

-- 1. Another team's requester takes over an agent: rotate, activate,
--    revoke, suspend, decommission are 42704, as for an unknown id.
SET SESSION AUTHORIZATION regress_az_req_b;
SELECT token FROM agentmesh.lm_rotate_credentials(:'act_a');
SELECT token FROM agentmesh.lm_activate(:'prov_a');
SELECT state FROM agentmesh.lm_suspend(:'act_a');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() = :'fp1' AS unchanged, agentmesh.lm_verify_credential(:'tok_a') = :'act_a' AS token_still_verifies;
-- ... also after an admin revoked the agent's credential: nobody outside
-- the team mints a new one
SELECT state FROM agentmesh.lm_revoke_credentials(:'act_a', 'leaked');
SELECT pg_temp.fp() AS fp1 \gset
SET SESSION AUTHORIZATION regress_az_req_b;
SELECT token FROM agentmesh.lm_rotate_credentials(:'act_a');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() = :'fp1' AS unchanged;
-- the team itself may rotate it (and the audit row names the login)
SET SESSION AUTHORIZATION regress_az_req_a;
SELECT token AS tok_a FROM agentmesh.lm_rotate_credentials(:'act_a', 'req-a') \gset
RESET SESSION AUTHORIZATION;
SELECT event_type, actor, db_user FROM agentmesh.audit_events
 WHERE agent_id = :'act_a' ORDER BY seq DESC LIMIT 1;

-- 2. Cross-team reads: plain SELECT, lm_get, lm_list_*, lm_summary show
--    team B's login nothing of team A.
SET SESSION AUTHORIZATION regress_az_req_b;
SELECT count(*) AS a_agents_seen FROM agentmesh.agents WHERE team = 'regress_az_team_a';
SELECT count(*) AS a_credentials_seen FROM agentmesh.credentials c
 WHERE c.agent_id IN (SELECT agent_id FROM ag WHERE team = 'a');
SELECT agentmesh.lm_get(:'act_a') IS NULL AS lm_get_none;
SELECT count(*) AS listed FROM agentmesh.lm_list_by_owner('owner-a@example.com');
SELECT count(*) FILTER (WHERE team = 'regress_az_team_a') AS a_listed, count(*) AS b_listed
  FROM agentmesh.lm_list_by_state('active');
SELECT agentmesh.lm_summary();
SELECT count(*) AS own_agents_seen FROM agentmesh.agents;
RESET SESSION AUTHORIZATION;
-- row-level security is on for both tables, not forced: their owner (the
-- superuser that created the extension) is exempt, and the lm_* functions,
-- which read them as the owner, apply the same predicate themselves
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
 WHERE oid IN ('agentmesh.agents'::regclass, 'agentmesh.credentials'::regclass) ORDER BY 1;
SELECT tablename, policyname, cmd, qual FROM pg_policies WHERE schemaname = 'agentmesh' ORDER BY 1;

-- 3. Four-eyes: a login that is both requester and approver cannot approve
--    its own request under require_distinct_approver, whatever actor it
--    claims; nor can another login that claims the requester's actor with
--    other case or spaces.
SET client_min_messages = warning;
CREATE ROLE regress_az_both LOGIN IN ROLE agentmesh_requester, agentmesh_approver, regress_az_team_a;
RESET client_min_messages;
INSERT INTO agentmesh.policies (name, require_distinct_approver) VALUES ('four-eyes', true);
SET SESSION AUTHORIZATION regress_az_both;
SELECT agent_id AS fe FROM agentmesh.lm_request('fe', 'o@example.com', actor => 'alice@example.com',
	policy => 'four-eyes') \gset
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() AS fp1 \gset
SET SESSION AUTHORIZATION regress_az_both;
SELECT state FROM agentmesh.lm_approve(:'fe', 'bob@example.com');
SELECT state FROM agentmesh.lm_approve(:'fe', 'alice@example.com ');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_az_approver;
SELECT state FROM agentmesh.lm_approve(:'fe', ' Alice@Example.COM ');
SELECT state FROM agentmesh.lm_approve(:'fe', 'ALICE@EXAMPLE.COM');
SELECT state FROM agentmesh.lm_approve(:'fe', U&'alice@example.com\00A0');
SELECT state FROM agentmesh.lm_approve(:'fe', U&'\3000alice@example.com');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() = :'fp1' AS unchanged, state FROM agentmesh.lm_get(:'fe');
-- another login with another actor may
SET SESSION AUTHORIZATION regress_az_approver;
SELECT state FROM agentmesh.lm_approve(:'fe', 'carol@example.com');
RESET SESSION AUTHORIZATION;

-- 4. Policy shopping: a requester names a policy without approval.
INSERT INTO agentmesh.policies (name, require_approval) VALUES ('no-approval', false);
INSERT INTO agentmesh.policies (name, require_approval, allowed_roles)
	VALUES ('team-b-fast', false, '{regress_az_team_b}');
INSERT INTO agentmesh.policies (name, allowed_roles) VALUES ('team-b-only', '{regress_az_team_b}');
SELECT pg_temp.fp() AS fp1 \gset
SET SESSION AUTHORIZATION regress_az_req_a;
SELECT state FROM agentmesh.lm_request('shop', 'o@example.com', policy => 'no-approval');
SELECT state FROM agentmesh.lm_request('shop', 'o@example.com', policy => 'team-b-fast');
SELECT state FROM agentmesh.lm_request('shop', 'o@example.com', policy => 'team-b-only');
SELECT state FROM agentmesh.lm_request('shop', 'o@example.com', policy => 'no-such-policy');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() = :'fp1' AS unchanged;
-- the allowed roles may, and 'default' works for every requester
SET SESSION AUTHORIZATION regress_az_req_b;
SELECT state, team FROM agentmesh.lm_request('fast', 'o@example.com', policy => 'team-b-fast');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_az_req_a;
SELECT state, team FROM agentmesh.lm_request('plain', 'o@example.com');
RESET SESSION AUTHORIZATION;
-- admins may use any policy
SELECT state FROM agentmesh.lm_request('admin-fast', 'o@example.com', policy => 'no-approval');

-- 5. approver_role: only its members approve or reject under the policy.
SET client_min_messages = warning;
CREATE ROLE regress_az_senior LOGIN IN ROLE agentmesh_approver;
RESET client_min_messages;
INSERT INTO agentmesh.policies (name, approver_role) VALUES ('senior-only', 'regress_az_senior');
SET SESSION AUTHORIZATION regress_az_req_a;
SELECT agent_id AS so FROM agentmesh.lm_request('so', 'o@example.com', policy => 'senior-only') \gset
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() AS fp1 \gset
SET SESSION AUTHORIZATION regress_az_approver;
SELECT state FROM agentmesh.lm_approve(:'so');
SELECT state FROM agentmesh.lm_reject(:'so', 'no');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_az_admin;
SELECT state FROM agentmesh.lm_approve(:'so');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() = :'fp1' AS unchanged;
SET SESSION AUTHORIZATION regress_az_senior;
SELECT state FROM agentmesh.lm_approve(:'so');
RESET SESSION AUTHORIZATION;

-- 6. Agents prove who they are: an agent login heartbeats only with the
--    agent's live token, under every policy ('default' included); every
--    failure is the same 42501 and changes nothing.
SELECT pg_temp.fp() AS fp1 \gset
SET SESSION AUTHORIZATION regress_az_agent_a;
SELECT agentmesh.lm_heartbeat(:'act_a');
SELECT agentmesh.lm_heartbeat(:'act_a', 'amk_' || repeat('0', 72));
SELECT agentmesh.lm_heartbeat(:'act_a', :'tok_b');
SELECT agentmesh.lm_heartbeat(:'sus_a');
SELECT agentmesh.lm_heartbeat('agent:no-such-agent');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() = :'fp1' AS unchanged;
-- the right token works; the result names the credential presented and
-- holds nothing of the row's descriptive columns
SET SESSION AUTHORIZATION regress_az_agent_a;
SELECT h.agent_id = :'act_a' AS same_agent, h.state,
	   h.credential_id IS NOT NULL AS credential_named,
	   h.credential_expires_at > h.last_heartbeat_at AS expires_later,
	   h.next_heartbeat_before - h.last_heartbeat_at AS heartbeat_interval
  FROM agentmesh.lm_heartbeat(:'act_a', :'tok_a') h;
RESET SESSION AUTHORIZATION;
SELECT h.agent_id = :'act_a' AS same_agent,
	   (SELECT credential_id FROM agentmesh.agents WHERE agent_id = :'act_a') = h.credential_id AS current_credential
  FROM agentmesh.lm_heartbeat(:'act_a', :'tok_a') h;
-- an admin needs no token under 'default' (and gets no credential fields)
SELECT state, credential_id IS NULL AS no_credential FROM agentmesh.lm_heartbeat(:'act_a');

-- 7. Teams: lm_request's team must be a role the login is a member of;
--    NULL is the login itself.
SELECT pg_temp.fp() AS fp1 \gset
SET SESSION AUTHORIZATION regress_az_req_a;
SELECT team FROM agentmesh.lm_request('t', 'o@example.com', team => 'regress_az_team_b');
SELECT team FROM agentmesh.lm_request('t', 'o@example.com', team => 'regress_az_no_such_role');
SELECT team FROM agentmesh.lm_request('t', 'o@example.com', team => U&'regress_az_team_a\200B');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.fp() = :'fp1' AS unchanged;
SET SESSION AUTHORIZATION regress_az_req_a;
SELECT agent_id AS own, team FROM agentmesh.lm_request('t', 'o@example.com') \gset
SELECT :'team' AS team_of_a_request_without_team;
RESET SESSION AUTHORIZATION;

-- 8. lm_change_team: admins only, audited, and the agent changes hands.
SELECT pg_temp.fp() AS fp1 \gset
SET SESSION AUTHORIZATION regress_az_req_a;
SELECT team FROM agentmesh.lm_change_team(:'act_a', 'regress_az_team_b');
RESET SESSION AUTHORIZATION;
SELECT team FROM agentmesh.lm_change_team(:'act_a', 'regress_az_no_such_role');
SELECT pg_temp.fp() = :'fp1' AS unchanged;
SET SESSION AUTHORIZATION regress_az_admin;
SELECT team FROM agentmesh.lm_change_team(:'act_a', 'regress_az_team_b', 'reorg');
RESET SESSION AUTHORIZATION;
SELECT event_type, actor, db_user, details FROM agentmesh.audit_events
 WHERE agent_id = :'act_a' ORDER BY seq DESC LIMIT 1;
SET SESSION AUTHORIZATION regress_az_req_a;
SELECT agentmesh.lm_get(:'act_a') IS NULL AS a_no_longer_sees_it;
SELECT state FROM agentmesh.lm_suspend(:'act_a');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_az_req_b;
SELECT state FROM agentmesh.lm_suspend(:'act_a');
RESET SESSION AUTHORIZATION;
-- a plain-SQL team change by the superuser is audited the same way
UPDATE agentmesh.agents SET team = 'regress_az_team_a' WHERE agent_id = :'act_a';
SELECT event_type, details FROM agentmesh.audit_events
 WHERE agent_id = :'act_a' ORDER BY seq DESC LIMIT 1;

-- 9. Policies name existing roles; refused values are not echoed.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT pg_temp.fp() AS fp1 \gset
INSERT INTO agentmesh.policies (name, allowed_roles) VALUES ('p1', '{regress_az_secret_no_role}');
INSERT INTO agentmesh.policies (name, approver_role) VALUES ('p2', 'regress_az_secret_no_role');
INSERT INTO agentmesh.policies (name, allowed_roles) VALUES ('p3', '{{regress_az_team_a},{regress_az_team_b}}');
INSERT INTO agentmesh.policies (name, allowed_roles) VALUES ('p4', ARRAY['regress_az_team_a', NULL]::name[]);
UPDATE agentmesh.policies SET approver_role = 'regress_az_secret_no_role' WHERE name = 'default';
SELECT pg_temp.fp() = :'fp1' AS unchanged;
-- a change of them is audited like any setting
UPDATE agentmesh.policies SET allowed_roles = '{agentmesh_requester}' WHERE name = 'no-approval';
SELECT details FROM agentmesh.audit_events WHERE policy = 'no-approval' ORDER BY seq DESC LIMIT 1;

\set VERBOSITY sqlstate
-- 10. Lists stream: a list larger than work_mem comes back whole.
SET work_mem = '64kB';
SELECT count(*) AS requested FROM generate_series(1, 600) i,
	LATERAL agentmesh.lm_request('bulk-' || i, 'bulk@example.com', purpose => repeat('p', 200));
SELECT count(*) AS listed, count(DISTINCT agent_id) AS distinct_ids
  FROM agentmesh.lm_list_by_owner('bulk@example.com');
SELECT count(*) AS pending_listed FROM agentmesh.lm_list_by_state('pending_approval');
RESET work_mem;

SELECT intact FROM agentmesh.lm_verify_audit();
-- the team_changed events hash under the canonical encoding, recomputed in
-- plain SQL (test/audit_hash.sql), like every other event
CREATE EXTENSION pgcrypto;
\i test/audit_hash.sql
SELECT event_type, count(*) AS events, count(*) FILTER (WHERE pg_temp.recompute(e) = e.hash) AS matching
  FROM agentmesh.audit_events e WHERE event_type IN ('team_changed', 'requested') GROUP BY 1 ORDER BY 1;

SET client_min_messages = warning;
DROP FUNCTION pg_temp.recompute(agentmesh.audit_events);
DROP EXTENSION pgcrypto;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
DROP ROLE regress_az_req_a, regress_az_req_b, regress_az_approver, regress_az_agent_a,
	regress_az_agent_b, regress_az_admin, regress_az_auditor, regress_az_both, regress_az_senior,
	regress_az_team_a, regress_az_team_b;
RESET client_min_messages;
