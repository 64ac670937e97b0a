--
-- core_heartbeat: lm_heartbeat() updates the agent row without the planner
-- (agent_row.c); these are the things an UPDATE statement would do for it
-- and that path must do too: see earlier changes of the same transaction and
-- statement, fire row triggers (with the updated columns declared), keep
-- every index right when the update is not HOT, check bigint overflow, and
-- write exactly one audited heartbeat event when the policy asks for it.
-- No timestamp, id or token is printed.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY sqlstate

\i test/fingerprint.sql

SELECT agent_id AS a FROM agentmesh.lm_request('hb-bot', 'hana@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'a');
SELECT state FROM agentmesh.lm_activate(:'a');

-- lm_heartbeat() returns agentmesh.heartbeat_result: what the agent may know
-- about itself; it agrees with the stored row
SELECT h.agent_id = :'a' AS same_agent, h.state, h.last_heartbeat_at = now() AS stamped_now,
       h.next_heartbeat_before - h.last_heartbeat_at AS heartbeat_interval,
       h.credential_id IS NULL AND h.credential_expires_at IS NULL AS no_token_no_credential,
       h.last_heartbeat_at AS hb_at
  FROM agentmesh.lm_heartbeat(:'a') h \gset
SELECT :'same_agent' AS same_agent, :'state' AS state, :'stamped_now' AS stamped_now,
       :'heartbeat_interval' AS heartbeat_interval, :'no_token_no_credential' AS no_token_no_credential,
       heartbeat_count, last_heartbeat = :'hb_at' AS stored_as_returned
  FROM agentmesh.agents a WHERE a.agent_id = :'a';
SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) AS heartbeat_result
  FROM pg_attribute WHERE attrelid = 'agentmesh.heartbeat_result'::regclass AND attnum > 0;
-- the row it updated, for the checks below
CREATE FUNCTION pg_temp.hb(a text, t text DEFAULT NULL)
	RETURNS TABLE (state text, heartbeat_count int8, last_heartbeat timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM agentmesh.lm_heartbeat(a, t);
	RETURN QUERY SELECT g.state::text, g.heartbeat_count, g.last_heartbeat
		FROM agentmesh.agents g WHERE g.agent_id = a;
END $$;

-- two heartbeats in one statement, and in one transaction: each sees the last
SELECT (agentmesh.lm_heartbeat(:'a')).state AS first,
       (agentmesh.lm_heartbeat(:'a')).state AS second;
SELECT heartbeat_count FROM agentmesh.agents WHERE agent_id = :'a';
BEGIN;
SELECT heartbeat_count FROM pg_temp.hb(:'a');
SELECT state FROM agentmesh.lm_suspend(:'a', 'maintenance window');
SELECT state, heartbeat_count FROM pg_temp.hb(:'a');
SELECT state FROM agentmesh.lm_resume(:'a');
COMMIT;
SELECT state, heartbeat_count FROM agentmesh.agents WHERE agent_id = :'a';

-- a heartbeat after a rolled-back one counts once
BEGIN;
SELECT heartbeat_count FROM pg_temp.hb(:'a');
ROLLBACK;
SELECT heartbeat_count FROM pg_temp.hb(:'a');

-- row triggers fire, and a column-specific one sees the columns a heartbeat sets
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE '% trigger: % -> %', TG_NAME, OLD.heartbeat_count, NEW.heartbeat_count;
	RETURN NEW;
END $$;
CREATE TRIGGER t_any BEFORE UPDATE ON agentmesh.agents
	FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
CREATE TRIGGER t_count AFTER UPDATE OF heartbeat_count ON agentmesh.agents
	FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
CREATE TRIGGER t_owner BEFORE UPDATE OF owner ON agentmesh.agents
	FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
\set VERBOSITY terse
SELECT heartbeat_count FROM pg_temp.hb(:'a');
\set VERBOSITY sqlstate
DROP TRIGGER t_any ON agentmesh.agents;
DROP TRIGGER t_count ON agentmesh.agents;
DROP TRIGGER t_owner ON agentmesh.agents;

-- a BEFORE trigger that skips the row: 09000, nothing is updated
CREATE FUNCTION pg_temp.skip() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RETURN NULL; END $$;
CREATE TRIGGER t_skip BEFORE UPDATE ON agentmesh.agents
	FOR EACH ROW EXECUTE FUNCTION pg_temp.skip();
SELECT pg_temp.fp() AS before_skip \gset
SELECT heartbeat_count FROM pg_temp.hb(:'a');
SELECT pg_temp.fp() = :'before_skip' AS unchanged;
DROP TRIGGER t_skip ON agentmesh.agents;

-- not HOT: with an index on heartbeat_count every heartbeat inserts an index
-- entry, found by an index scan afterwards
CREATE INDEX agents_hb_count_test ON agentmesh.agents (heartbeat_count);
SELECT heartbeat_count AS n FROM pg_temp.hb(:'a') \gset
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT agent_id FROM agentmesh.agents WHERE heartbeat_count = 12;
SELECT count(*) AS found_by_new_count FROM agentmesh.agents
 WHERE heartbeat_count = :n AND agent_id = :'a';
SELECT count(*) AS found_by_old_count FROM agentmesh.agents
 WHERE heartbeat_count = :n - 1 AND agent_id = :'a';
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX agentmesh.agents_hb_count_test;

-- bigint overflow: 22003, nothing changed
UPDATE agentmesh.agents SET heartbeat_count = 9223372036854775807 WHERE agent_id = :'a';
SELECT pg_temp.fp() AS before_overflow \gset
SELECT heartbeat_count FROM pg_temp.hb(:'a');
SELECT pg_temp.fp() = :'before_overflow' AS unchanged;
UPDATE agentmesh.agents SET heartbeat_count = 20 WHERE agent_id = :'a';

-- audited: one heartbeat event per heartbeat, chained, by the session user
INSERT INTO agentmesh.policies (name, audit_heartbeats) VALUES ('audited', true);
UPDATE agentmesh.agents SET policy = 'audited' WHERE agent_id = :'a';
SELECT count(*) AS events_before FROM agentmesh.audit_events WHERE agent_id = :'a' \gset
SELECT heartbeat_count FROM pg_temp.hb(:'a');
SELECT heartbeat_count FROM pg_temp.hb(:'a');
SELECT e.event_type, e.actor = session_user AS by_session_user, e.seq - :events_before AS seq_after
  FROM agentmesh.audit_events e
 WHERE e.agent_id = :'a' ORDER BY e.seq OFFSET :events_before;
SELECT a.audit_seq = (SELECT max(seq) FROM agentmesh.audit_events e WHERE e.agent_id = a.agent_id) AS head_matches
  FROM agentmesh.agents a WHERE a.agent_id = :'a';

-- the credential fields are those of the token presented: inside a
-- rotation's overlap the old token and the new one each name their own
SELECT agent_id AS c FROM agentmesh.lm_request('cred-bot', 'cleo@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'c');
SELECT credential_id AS cred1, token AS tok1, credential_expires_at AS exp1
  FROM agentmesh.lm_activate(:'c') \gset
SELECT credential_id AS cred2, token AS tok2, credential_expires_at AS exp2
  FROM agentmesh.lm_rotate_credentials(:'c') \gset
SELECT credential_id = :'cred1' AS names_old,
       credential_expires_at = (SELECT expires_at FROM agentmesh.credentials
                                 WHERE credential_id = :'cred1') AS its_expiry,
       credential_expires_at < :'exp1' AS ends_with_the_overlap
  FROM agentmesh.lm_heartbeat(:'c', :'tok1');
SELECT credential_id = :'cred2' AS names_new, credential_expires_at = :'exp2' AS new_expiry
  FROM agentmesh.lm_heartbeat(:'c', :'tok2');
SELECT credential_id IS NULL AS none_without_token FROM agentmesh.lm_heartbeat(:'c');

-- unknown agent: 42704; wrong state: 55000; nothing changed
SELECT pg_temp.fp() AS before_bad \gset
SELECT * FROM agentmesh.lm_heartbeat('agt_no_such_agent');
SELECT agent_id AS p FROM agentmesh.lm_request('pending-bot', 'pia@example.com') \gset
SELECT pg_temp.fp() AS before_bad \gset
SELECT * FROM agentmesh.lm_heartbeat(:'p');
SELECT pg_temp.fp() = :'before_bad' AS unchanged;

SELECT intact FROM agentmesh.lm_verify_audit();
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
