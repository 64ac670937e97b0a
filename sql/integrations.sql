--
-- integrations: the views (audit_log, fleet, fleet_metrics), the procedure
-- for schedulers (run_maintenance) and the event feed (lm_events).
-- Views: typed columns, the agent's name and owner at the time of each
-- event, 1.0's string-form details read like 1.1's typed ones, every state
-- and reason counted (zeros too), readable by admin and auditor only, and
-- security_invoker (a grant on a view alone shows nothing).
-- run_maintenance: refused inside a transaction block (2D000) and for
-- non-admins (42501), argument checks, each run recorded with its counts and
-- shown by worker_status.  lm_events: bad cursors refused without echo.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse

CREATE ROLE regress_int_admin NOLOGIN IN ROLE agentmesh_admin;
CREATE ROLE regress_int_auditor NOLOGIN IN ROLE agentmesh_auditor;
CREATE ROLE regress_int_requester NOLOGIN IN ROLE agentmesh_requester;
CREATE ROLE regress_int_approver NOLOGIN IN ROLE agentmesh_approver;
CREATE ROLE regress_int_agent NOLOGIN IN ROLE agentmesh_agent;
CREATE ROLE regress_int_nobody NOLOGIN;

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

-- a small history: request, approve, activate, owner change, rename, suspension
SELECT agent_id AS a FROM agentmesh.lm_request('bot-1', 'alice@example.com', actor => 'alice') \gset
SELECT state FROM agentmesh.lm_approve(:'a');
SELECT state FROM agentmesh.lm_activate(:'a');
SELECT owner FROM agentmesh.lm_change_owner(:'a', 'bob@example.com');
UPDATE agentmesh.agents SET name = 'bot-1-renamed' WHERE agent_id = :'a';
SELECT state FROM agentmesh.lm_suspend(:'a', 'incident 7');
SELECT state FROM agentmesh.lm_resume(:'a');
UPDATE agentmesh.policies SET orphan_threshold = '2 hours' WHERE name = 'default';
-- the maintenance pass, from the procedure, two days later: orphaned
SELECT orphaned FROM agentmesh.lm_run_maintenance(now() + interval '2 days', allow_future => true);

-- typed columns, name and owner as they were at each event
SELECT seq, event_type, agent_name, owner, previous_state, new_state, reason, reason_codes,
	   old_owner, new_owner, changed_columns, old_values, new_values,
	   length(hash) AS hash_hex_len, xact_id > 0 AS xact_id_ok,
	   event_cursor = xact_id || ':' || event_id AS cursor_ok
  FROM agentmesh.audit_log WHERE agent_id = :'a' ORDER BY seq;
SELECT policy, event_type, changed_columns, old_values, new_values
  FROM agentmesh.audit_log WHERE policy = 'default';
-- the column types a BI tool sees
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a WHERE a.attrelid = 'agentmesh.audit_log'::regclass AND a.attnum > 0
 ORDER BY a.attnum;

-- 1.0 stored numbers and lists as strings; the view reads them as 1.1's
INSERT INTO agentmesh.audit_events (agent_id, seq, event_type, occurred_at, actor, db_user,
		details, hash)
VALUES ('agent:legacy-form', 1, 'orphan_detected', now(), 'agentmesh-maintenance', 'postgres',
		'{"reason_codes": "silent, no_owner", "reason": "old form"}', '\x00'),
	   ('agent:legacy-form', 2, 'heartbeat_missed', now(), 'agentmesh-maintenance', 'postgres',
		'{"silent_seconds": "20.5", "heartbeat_interval_seconds": "10"}', '\x01'),
	   ('agent:legacy-form', 3, 'decommissioned', now(), 'agentmesh-maintenance', 'postgres',
		'{"credentials_revoked": "2"}', '\x02');
SELECT seq, event_type, reason_codes, silent_seconds, credentials_revoked, hash
  FROM agentmesh.audit_log WHERE agent_id = 'agent:legacy-form' ORDER BY seq;
-- and 1.1 writes them typed
SELECT jsonb_typeof(details->'reason_codes') AS reason_codes_json
  FROM agentmesh.audit_events WHERE agent_id = :'a' AND event_type = 'orphan_detected';

-- fleet: one row per agent
SELECT name, state, owner, orphan_reasons, seconds_since_heartbeat, credential_expires_in_seconds > 0 AS cred_valid
  FROM agentmesh.fleet;
-- fleet_metrics: every state and reason, zeros included
SELECT metric, label, value FROM agentmesh.fleet_metrics
 WHERE metric NOT LIKE '%age_seconds' ORDER BY metric, label;
SELECT metric, value IS NOT NULL AS has_value FROM agentmesh.fleet_metrics
 WHERE metric LIKE '%age_seconds' ORDER BY metric;

-- who may read the views: admin and auditor; a grant on a view alone is not enough
SELECT v.v AS view,
	   pg_temp.try_as('regress_int_admin', format('SELECT * FROM agentmesh.%I', v.v)) AS admin,
	   pg_temp.try_as('regress_int_auditor', format('SELECT * FROM agentmesh.%I', v.v)) AS auditor,
	   pg_temp.try_as('regress_int_requester', format('SELECT * FROM agentmesh.%I', v.v)) AS requester,
	   pg_temp.try_as('regress_int_approver', format('SELECT * FROM agentmesh.%I', v.v)) AS approver,
	   pg_temp.try_as('regress_int_agent', format('SELECT * FROM agentmesh.%I', v.v)) AS agent,
	   pg_temp.try_as('regress_int_nobody', format('SELECT * FROM agentmesh.%I', v.v)) AS nobody
  FROM (VALUES ('audit_log'), ('fleet'), ('fleet_metrics'), ('worker_status'), ('maintenance_runs')) v(v);
SELECT c.relname, c.reloptions FROM pg_class c
 WHERE c.relnamespace = 'agentmesh'::regnamespace AND c.relkind = 'v' ORDER BY 1;
GRANT USAGE ON SCHEMA agentmesh TO regress_int_nobody;
GRANT SELECT ON agentmesh.audit_log TO regress_int_nobody;
SELECT pg_temp.try_as('regress_int_nobody', 'SELECT * FROM agentmesh.audit_log') AS view_grant_only;
REVOKE SELECT ON agentmesh.audit_log FROM regress_int_nobody;
REVOKE USAGE ON SCHEMA agentmesh FROM regress_int_nobody;

-- run_maintenance: only with CALL outside a transaction block
BEGIN;
CALL agentmesh.run_maintenance();
ROLLBACK;
SELECT count(*) AS runs_after_refusal FROM agentmesh.maintenance_runs;
-- a DO block at top level may commit too
DO $$ BEGIN CALL agentmesh.run_maintenance(); END $$;
SELECT count(*) AS runs_after_do FROM agentmesh.maintenance_runs;
CALL agentmesh.run_maintenance(NULL);
CALL agentmesh.run_maintenance(0);
SELECT pg_temp.try_as(r, 'CALL agentmesh.run_maintenance()') AS refused, r
  FROM unnest(ARRAY['regress_int_auditor', 'regress_int_requester', 'regress_int_approver',
					'regress_int_agent', 'regress_int_nobody']) r;
-- a run, one transaction per batch (batches of 1): an agent silent past the threshold
SELECT agent_id AS b1 FROM agentmesh.lm_request('bot-2', 'carol@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'b1');
SELECT state FROM agentmesh.lm_activate(:'b1');
UPDATE agentmesh.policies SET orphan_threshold = '1 microsecond' WHERE name = 'default';
-- first with an injected failure in the orphan batch: the run records the
-- error, the error reaches the caller, the failed batch changed nothing
CREATE FUNCTION public.regress_fail_orphaning() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.state = 'orphaned' THEN
		RAISE EXCEPTION 'injected failure';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER zz_regress_fail BEFORE UPDATE ON agentmesh.agents
	FOR EACH ROW EXECUTE FUNCTION public.regress_fail_orphaning();
CALL agentmesh.run_maintenance(1);
SELECT state FROM agentmesh.lm_get(:'b1');
SELECT run_id, finished_at >= started_at AS finished, orphaned, error
  FROM agentmesh.maintenance_runs ORDER BY run_id DESC LIMIT 1;
DROP TRIGGER zz_regress_fail ON agentmesh.agents;
DROP FUNCTION public.regress_fail_orphaning();
CALL agentmesh.run_maintenance(1);
SELECT run_id, finished_at >= started_at AS finished, db_user = session_user AS db_user_ok,
	   batch_size, batches > 1 AS several_batches, orphaned, error
  FROM agentmesh.maintenance_runs ORDER BY run_id;
SELECT state FROM agentmesh.lm_get(:'b1');
SELECT datname = current_database() AS this_db, pid, state, passes, orphaned, errors, last_error,
	   last_pass_start IS NOT NULL AS has_start, last_pass_duration >= '0' AS has_duration,
	   last_error_at >= last_pass_start - interval '1 hour' AS has_error_time
  FROM agentmesh.worker_status;

-- lm_events: cursors are checked, never echoed
SELECT count(*) AS from_start FROM agentmesh.lm_events();
SELECT count(*) AS page FROM agentmesh.lm_events(NULL, 2);
SELECT * FROM agentmesh.lm_events('agent:not-a-cursor');
SELECT * FROM agentmesh.lm_events('1:2:3');
SELECT * FROM agentmesh.lm_events('1:9223372036854775808');
SELECT count(*) AS at_the_limits FROM agentmesh.lm_events('18446744073709551615:9223372036854775807');
SELECT * FROM agentmesh.lm_events(NULL, 0);
SELECT * FROM agentmesh.lm_events(NULL, NULL);
SELECT pg_temp.try_as('regress_int_requester', 'SELECT * FROM agentmesh.lm_events()') AS requester,
	   pg_temp.try_as('regress_int_auditor', 'SELECT * FROM agentmesh.lm_events()') AS auditor;
-- the cursor after the last event returns nothing more
SELECT count(*) AS after_last
  FROM agentmesh.lm_events((SELECT event_cursor FROM agentmesh.audit_log
							 ORDER BY xact_id DESC, event_id DESC LIMIT 1));

DROP ROLE regress_int_admin, regress_int_auditor, regress_int_requester, regress_int_approver,
	regress_int_agent, regress_int_nobody;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
