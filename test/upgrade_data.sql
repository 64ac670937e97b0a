--
-- Data for test/t/030_upgrade.pl, made through every operation of version 1.0
-- (run on CREATE EXTENSION agentmesh_lifecycle VERSION '1.0'): agents in
-- every state a committed transaction can leave (pending_approval,
-- provisioned, active, suspended, orphaned, decommissioned; the enum's
-- rotating_credentials and decommissioning are never committed, see the
-- README), approve and reject, activate, heartbeats (plain and audited,
-- with a required token), rotation, revocation, owner changes, reclaim,
-- plain-SQL INSERT and UPDATE of agents (state and descriptive columns),
-- policy INSERT and UPDATE, lm_check_and_rotate, and maintenance passes at
-- future as_of times that orphan, auto-decommission, record missed
-- heartbeats, rotate, issue and record expiry, and seal.
--
-- Agents are found by name (unique here).  The tokens the upgrade test needs
-- later are kept in public.upgrade_tokens.  Nothing time-, id-, hash- or
-- token-valued is printed.
--
\set ON_ERROR_STOP 1
\set VERBOSITY terse

CREATE TABLE public.upgrade_tokens (name text PRIMARY KEY, token text NOT NULL);

-- A second login approves under require_distinct_approver: from 1.1 on the
-- requester's and the approver's session users must differ (issue 10).
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_approver') THEN
		CREATE ROLE upgrade_approver LOGIN;
	END IF;
END $$;
GRANT agentmesh_approver TO upgrade_approver;

-- policies: INSERT and UPDATE (policy_changed events)
UPDATE agentmesh.policies SET max_inactive_days = 60 WHERE name = 'default';
INSERT INTO agentmesh.policies (name, require_approval, require_owner, heartbeat_interval,
		orphan_threshold, max_inactive_days, max_credential_ttl, rotation_overlap,
		auto_rotate, auto_decommission)
VALUES
	-- orphaned by the pass (never a heartbeat), then auto-decommissioned
	('fast', false, true, '1 minute', '1 hour', 1, '1 hour', '10 minutes', true, true),
	-- rotated by the pass, heartbeats missed
	('rot', false, true, '1 minute', '30 days', 90, '1 hour', '10 minutes', true, false),
	-- expiry recorded by the pass, never rotated
	('norot', false, true, '1 day', '30 days', 90, '1 hour', '0', false, false),
	-- long-lived: the agents the upgrade test keeps using
	('stable', true, true, '1 day', '30 days', 90, '366 days', '1 hour', true, false),
	-- no owner needed: orphaned by the pass (no_owner)
	('ownerless', false, false, '1 day', '30 days', 90, '366 days', '1 hour', true, false);
INSERT INTO agentmesh.policies (name, require_approval, heartbeat_interval, orphan_threshold,
		max_credential_ttl, audit_heartbeats, heartbeat_requires_token)
VALUES ('audited', false, '1 day', '30 days', '366 days', true, true);
UPDATE agentmesh.policies SET require_distinct_approver = true WHERE name = 'stable';
UPDATE agentmesh.policies SET revoke_on_decommission = false WHERE name = 'norot';

-- pending_approval, and a plain-SQL INSERT (its id is ours)
SELECT agent_id AS pending FROM agentmesh.lm_request('pending', 'alice', 'waits',
		actor => 'alice', tags => '{"env": "dev"}') \gset
INSERT INTO agentmesh.agents (agent_id, name, owner, state)
VALUES ('agent:sql-inserted', 'sql-inserted', 'zoe', 'pending_approval');
-- reject: pending_approval -> decommissioned
SELECT agent_id AS rejected FROM agentmesh.lm_request('rejected', 'alice', actor => 'alice') \gset
SELECT state FROM agentmesh.lm_reject(:'rejected', 'no business case', 'bob') \gset
-- approve: provisioned; owner changed while provisioned
SELECT agent_id AS prov FROM agentmesh.lm_request('provisioned', 'alice', actor => 'alice') \gset
SELECT state FROM agentmesh.lm_approve(:'prov', 'bob') \gset
SELECT state FROM agentmesh.lm_change_owner(:'prov', 'carol', 'bob') \gset
-- requested under a policy without approval: provisioned at once
SELECT agent_id AS prov2 FROM agentmesh.lm_request('provisioned-auto', 'alice', policy => 'rot') \gset

-- default-policy agents that get activated
CREATE TEMP TABLE setup (name text PRIMARY KEY);
INSERT INTO setup VALUES ('active'), ('suspended'), ('resumed'), ('orphan-manual'),
	('reclaimed'), ('retired-active'), ('retired-suspended'), ('retired-orphaned'),
	('sql-state'), ('sql-attributes'), ('revoked'), ('revoked-late'), ('rotated'),
	('owner-changed');
SELECT count(*) AS activated FROM (
	SELECT agentmesh.lm_activate(
		(agentmesh.lm_approve(
			(agentmesh.lm_request(s.name, 'dave', 'upgrade data', actor => 'dave')).agent_id,
			'bob')).agent_id, 'dave')
	  FROM setup s ORDER BY s.name) x \gset
SELECT count(*) AS heartbeats FROM (
	SELECT agentmesh.lm_heartbeat(a.agent_id) FROM agentmesh.agents a
	 WHERE a.name IN ('active', 'suspended', 'resumed', 'orphan-manual', 'rotated')
	 ORDER BY a.name) x \gset
SELECT agentmesh.lm_heartbeat(agent_id) IS NOT NULL AS ok FROM agentmesh.agents WHERE name = 'active' \gset

SELECT agent_id AS susp FROM agentmesh.agents WHERE name = 'suspended' \gset
SELECT state FROM agentmesh.lm_suspend(:'susp', 'incident 42', 'erin') \gset
SELECT state FROM agentmesh.lm_heartbeat(:'susp') \gset

SELECT agent_id AS resumed FROM agentmesh.agents WHERE name = 'resumed' \gset
SELECT state FROM agentmesh.lm_suspend(:'resumed', 'pause', 'erin') \gset
SELECT state FROM agentmesh.lm_resume(:'resumed', 'erin') \gset

SELECT agent_id AS om FROM agentmesh.agents WHERE name = 'orphan-manual' \gset
SELECT state FROM agentmesh.lm_mark_orphaned(:'om', 'ops') \gset
SELECT state FROM agentmesh.lm_heartbeat(:'om') \gset

SELECT agent_id AS recl FROM agentmesh.agents WHERE name = 'reclaimed' \gset
SELECT state FROM agentmesh.lm_mark_orphaned(:'recl', 'ops') \gset
SELECT state FROM agentmesh.lm_reclaim(:'recl', 'frank', 'ops') \gset

SELECT agent_id AS ra FROM agentmesh.agents WHERE name = 'retired-active' \gset
SELECT state FROM agentmesh.lm_decommission(:'ra', 'project ended', 'ops') \gset
SELECT agent_id AS rs FROM agentmesh.agents WHERE name = 'retired-suspended' \gset
SELECT state FROM agentmesh.lm_suspend(:'rs', 'incident', 'ops') \gset
SELECT state FROM agentmesh.lm_decommission(:'rs', 'not coming back', 'ops') \gset
SELECT agent_id AS ro FROM agentmesh.agents WHERE name = 'retired-orphaned' \gset
SELECT state FROM agentmesh.lm_mark_orphaned(:'ro', 'ops') \gset
SELECT state FROM agentmesh.lm_decommission(:'ro', 'nobody claimed it', 'ops') \gset
SELECT state FROM agentmesh.lm_decommission(:'prov2', 'never used', 'ops') \gset

-- plain SQL: state edges (suspend, resume) and descriptive columns
UPDATE agentmesh.agents SET state = 'suspended' WHERE name = 'sql-state';
UPDATE agentmesh.agents SET state = 'active' WHERE name = 'sql-state';
UPDATE agentmesh.agents SET purpose = 'changed by SQL', tags = '{"team": "blue"}',
	agent_type = 'assistant' WHERE name = 'sql-attributes';

-- credentials: revoke (active without a credential: issued later), rotate twice
SELECT agent_id AS rev FROM agentmesh.agents WHERE name = 'revoked' \gset
SELECT credential_id IS NULL AS no_credential
  FROM agentmesh.lm_revoke_credentials(:'rev', 'key leaked', 'ops') \gset
SELECT agent_id AS rot FROM agentmesh.agents WHERE name = 'rotated' \gset
SELECT state FROM agentmesh.lm_rotate_credentials(:'rot', 'dave') \gset
SELECT state FROM agentmesh.lm_rotate_credentials(:'rot', 'dave') \gset
SELECT agent_id AS oc FROM agentmesh.agents WHERE name = 'owner-changed' \gset
SELECT state FROM agentmesh.lm_change_owner(:'oc', 'grace', 'ops') \gset

-- the long-lived agents: distinct approver, rotated once, tokens kept
SELECT agent_id AS s1 FROM agentmesh.lm_request('stable-1', 'heidi', 'kept across the upgrade',
		actor => 'heidi', policy => 'stable') \gset
SET SESSION AUTHORIZATION upgrade_approver;
SELECT state FROM agentmesh.lm_approve(:'s1', 'ivan') \gset
RESET SESSION AUTHORIZATION;
INSERT INTO public.upgrade_tokens
	SELECT 'stable-1 first', token FROM agentmesh.lm_activate(:'s1', 'heidi');
SELECT state FROM agentmesh.lm_heartbeat(:'s1') \gset
INSERT INTO public.upgrade_tokens
	SELECT 'stable-1', token FROM agentmesh.lm_rotate_credentials(:'s1', 'heidi');
SELECT agent_id AS s2 FROM agentmesh.lm_request('stable-2', 'heidi', actor => 'heidi',
		policy => 'stable') \gset
SET SESSION AUTHORIZATION upgrade_approver;
SELECT state FROM agentmesh.lm_approve(:'s2', 'ivan') \gset
RESET SESSION AUTHORIZATION;
INSERT INTO public.upgrade_tokens
	SELECT 'stable-2', token FROM agentmesh.lm_activate(:'s2', 'heidi');

-- audited heartbeats that need the agent's token
SELECT agent_id AS au FROM agentmesh.lm_request('audited', 'judy', policy => 'audited') \gset
INSERT INTO public.upgrade_tokens
	SELECT 'audited', token FROM agentmesh.lm_activate(:'au');
SELECT heartbeat_count FROM agentmesh.lm_heartbeat(:'au',
	(SELECT token FROM public.upgrade_tokens WHERE name = 'audited')) \gset
SELECT heartbeat_count FROM agentmesh.lm_heartbeat(:'au',
	(SELECT token FROM public.upgrade_tokens WHERE name = 'audited')) \gset

-- agents the maintenance passes act on
SELECT agent_id AS f FROM agentmesh.lm_request('fast', 'kate', policy => 'fast') \gset
SELECT state FROM agentmesh.lm_activate(:'f') \gset
SELECT agent_id AS r FROM agentmesh.lm_request('rot', 'kate', policy => 'rot') \gset
SELECT state FROM agentmesh.lm_activate(:'r') \gset
SELECT agent_id AS n FROM agentmesh.lm_request('norot', 'kate', policy => 'norot') \gset
SELECT state FROM agentmesh.lm_activate(:'n') \gset
SELECT agent_id AS o FROM agentmesh.lm_request('ownerless', NULL, policy => 'ownerless') \gset
SELECT state FROM agentmesh.lm_activate(:'o') \gset

SELECT now() AS t0 \gset

-- the read functions
SELECT 'list_by_state orphaned' AS what, string_agg(name, ',' ORDER BY name)
  FROM agentmesh.lm_list_by_state('orphaned');
SELECT 'list_by_owner heidi' AS what, string_agg(name, ',' ORDER BY name)
  FROM agentmesh.lm_list_by_owner('heidi');
SELECT 'get' AS what, state, owner, purpose FROM agentmesh.lm_get(:'s1');
SELECT 'summary' AS what, agentmesh.lm_summary() - 'by_owner';
SELECT 'transitions' AS what, count(*) FROM agentmesh.lm_transitions();
SELECT 'verify_credential' AS what, count(*) FILTER (WHERE agentmesh.lm_verify_credential(token) IS NOT NULL)
  FROM public.upgrade_tokens;
SELECT 'trail stable-1' AS what, string_agg(event_type::text, ',' ORDER BY seq)
  FROM agentmesh.lm_audit_trail(:'s1');
SELECT 'workers' AS what, count(*) FROM agentmesh.worker_status;
SELECT 'orphans +2h' AS what, name, reason_code
  FROM agentmesh.lm_detect_orphans(:'t0'::timestamptz + interval '2 hours')
 ORDER BY name, reason_code;

-- lm_check_and_rotate: 'rot' is inside its rotation window, 'revoked' has no credential
SELECT 'check_and_rotate +55min' AS what, action, string_agg(a.name, ',' ORDER BY a.name)
  FROM agentmesh.lm_check_and_rotate(:'t0'::timestamptz + interval '55 minutes') c
  JOIN agentmesh.agents a USING (agent_id)
 WHERE c.action <> 'ok' GROUP BY action ORDER BY action;

-- revoked after that: the pass issues its next credential
SELECT credential_id IS NULL AS no_credential
  FROM agentmesh.lm_revoke_credentials(
	(SELECT agent_id FROM agentmesh.agents WHERE name = 'revoked-late'), 'key lost', 'ops') \gset

-- maintenance passes at future times, then one now that seals them
SELECT 'maintenance +2h' AS what, orphaned, decommissioned, heartbeats_missed, rotated, issued,
	   expired, seals > 0 AS sealed
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '2 hours');
SELECT 'maintenance +3d' AS what, orphaned, decommissioned, heartbeats_missed, rotated, issued,
	   expired, seals > 0 AS sealed
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '3 days', 2);
SELECT 'maintenance now' AS what, seals > 0 AS sealed FROM agentmesh.lm_run_maintenance();

SELECT 'agent' AS what, name, state, owner, policy FROM agentmesh.agents ORDER BY name;
SELECT 'maintenance events' AS what, a.name, string_agg(e.event_type::text, ',' ORDER BY e.seq)
  FROM agentmesh.audit_events e JOIN agentmesh.agents a USING (agent_id)
 WHERE e.actor = 'agentmesh-maintenance'
 GROUP BY a.name ORDER BY a.name;
SELECT 'policy events' AS what, policy, count(*)
  FROM agentmesh.audit_events WHERE policy IS NOT NULL GROUP BY policy ORDER BY policy;
SELECT 'verify' AS what, intact, problem FROM agentmesh.lm_verify_audit();
