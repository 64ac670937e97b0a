--
-- core_reads: the read functions.  lm_get (NULL when unknown),
-- lm_list_by_state and lm_list_by_owner (order by creation then id, exact
-- match, NULL argument 22004), lm_audit_trail (seq order, 42704 when
-- unknown), lm_summary (keys and counts), lm_transitions (the whole static
-- table).  Reads change nothing.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse

\i test/fingerprint.sql

-- an empty fleet
SELECT agentmesh.lm_summary();
SELECT count(*) AS none FROM agentmesh.lm_list_by_state('active');
SELECT count(*) AS none FROM agentmesh.lm_list_by_owner('alice@example.com');

-- a small fleet, one agent per transaction (so created_at orders them)
INSERT INTO agentmesh.policies (name, require_approval, require_owner) VALUES ('loose', false, false);
SELECT agent_id AS a1 FROM agentmesh.lm_request('alpha', 'alice@example.com', 'first', 'assistant',
												tags => '{"team": "a"}') \gset
SELECT agent_id AS a2 FROM agentmesh.lm_request('bravo', 'bob@example.com') \gset
SELECT agent_id AS a3 FROM agentmesh.lm_request('charlie', 'alice@example.com') \gset
SELECT agent_id AS a4 FROM agentmesh.lm_request('delta', 'alice@example.com') \gset
SELECT agent_id AS a5 FROM agentmesh.lm_request('echo', NULL, policy => 'loose') \gset
SELECT agent_id AS a6 FROM agentmesh.lm_request('foxtrot', 'Alice@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'a2');
SELECT state FROM agentmesh.lm_activate(:'a2');
SELECT state FROM agentmesh.lm_approve(:'a3');
SELECT state FROM agentmesh.lm_activate(:'a3');
SELECT state FROM agentmesh.lm_reject(:'a4', 'duplicate');
SELECT state FROM agentmesh.lm_approve(:'a6');
SELECT state FROM agentmesh.lm_activate(:'a6');
SELECT state FROM agentmesh.lm_suspend(:'a6', 'review');
-- two agents requested in one transaction share created_at: ordered by id
-- (both named twin, as their order depends on their random ids)
BEGIN;
SELECT agent_id AS a7 FROM agentmesh.lm_request('twin', 'gina@example.com') \gset
SELECT agent_id AS a8 FROM agentmesh.lm_request('twin', 'gina@example.com') \gset
COMMIT;
SELECT pg_temp.fp() AS fp0 \gset

-- lm_get: the row, or NULL when unknown
SELECT agent_id = :'a1' AS same_id, name, owner, purpose, agent_type, state, policy, tags,
	   heartbeat_count, credential_id IS NULL AS no_credential
  FROM agentmesh.lm_get(:'a1');
SELECT (agentmesh.lm_get(:'a1')).state AS a1_state, (agentmesh.lm_get(:'a3')).state AS a3_state;
SELECT agentmesh.lm_get('agent:does-not-exist') IS NULL AS unknown_is_null,
	   agentmesh.lm_get('no-such-agent') IS NULL AS garbage_is_null,
	   agentmesh.lm_get(upper(:'a1')) IS NULL AS ids_are_case_sensitive;
SELECT count(*) AS rows_for_unknown FROM agentmesh.lm_get('agent:nope') WHERE agent_id IS NOT NULL;
-- the row lm_get returns is the table's row
SELECT agentmesh.lm_get(:'a2') = a AS same_as_table FROM agentmesh.agents a WHERE a.agent_id = :'a2';

-- lm_list_by_state: every agent in that state, in creation order, then id
SELECT name, owner FROM agentmesh.lm_list_by_state('pending_approval');
SELECT name FROM agentmesh.lm_list_by_state('provisioned');
SELECT name FROM agentmesh.lm_list_by_state('active');
SELECT name FROM agentmesh.lm_list_by_state('suspended');
SELECT name FROM agentmesh.lm_list_by_state('decommissioned');
SELECT count(*) AS none FROM agentmesh.lm_list_by_state('orphaned');
SELECT count(*) AS none FROM agentmesh.lm_list_by_state('rotating_credentials');
SELECT count(*) AS none FROM agentmesh.lm_list_by_state('decommissioning');
-- the order is (created_at, agent_id), also for agents of one transaction
SELECT bool_and(l.ordinality = t.ord) AS ordered, count(*) AS n
  FROM agentmesh.lm_list_by_state('pending_approval') WITH ORDINALITY AS l
  JOIN (SELECT agent_id, row_number() OVER (ORDER BY created_at, agent_id) AS ord
		  FROM agentmesh.agents WHERE state = 'pending_approval') t USING (agent_id);
SELECT (SELECT array_agg(l.agent_id ORDER BY l.ordinality)
		  FROM agentmesh.lm_list_by_state('pending_approval') WITH ORDINALITY AS l
		 WHERE l.name = 'twin')
	   = ARRAY[least(:'a7', :'a8'), greatest(:'a7', :'a8')] AS same_xact_by_id,
	   (SELECT array_agg(l.agent_id ORDER BY l.ordinality)
		  FROM agentmesh.lm_list_by_owner('gina@example.com') WITH ORDINALITY AS l)
	   = ARRAY[least(:'a7', :'a8'), greatest(:'a7', :'a8')] AS same_xact_by_id_owner;
-- the state as text works too
SELECT count(*) AS active FROM agentmesh.lm_list_by_state('active'::text::agentmesh.lifecycle_state);

-- lm_list_by_owner: exact match only, in creation order
SELECT name, state FROM agentmesh.lm_list_by_owner('alice@example.com');
SELECT name, state FROM agentmesh.lm_list_by_owner('Alice@example.com');
SELECT name FROM agentmesh.lm_list_by_owner('gina@example.com');
SELECT count(*) AS none FROM agentmesh.lm_list_by_owner('alice@example.com ');
SELECT count(*) AS none FROM agentmesh.lm_list_by_owner('alice%');
SELECT count(*) AS none FROM agentmesh.lm_list_by_owner('alice');
SELECT count(*) AS none FROM agentmesh.lm_list_by_owner('ALICE@EXAMPLE.COM');
SELECT count(*) AS none FROM agentmesh.lm_list_by_owner('nobody@example.com');
-- an owner change moves the agent between owners' lists
SELECT owner FROM agentmesh.lm_change_owner(:'a1', 'bob@example.com');
SELECT name FROM agentmesh.lm_list_by_owner('bob@example.com');
SELECT name FROM agentmesh.lm_list_by_owner('alice@example.com');
SELECT pg_temp.fp() AS fp0 \gset

-- bad arguments
\set VERBOSITY sqlstate
SELECT agentmesh.lm_get(NULL);
SELECT agentmesh.lm_get('');
SELECT agentmesh.lm_get(repeat('a', 101));
SELECT count(*) FROM agentmesh.lm_list_by_state(NULL);
SELECT count(*) FROM agentmesh.lm_list_by_state('bogus');
SELECT count(*) FROM agentmesh.lm_list_by_owner(NULL);
SELECT count(*) FROM agentmesh.lm_list_by_owner('');
SELECT count(*) FROM agentmesh.lm_list_by_owner('   ');
SELECT count(*) FROM agentmesh.lm_list_by_owner(repeat('o', 1001));
SELECT count(*) FROM agentmesh.lm_audit_trail(NULL);
SELECT count(*) FROM agentmesh.lm_audit_trail('');
SELECT count(*) FROM agentmesh.lm_audit_trail('agent:does-not-exist');
SELECT count(*) FROM agentmesh.lm_audit_trail(upper(:'a1'));
\set VERBOSITY terse
SELECT agentmesh.lm_audit_trail('agent:nope');
SELECT agentmesh.lm_list_by_owner(NULL);
SELECT agentmesh.lm_list_by_state(NULL);

-- lm_audit_trail: the agent's events only, in seq order
SELECT seq, event_type, previous_state, new_state,
	   CASE WHEN actor = session_user THEN '(session user)' ELSE actor END AS actor,
	   agent_id = :'a6' AS own_event
  FROM agentmesh.lm_audit_trail(:'a6');
SELECT bool_and(t.ordinality = t.seq) AS in_seq_order, count(*) AS n
  FROM agentmesh.lm_audit_trail(:'a6') WITH ORDINALITY AS t;
SELECT count(*) = (SELECT count(*) FROM agentmesh.audit_events WHERE agent_id = :'a4') AS all_events,
	   bool_and(agent_id = :'a4') AS only_own
  FROM agentmesh.lm_audit_trail(:'a4');
SELECT event_type, CASE WHEN details->>'team' = session_user THEN jsonb_set(details, '{team}', '"(session user)"') ELSE details END AS details
  FROM agentmesh.lm_audit_trail(:'a4');
-- the rows are the table's rows
SELECT count(*) AS identical FROM agentmesh.lm_audit_trail(:'a2') t
  JOIN agentmesh.audit_events e ON e = t;
SELECT count(*) AS a2_events FROM agentmesh.audit_events WHERE agent_id = :'a2';

-- lm_summary: total, by state, by owner (an agent without owner counts under "")
SELECT agentmesh.lm_summary();
SELECT jsonb_object_keys(agentmesh.lm_summary()) AS key ORDER BY 1;
SELECT (s->>'total_agents')::int = (SELECT count(*) FROM agentmesh.agents) AS total_ok,
	   (SELECT sum(v::int) FROM jsonb_each_text(s->'by_state') AS x(k, v)) = (s->>'total_agents')::int AS states_add_up,
	   (SELECT sum(v::int) FROM jsonb_each_text(s->'by_owner') AS x(k, v)) = (s->>'total_agents')::int AS owners_add_up
  FROM agentmesh.lm_summary() AS s;
-- it follows the fleet
SELECT state FROM agentmesh.lm_decommission(:'a3', 'done');
SELECT agentmesh.lm_summary()->'by_state' AS by_state;

-- reads change nothing
SELECT pg_temp.fp() AS fp1 \gset
SELECT count(*) > 0 AS read FROM agentmesh.lm_list_by_state('active');
SELECT count(*) > 0 AS read FROM agentmesh.lm_list_by_owner('bob@example.com');
SELECT count(*) > 0 AS read FROM agentmesh.lm_audit_trail(:'a1');
SELECT (agentmesh.lm_get(:'a1')).agent_id = :'a1' AS read, agentmesh.lm_summary() IS NOT NULL AS summary;
SELECT count(*) > 0 AS read FROM agentmesh.lm_transitions();
SELECT pg_temp.fp() = :'fp1' AS unchanged;

-- lm_transitions(): the whole table, one row per operation and from-state
SELECT operation, from_state, to_state, events
  FROM agentmesh.lm_transitions()
 ORDER BY operation, from_state NULLS FIRST, to_state, events::text;
-- counts and properties of the table
SELECT count(*) AS rows, count(DISTINCT operation) AS operations FROM agentmesh.lm_transitions();
SELECT count(*) AS from_decommissioned FROM agentmesh.lm_transitions() WHERE from_state = 'decommissioned';
SELECT count(*) AS to_transient FROM agentmesh.lm_transitions()
 WHERE to_state IN ('rotating_credentials', 'decommissioning')
	OR from_state IN ('rotating_credentials', 'decommissioning');
-- IMMUTABLE and static: two calls agree
SELECT (SELECT array_agg(t::text ORDER BY t::text) FROM agentmesh.lm_transitions() t)
	 = (SELECT array_agg(t::text ORDER BY t::text) FROM agentmesh.lm_transitions() t) AS stable;

SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
