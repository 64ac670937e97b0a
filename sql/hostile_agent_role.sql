--
-- hostile_agent_role: what a login that is a member of agentmesh_agent (the
-- role an agent process connects with) can and cannot do.
-- Proves: it cannot approve, reject, activate, rotate, suspend, decommission,
-- reclaim, revoke or change owners; cannot read agents, credentials or the
-- audit table, nor call lm_get/lm_audit_trail/lm_verify_audit; cannot write
-- any table; under a policy with heartbeat_requires_token it cannot
-- heartbeat another agent with its own token (42501).  It can heartbeat and
-- verify a token.  Nothing it attempted changed anything.
--
\set VERBOSITY sqlstate
CREATE EXTENSION agentmesh_lifecycle;
INSERT INTO agentmesh.policies (name, heartbeat_requires_token) VALUES ('tokened', true);
SELECT (agentmesh.lm_request('bot-a', 'alice@example.com', policy => 'tokened')).agent_id AS a \gset
SELECT (agentmesh.lm_request('bot-b', 'bob@example.com', policy => 'tokened')).agent_id AS b \gset
SELECT (agentmesh.lm_request('bot-c', 'carol@example.com')).agent_id AS c \gset
SELECT state FROM agentmesh.lm_approve(:'a');
SELECT state FROM agentmesh.lm_approve(:'b');
SELECT state FROM agentmesh.lm_approve(:'c');
SELECT token AS tok_a FROM agentmesh.lm_activate(:'a') \gset
SELECT token AS tok_b FROM agentmesh.lm_activate(:'b') \gset
SELECT count(*) AS events_before FROM agentmesh.audit_events \gset
CREATE TABLE snapshot AS SELECT * FROM agentmesh.agents;

-- every function the group role may execute: heartbeat and verify only
SELECT p.proname
  FROM pg_proc p
 WHERE p.pronamespace = 'agentmesh'::regnamespace
   AND has_function_privilege('agentmesh_agent', p.oid, 'EXECUTE')
 ORDER BY 1;
-- and every table privilege it holds: none
SELECT c.relname, priv
  FROM pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) priv
 WHERE c.relnamespace = 'agentmesh'::regnamespace AND c.relkind IN ('r', 'S', 'v')
   AND has_table_privilege('agentmesh_agent', c.oid, priv);

CREATE ROLE regress_agent_login LOGIN IN ROLE agentmesh_agent;
SET SESSION AUTHORIZATION regress_agent_login;
-- allowed
SELECT agentmesh.lm_verify_credential(:'tok_a') = :'a' AS own_token_verifies;
SELECT state, credential_id IS NOT NULL AS with_credential FROM agentmesh.lm_heartbeat(:'a', :'tok_a');
-- another agent's heartbeat with my token, or with none
SELECT agentmesh.lm_heartbeat(:'b', :'tok_a');
SELECT agentmesh.lm_heartbeat(:'b');
-- lifecycle operations
SELECT agentmesh.lm_request('evil', 'mallory@example.com');
SELECT agentmesh.lm_approve(:'c');
SELECT agentmesh.lm_approve(:'c', 'approver@example.com');
SELECT agentmesh.lm_reject(:'c');
SELECT agentmesh.lm_activate(:'c');
SELECT agentmesh.lm_rotate_credentials(:'b');
SELECT agentmesh.lm_suspend(:'b');
SELECT agentmesh.lm_resume(:'b');
SELECT agentmesh.lm_decommission(:'b');
SELECT agentmesh.lm_decommission(:'a', 'I quit');
SELECT agentmesh.lm_change_owner(:'b', 'mallory@example.com');
SELECT agentmesh.lm_mark_orphaned(:'b');
SELECT agentmesh.lm_reclaim(:'b', 'mallory@example.com');
SELECT agentmesh.lm_revoke_credentials(:'b', 'mine now');
SELECT agentmesh.lm_check_and_rotate();
-- reading other agents, their credentials, the audit trail
SELECT agentmesh.lm_get(:'b');
SELECT agentmesh.lm_list_by_owner('bob@example.com');
SELECT agentmesh.lm_list_by_state('active');
SELECT agentmesh.lm_summary();
SELECT agentmesh.lm_detect_orphans();
SELECT agentmesh.lm_audit_trail(:'b');
SELECT agentmesh.lm_verify_audit();
SELECT count(*) FROM agentmesh.agents;
SELECT token_hash FROM agentmesh.credentials;
SELECT count(*) FROM agentmesh.audit_events;
SELECT count(*) FROM agentmesh.policies;
-- writing
UPDATE agentmesh.agents SET state = 'decommissioned';
UPDATE agentmesh.policies SET heartbeat_requires_token = false;
INSERT INTO agentmesh.audit_events (agent_id, seq, event_type, occurred_at, actor, db_user, hash)
	VALUES (:'b', 99, 'approved', now(), 'x', 'x', '\x00');
DELETE FROM agentmesh.credentials;
SELECT nextval('agentmesh.audit_events_event_id_seq');
RESET SESSION AUTHORIZATION;

-- nothing changed except agent A's one heartbeat
SELECT s.name, a.state = s.state AS same_state,
       a.heartbeat_count - s.heartbeat_count AS new_heartbeats,
       a.owner IS NOT DISTINCT FROM s.owner AS same_owner,
       a.credential_id IS NOT DISTINCT FROM s.credential_id AS same_credential
  FROM agentmesh.agents a JOIN snapshot s USING (agent_id) ORDER BY s.name;
SELECT count(*) - :events_before AS new_audit_events FROM agentmesh.audit_events;
SELECT agentmesh.lm_verify_credential(:'tok_b') = :'b' AS b_token_still_verifies;
SELECT intact FROM agentmesh.lm_verify_audit();

DROP TABLE snapshot;
DROP ROLE regress_agent_login;
SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
RESET client_min_messages;
