--
-- audit_completeness: lm_verify_audit_problems() reports every problem a
-- superuser can plant with the triggers disabled, one row each, several at
-- once all of them; lm_verify_audit() reports the first.  Each plant is
-- rolled back.  Subjects are shown by alias, events by their subject's seq.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse
SET client_min_messages = warning;

INSERT INTO agentmesh.policies (name) VALUES ('p1');
SELECT (agentmesh.lm_request('a1', 'o', policy => 'p1')).agent_id AS a1 \gset
SELECT (agentmesh.lm_request('a2', 'o', policy => 'p1')).agent_id AS a2 \gset
SELECT state FROM agentmesh.lm_approve(:'a1');
SELECT state FROM agentmesh.lm_approve(:'a2');
SELECT seals FROM agentmesh.lm_run_maintenance();
SELECT (agentmesh.lm_request('a3', 'o', policy => 'p1')).agent_id AS a3 \gset
SELECT state FROM agentmesh.lm_approve(:'a3');
SELECT seals FROM agentmesh.lm_run_maintenance();
-- a4's events stay unsealed
SELECT (agentmesh.lm_request('a4', 'o', policy => 'p1')).agent_id AS a4 \gset
SELECT state FROM agentmesh.lm_approve(:'a4');
UPDATE agentmesh.agents SET purpose = 'changed by sql' WHERE agent_id = :'a4';

CREATE TEMP TABLE alias (subject text PRIMARY KEY, name text);
INSERT INTO alias VALUES ('agent ' || :'a1', 'A1'), ('agent ' || :'a2', 'A2'),
	('agent ' || :'a3', 'A3'), ('agent ' || :'a4', 'A4'), ('policy p1', 'P1'),
	('policy default', 'DEFAULT');
INSERT INTO alias SELECT 'seal ' || seal_id, 'SEAL' || row_number() OVER (ORDER BY seal_id)
  FROM agentmesh.audit_seals;
CREATE TEMP VIEW problems AS
SELECT p.problem_class, COALESCE(a.name, p.subject) AS subject,
	   CASE WHEN p.first_event IS NULL THEN NULL
			ELSE COALESCE((SELECT COALESCE(x.name, 'agent') || ' seq ' || e.seq
							 FROM agentmesh.audit_events e
							 LEFT JOIN alias x ON x.subject = COALESCE('agent ' || e.agent_id, 'policy ' || e.policy)
							WHERE e.event_id = p.first_event), 'gone') END AS first_event,
	   p.detail
  FROM agentmesh.lm_verify_audit_problems() p LEFT JOIN alias a ON a.subject = p.subject;

-- intact: no problem, and the summary says so
SELECT * FROM problems;
SELECT intact, problem FROM agentmesh.lm_verify_audit();

ALTER TABLE agentmesh.audit_events DISABLE TRIGGER audit_events_immutable;
ALTER TABLE agentmesh.agents DISABLE TRIGGER agents_guard;
ALTER TABLE agentmesh.policies DISABLE TRIGGER policies_guard;
ALTER TABLE agentmesh.audit_seals DISABLE TRIGGER audit_seals_immutable;
ALTER TABLE agentmesh.audit_tree DISABLE TRIGGER audit_tree_immutable;
ALTER TABLE agentmesh.audit_checkpoints DISABLE TRIGGER audit_checkpoints_immutable;

-- an agent with fewer events than its audit_seq (its last, unsealed event deleted)
BEGIN;
DELETE FROM agentmesh.audit_events WHERE agent_id = :'a4' AND seq = 3;
SELECT * FROM problems;
ROLLBACK;

-- a gap in a chain (an unsealed event in the middle deleted)
BEGIN;
DELETE FROM agentmesh.audit_events WHERE agent_id = :'a4' AND seq = 2;
SELECT * FROM problems;
ROLLBACK;

-- an event changed (its stored hash, and so its seal, unchanged)
BEGIN;
UPDATE agentmesh.audit_events SET actor = 'mallory' WHERE agent_id = :'a1' AND seq = 1;
SELECT * FROM problems;
ROLLBACK;

-- a forged chain head on a policy
BEGIN;
UPDATE agentmesh.policies SET audit_seq = audit_seq + 1 WHERE name = 'p1';
SELECT * FROM problems;
ROLLBACK;

-- events whose agent row is gone (and its credentials' agent)
BEGIN;
DELETE FROM agentmesh.agents WHERE agent_id = :'a4';
SELECT * FROM problems;
ROLLBACK;

-- a seal whose events vanished together with its own row (the first seal):
-- the next seal's range no longer continues, the chains lost their start
BEGIN;
DELETE FROM agentmesh.audit_events e USING agentmesh.audit_seals s
 WHERE s.seal_id = (SELECT min(seal_id) FROM agentmesh.audit_seals)
   AND e.xact_id >= s.xmin_from AND e.xact_id < s.xmin_to;
DELETE FROM agentmesh.audit_checkpoints WHERE seal_id = (SELECT min(seal_id) FROM agentmesh.audit_seals);
DELETE FROM agentmesh.audit_seals WHERE seal_id = (SELECT min(seal_id) FROM agentmesh.audit_seals);
SELECT problem_class, subject, first_event FROM problems ORDER BY 1, 2, 3;
ROLLBACK;

-- the last seal deleted with its events and its checkpoint: heads do not match
BEGIN;
DELETE FROM agentmesh.audit_events e USING agentmesh.audit_seals s
 WHERE s.seal_id = (SELECT max(seal_id) FROM agentmesh.audit_seals)
   AND e.xact_id >= s.xmin_from AND e.xact_id < s.xmin_to;
DELETE FROM agentmesh.audit_checkpoints WHERE seal_id = (SELECT max(seal_id) FROM agentmesh.audit_seals);
DELETE FROM agentmesh.audit_seals WHERE seal_id = (SELECT max(seal_id) FROM agentmesh.audit_seals);
SELECT problem_class, subject, first_event FROM problems ORDER BY 1, 2, 3;
ROLLBACK;

-- a sealed event inserted into a sealed range (a copy with a new id)
BEGIN;
INSERT INTO agentmesh.audit_events (agent_id, policy, seq, event_type, occurred_at, actor,
		db_user, previous_state, new_state, details, prev_hash, hash, xact_id)
SELECT NULL, 'p1', 99, event_type, occurred_at, actor, db_user, previous_state, new_state,
	   details, prev_hash, hash, xact_id
  FROM agentmesh.audit_events WHERE agent_id = :'a1' AND seq = 1;
SELECT problem_class, subject, first_event FROM problems ORDER BY 1, 2, 3;
ROLLBACK;

-- the Merkle tree: a leaf deleted, a checkpoint's root changed, a checkpoint deleted
BEGIN;
DELETE FROM agentmesh.audit_tree WHERE level = 0 AND idx = 0;
SELECT problem_class, subject, first_event, detail FROM problems;
ROLLBACK;
BEGIN;
UPDATE agentmesh.audit_checkpoints SET root_hash = sha256('x')
 WHERE seal_id = (SELECT max(seal_id) FROM agentmesh.audit_seals);
SELECT problem_class, subject, first_event FROM problems ORDER BY 1, 2, 3;
ROLLBACK;
BEGIN;
DELETE FROM agentmesh.audit_checkpoints WHERE seal_id = (SELECT min(seal_id) FROM agentmesh.audit_seals);
SELECT problem_class, subject, first_event FROM problems ORDER BY 1, 2, 3;
ROLLBACK;

-- several at once: all reported, the summary names the first
BEGIN;
UPDATE agentmesh.audit_events SET actor = 'mallory' WHERE agent_id = :'a2' AND seq = 1;
UPDATE agentmesh.audit_events SET actor = 'mallory' WHERE agent_id = :'a3' AND seq = 2;
DELETE FROM agentmesh.audit_events WHERE agent_id = :'a4' AND seq = 2;
UPDATE agentmesh.policies SET audit_seq = 7 WHERE name = 'default';
DELETE FROM agentmesh.agents WHERE agent_id = :'a1';
SELECT problem_class, subject, first_event FROM problems ORDER BY 1, 2, 3;
SELECT intact, broken_agent_id IS NOT NULL AS names_agent, problem IS NOT NULL AS has_problem
  FROM agentmesh.lm_verify_audit();
-- one agent only: only its own problems
SELECT p.problem_class, COALESCE(a.name, p.subject) AS subject, p.first_event IS NOT NULL AS has_event
  FROM agentmesh.lm_verify_audit_problems(:'a3') p LEFT JOIN alias a USING (subject);
ROLLBACK;

ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable;
ALTER TABLE agentmesh.agents ENABLE ALWAYS TRIGGER agents_guard;
ALTER TABLE agentmesh.policies ENABLE ALWAYS TRIGGER policies_guard;
ALTER TABLE agentmesh.audit_seals ENABLE ALWAYS TRIGGER audit_seals_immutable;
ALTER TABLE agentmesh.audit_tree ENABLE ALWAYS TRIGGER audit_tree_immutable;
ALTER TABLE agentmesh.audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_immutable;
SELECT * FROM problems;

-- readable by the auditor, not by the agent role
SET ROLE agentmesh_auditor;
SELECT count(*) AS problems FROM agentmesh.lm_verify_audit_problems();
RESET ROLE;
SET ROLE agentmesh_agent;
SELECT count(*) FROM agentmesh.lm_verify_audit_problems();
RESET ROLE;

DROP VIEW problems;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
