--
-- core_matrix: every operation from every state either makes the transition
-- of the table (ARCHITECTURE.md section 5) or fails with 55000 and changes
-- nothing (agent row, credentials and audit trail compared before/after).
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse

-- An agent in a given state, made with the lm_* functions.
CREATE FUNCTION pg_temp.make_agent(st text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	a text;
BEGIN
	a := (agentmesh.lm_request('matrix-' || st, 'owner@example.com', actor => 'req')).agent_id;
	IF st = 'pending_approval' THEN RETURN a; END IF;
	IF st = 'rejected' THEN
		PERFORM agentmesh.lm_reject(a, 'no', 'appr');
		RETURN a;
	END IF;
	PERFORM agentmesh.lm_approve(a, 'appr');
	IF st = 'provisioned' THEN RETURN a; END IF;
	PERFORM agentmesh.lm_activate(a, 'adm');
	IF st = 'active' THEN RETURN a; END IF;
	IF st = 'suspended' THEN PERFORM agentmesh.lm_suspend(a, 'why', 'adm');
	ELSIF st = 'orphaned' THEN PERFORM agentmesh.lm_mark_orphaned(a, 'adm');
	ELSIF st = 'decommissioned' THEN PERFORM agentmesh.lm_decommission(a, 'done', 'adm');
	ELSE RAISE EXCEPTION 'unknown state %', st;
	END IF;
	RETURN a;
END $$;

-- A fingerprint of everything an operation could change for one agent.
CREATE FUNCTION pg_temp.fingerprint(a text) RETURNS text LANGUAGE sql AS $$
	SELECT md5((SELECT ag::text FROM agentmesh.agents ag WHERE ag.agent_id = a))
		|| md5(coalesce((SELECT string_agg(c::text, ',' ORDER BY c.credential_id)
						 FROM agentmesh.credentials c WHERE c.agent_id = a), ''))
		|| md5(coalesce((SELECT string_agg(e::text, ',' ORDER BY e.seq)
						 FROM agentmesh.audit_events e WHERE e.agent_id = a), ''))
		|| (SELECT count(*) FROM agentmesh.audit_events)::text
$$;

CREATE TEMP TABLE matrix (op text, from_label text, from_state text,
						  outcome text, events text, unchanged bool);

CREATE FUNCTION pg_temp.try(op text, st text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	a text := pg_temp.make_agent(st);
	before text := pg_temp.fingerprint(a);
	from_st text := (SELECT state::text FROM agentmesh.agents WHERE agent_id = a);
	seq0 int8 := (SELECT audit_seq FROM agentmesh.agents WHERE agent_id = a);
	res text;
	evs text;
BEGIN
	BEGIN
		CASE op
		WHEN 'approve' THEN PERFORM agentmesh.lm_approve(a, 'appr');
		WHEN 'reject' THEN PERFORM agentmesh.lm_reject(a, 'r', 'appr');
		WHEN 'activate' THEN PERFORM agentmesh.lm_activate(a, 'adm');
		WHEN 'suspend' THEN PERFORM agentmesh.lm_suspend(a, 's', 'adm');
		WHEN 'resume' THEN PERFORM agentmesh.lm_resume(a, 'adm');
		WHEN 'mark_orphaned' THEN PERFORM agentmesh.lm_mark_orphaned(a, 'adm');
		WHEN 'reclaim' THEN PERFORM agentmesh.lm_reclaim(a, 'new@example.com', 'adm');
		WHEN 'decommission' THEN PERFORM agentmesh.lm_decommission(a, 'd', 'adm');
		WHEN 'heartbeat' THEN PERFORM agentmesh.lm_heartbeat(a);
		WHEN 'change_owner' THEN PERFORM agentmesh.lm_change_owner(a, 'new@example.com', 'adm');
		WHEN 'rotate_credentials' THEN PERFORM agentmesh.lm_rotate_credentials(a, 'adm');
		WHEN 'revoke_credentials' THEN PERFORM agentmesh.lm_revoke_credentials(a, 'leak', 'adm');
		END CASE;
		res := (SELECT state::text FROM agentmesh.agents WHERE agent_id = a);
		evs := (SELECT string_agg(event_type::text, ',' ORDER BY seq)
				  FROM agentmesh.audit_events WHERE agent_id = a AND seq > seq0);
		INSERT INTO matrix VALUES (op, st, from_st, res, coalesce(evs, '-'), NULL);
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO matrix VALUES (op, st, from_st, 'ERROR ' || SQLSTATE, '-',
								   pg_temp.fingerprint(a) = before);
	END;
END $$;

-- The zombie heartbeat warning names a random agent id; keep it out of the output.
SET client_min_messages = error;
SELECT count(*) AS cases FROM (SELECT pg_temp.try(o, s)
  FROM unnest(ARRAY['approve', 'reject', 'activate', 'suspend', 'resume', 'mark_orphaned',
					'reclaim', 'decommission', 'heartbeat', 'change_owner',
					'rotate_credentials', 'revoke_credentials']) WITH ORDINALITY AS o(o, i),
	   unnest(ARRAY['pending_approval', 'provisioned', 'active', 'suspended', 'orphaned',
					'decommissioned', 'rejected']) WITH ORDINALITY AS s(s, j)
 ORDER BY i, j) x;
RESET client_min_messages;

-- The full matrix.  Failures are all 55000 with nothing changed.
SELECT op, from_label, outcome, events, unchanged
  FROM matrix ORDER BY op, from_label;

-- Every failure is 55000 and left the agent, its credentials and the audit trail alone.
SELECT count(*) AS failures,
	   count(*) FILTER (WHERE outcome = 'ERROR 55000') AS failures_55000,
	   bool_and(unchanged) AS nothing_changed
  FROM matrix WHERE outcome LIKE 'ERROR%';

-- The matrix agrees with the table the code publishes (lm_transitions()).
SELECT m.op, m.from_state, m.outcome, t.to_state
  FROM matrix m
  LEFT JOIN agentmesh.lm_transitions() t
	ON t.operation = m.op AND t.from_state::text = m.from_state
 WHERE (t.operation IS NULL) <> (m.outcome LIKE 'ERROR%')
	OR (t.operation IS NOT NULL AND t.to_state::text <> m.outcome)
 ORDER BY 1, 2;

-- Plain SQL: UPDATE agents SET state = X from every state to every state is
-- allowed only along an edge of the table (reclaim excepted: it needs a new
-- owner and credential), refused with 55000 otherwise, and changes nothing then.
CREATE TEMP TABLE sqlmatrix (from_label text, to_state text, outcome text, unchanged bool);
CREATE FUNCTION pg_temp.try_sql(st text, target text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	a text := pg_temp.make_agent(st);
	before text := pg_temp.fingerprint(a);
BEGIN
	BEGIN
		UPDATE agentmesh.agents SET state = target::agentmesh.lifecycle_state WHERE agent_id = a;
		INSERT INTO sqlmatrix VALUES (st, target,
			(SELECT state::text FROM agentmesh.agents WHERE agent_id = a), NULL);
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO sqlmatrix VALUES (st, target, 'ERROR ' || SQLSTATE,
									  pg_temp.fingerprint(a) = before);
	END;
END $$;
SELECT count(*) AS cases FROM (SELECT pg_temp.try_sql(s, t)
  FROM unnest(ARRAY['pending_approval', 'provisioned', 'active', 'suspended', 'orphaned',
					'decommissioned']) AS s(s),
	   unnest(enum_range(NULL::agentmesh.lifecycle_state)::text[]) AS t(t)
 WHERE s <> t) x;
SELECT from_label, to_state, outcome FROM sqlmatrix
 WHERE outcome NOT LIKE 'ERROR%' ORDER BY 1, 2;
SELECT count(*) AS refused, count(*) FILTER (WHERE outcome = 'ERROR 55000') AS refused_55000,
	   bool_and(unchanged) AS nothing_changed
  FROM sqlmatrix WHERE outcome LIKE 'ERROR%';

-- The transient states are never committed: no agent is in them.
SELECT count(*) AS transient FROM agentmesh.agents
 WHERE state IN ('rotating_credentials', 'decommissioning');

-- Every chain still verifies after all of this.
SELECT intact, problem FROM agentmesh.lm_verify_audit();

SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
RESET client_min_messages;
