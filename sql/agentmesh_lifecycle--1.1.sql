/* agentmesh_lifecycle 1.1 — install script
 *
 * Written as if the installer's search_path were hostile: every object is
 * schema-qualified, operators inside SQL bodies are OPERATOR(pg_catalog.x),
 * and every object is created with plain CREATE so that a pre-existing object
 * of the same name makes CREATE EXTENSION fail instead of being adopted.
 */

\echo Use "CREATE EXTENSION agentmesh_lifecycle" to load this file. \quit

CREATE SCHEMA agentmesh;
REVOKE ALL ON SCHEMA agentmesh FROM PUBLIC;
COMMENT ON SCHEMA agentmesh IS 'agentmesh_lifecycle: lifecycle of AI-agent identities';

/*
 * Group roles.  Roles are cluster-wide and outlive the extension, so they are
 * created only when missing; an existing role that can log in is refused,
 * because granting it our privileges would hand them to whoever uses it.
 */
DO $roles$
DECLARE
	r pg_catalog.text;
BEGIN
	FOREACH r IN ARRAY ARRAY['agentmesh_admin', 'agentmesh_approver',
							 'agentmesh_requester', 'agentmesh_agent',
							 'agentmesh_auditor']
	LOOP
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
					   WHERE rolname OPERATOR(pg_catalog.=) r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles
					  WHERE rolname OPERATOR(pg_catalog.=) r
						AND (rolcanlogin OR rolsuper)) THEN
			RAISE EXCEPTION 'role "%" already exists and can log in', r
				USING ERRCODE = '42710',
					  HINT = 'The extension''s group roles must be NOLOGIN roles; rename or alter the existing role.';
		END IF;
	END LOOP;
END
$roles$;

GRANT USAGE ON SCHEMA agentmesh TO agentmesh_admin, agentmesh_approver,
	agentmesh_requester, agentmesh_agent, agentmesh_auditor;

/* ---------------------------------------------------------------------------
 * Types.  Enum labels and their order are the Python reference's, so data
 * moves losslessly; events after owner_changed are ours.
 * ------------------------------------------------------------------------- */
CREATE TYPE agentmesh.lifecycle_state AS ENUM (
	'pending_approval', 'provisioned', 'active', 'suspended',
	'rotating_credentials', 'decommissioning', 'decommissioned', 'orphaned'
);

CREATE TYPE agentmesh.lifecycle_event_type AS ENUM (
	'requested', 'approved', 'rejected', 'provisioned', 'activated',
	'credential_rotated', 'credential_expired', 'heartbeat', 'heartbeat_missed',
	'suspended', 'resumed', 'orphan_detected', 'decommission_started',
	'decommissioned', 'owner_changed',
	'credential_revoked', 'attributes_changed', 'policy_changed'
);

/* ---------------------------------------------------------------------------
 * Policies
 * ------------------------------------------------------------------------- */
CREATE TABLE agentmesh.policies (
	name pg_catalog.text PRIMARY KEY
		CONSTRAINT policies_name_check
		CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_.-]{0,62}$'),
	require_approval pg_catalog.bool NOT NULL DEFAULT true,
	require_owner pg_catalog.bool NOT NULL DEFAULT true,
	require_distinct_approver pg_catalog.bool NOT NULL DEFAULT false,
	heartbeat_interval pg_catalog.interval NOT NULL DEFAULT '5 minutes'
		CONSTRAINT policies_heartbeat_interval_check
		CHECK (heartbeat_interval OPERATOR(pg_catalog.>) '0'::pg_catalog.interval),
	orphan_threshold pg_catalog.interval NOT NULL DEFAULT '24 hours'
		CONSTRAINT policies_orphan_threshold_check
		CHECK (orphan_threshold OPERATOR(pg_catalog.>) '0'::pg_catalog.interval),
	max_inactive_days pg_catalog.int4 NOT NULL DEFAULT 90
		CONSTRAINT policies_max_inactive_days_check
		CHECK (max_inactive_days OPERATOR(pg_catalog.>) 0
			   AND max_inactive_days OPERATOR(pg_catalog.<=) 36500),
	max_credential_ttl pg_catalog.interval NOT NULL DEFAULT '24 hours'
		CONSTRAINT policies_max_credential_ttl_check
		CHECK (max_credential_ttl OPERATOR(pg_catalog.>) '0'::pg_catalog.interval
			   AND max_credential_ttl OPERATOR(pg_catalog.<=) '366 days'::pg_catalog.interval),
	rotation_overlap pg_catalog.interval NOT NULL DEFAULT '5 minutes'
		CONSTRAINT policies_rotation_overlap_check
		CHECK (rotation_overlap OPERATOR(pg_catalog.>=) '0'::pg_catalog.interval
			   AND rotation_overlap OPERATOR(pg_catalog.<) max_credential_ttl),
	auto_rotate pg_catalog.bool NOT NULL DEFAULT true,
	revoke_on_decommission pg_catalog.bool NOT NULL DEFAULT true,
	heartbeat_requires_token pg_catalog.bool NOT NULL DEFAULT false,
	audit_heartbeats pg_catalog.bool NOT NULL DEFAULT false,
	auto_decommission pg_catalog.bool NOT NULL DEFAULT false,
	created_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
	/* per-policy audit chain head, kept like the agents' one */
	audit_seq pg_catalog.int8 NOT NULL DEFAULT 0,
	audit_head pg_catalog.bytea,
	/* 1.1 (issue 12): when the maintenance pass rotates, as a fraction of the lifetime */
	rotate_after pg_catalog.float8 NOT NULL DEFAULT 0.5
		CONSTRAINT policies_rotate_after_check
		CHECK (rotate_after OPERATOR(pg_catalog.>) 0::pg_catalog.float8
			   AND rotate_after OPERATOR(pg_catalog.<=) 1::pg_catalog.float8)
);
COMMENT ON TABLE agentmesh.policies IS 'Named lifecycle policies; row ''default'' always exists. Changes are audited.';

/* ---------------------------------------------------------------------------
 * Agents: one row per agent, never deleted; the row holds its audit chain head.
 * ------------------------------------------------------------------------- */
CREATE TABLE agentmesh.agents (
	agent_id pg_catalog.text PRIMARY KEY,
	name pg_catalog.text NOT NULL,
	owner pg_catalog.text,
	purpose pg_catalog.text NOT NULL DEFAULT '',
	agent_type pg_catalog.text NOT NULL DEFAULT 'autonomous',
	state agentmesh.lifecycle_state NOT NULL,
	/* a policy name; checked by agents_guard, not a foreign key (see audit.c) */
	policy pg_catalog.text NOT NULL DEFAULT 'default',
	credential_id pg_catalog.text,
	credential_issued_at pg_catalog.timestamptz,
	credential_expires_at pg_catalog.timestamptz,
	last_heartbeat pg_catalog.timestamptz,
	heartbeat_count pg_catalog.int8 NOT NULL DEFAULT 0,
	created_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
	activated_at pg_catalog.timestamptz,
	decommissioned_at pg_catalog.timestamptz,
	tags pg_catalog.jsonb NOT NULL DEFAULT '{}',
	requested_by pg_catalog.text,
	heartbeat_missed_at pg_catalog.timestamptz,
	audit_seq pg_catalog.int8 NOT NULL DEFAULT 0,
	audit_head pg_catalog.bytea,
	/* 1.1 (issue 12): last verification, renewal or claim with any of its credentials */
	last_used_at pg_catalog.timestamptz
) WITH (fillfactor = 70);
COMMENT ON TABLE agentmesh.agents IS 'One row per agent identity; never deleted (decommissioned rows are tombstones).';
/*
 * Heartbeats update last_heartbeat and heartbeat_count only.  No index
 * covers those columns (the maintenance pass finds silent agents with one
 * scan instead), and pages keep free space, so that a heartbeat is a HOT
 * update: no index entry written, and the table does not bloat.
 */
CREATE INDEX agents_owner_idx ON agentmesh.agents (owner);
CREATE INDEX agents_state_idx ON agentmesh.agents (state);

/* ---------------------------------------------------------------------------
 * Credentials: only the SHA-256 of a token is stored.
 * ------------------------------------------------------------------------- */
CREATE TABLE agentmesh.credentials (
	credential_id pg_catalog.text PRIMARY KEY,
	/* written only under the agent's row lock; no foreign key (see audit.c) */
	agent_id pg_catalog.text NOT NULL,
	token_hash pg_catalog.bytea NOT NULL UNIQUE
		CONSTRAINT credentials_token_hash_check
		CHECK (pg_catalog.length(token_hash) OPERATOR(pg_catalog.=) 32),
	issued_at pg_catalog.timestamptz NOT NULL,
	expires_at pg_catalog.timestamptz NOT NULL,
	superseded_at pg_catalog.timestamptz,
	revoked_at pg_catalog.timestamptz,
	revoke_reason pg_catalog.text,
	expired_recorded pg_catalog.bool NOT NULL DEFAULT false,
	/* 1.1 (issue 12): last successful use, written at most once a minute */
	last_used_at pg_catalog.timestamptz,
	CONSTRAINT credentials_lifetime_check
		CHECK (expires_at OPERATOR(pg_catalog.>=) issued_at)
);
COMMENT ON TABLE agentmesh.credentials IS 'Issued credentials; token_hash is SHA-256 of the token, which is never stored.';
CREATE INDEX credentials_agent_idx ON agentmesh.credentials (agent_id);

/* ---------------------------------------------------------------------------
 * Audit events: append-only, per-subject hash chain (subject = agent or policy).
 * ------------------------------------------------------------------------- */
CREATE SEQUENCE agentmesh.audit_events_event_id_seq;

CREATE TABLE agentmesh.audit_events (
	event_id pg_catalog.int8 PRIMARY KEY
		DEFAULT pg_catalog.nextval('agentmesh.audit_events_event_id_seq'::pg_catalog.regclass),
	agent_id pg_catalog.text,
	policy pg_catalog.text,
	seq pg_catalog.int8 NOT NULL,
	event_type agentmesh.lifecycle_event_type NOT NULL,
	occurred_at pg_catalog.timestamptz NOT NULL,
	actor pg_catalog.text NOT NULL,
	db_user pg_catalog.text NOT NULL,
	previous_state agentmesh.lifecycle_state,
	new_state agentmesh.lifecycle_state,
	details pg_catalog.jsonb NOT NULL DEFAULT '{}',
	prev_hash pg_catalog.bytea,
	hash pg_catalog.bytea NOT NULL,
	xact_id pg_catalog.xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	CONSTRAINT audit_events_subject_check
		CHECK ((agent_id IS NULL) OPERATOR(pg_catalog.<>) (policy IS NULL)),
	CONSTRAINT audit_events_agent_seq_key UNIQUE (agent_id, seq),
	CONSTRAINT audit_events_policy_seq_key UNIQUE (policy, seq)
);
ALTER SEQUENCE agentmesh.audit_events_event_id_seq OWNED BY agentmesh.audit_events.event_id;
COMMENT ON TABLE agentmesh.audit_events IS 'Immutable, hash-chained audit trail written by triggers in the transaction of each change.';

/* pg_dump must carry the data, the default policy included: its restored row
 * replaces the one the script creates (see agentmesh_policies_guard). */
SELECT pg_catalog.pg_extension_config_dump('agentmesh.policies', '');
SELECT pg_catalog.pg_extension_config_dump('agentmesh.agents', '');
SELECT pg_catalog.pg_extension_config_dump('agentmesh.credentials', '');
SELECT pg_catalog.pg_extension_config_dump('agentmesh.audit_events', '');
SELECT pg_catalog.pg_extension_config_dump('agentmesh.audit_events_event_id_seq', '');

/*
 * The default policy.  Inserted before the policies trigger exists, so its
 * chain starts empty in every installation and a restored dump can carry the
 * default policy's own chain (see the restore path in audit.c).
 */
INSERT INTO agentmesh.policies (name) VALUES ('default');

/* ---------------------------------------------------------------------------
 * Composite result of functions that issue a credential.
 * ------------------------------------------------------------------------- */
CREATE TYPE agentmesh.credential_grant AS (
	agent_id pg_catalog.text,
	state agentmesh.lifecycle_state,
	credential_id pg_catalog.text,
	credential_issued_at pg_catalog.timestamptz,
	credential_expires_at pg_catalog.timestamptz,
	token pg_catalog.text
);

/* ---------------------------------------------------------------------------
 * Triggers (C).  ENABLE ALWAYS so that session_replication_role = replica does
 * not switch them off.
 * ------------------------------------------------------------------------- */
CREATE FUNCTION agentmesh.agents_guard() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'agentmesh_agents_guard';
CREATE FUNCTION agentmesh.policies_guard() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'agentmesh_policies_guard';
CREATE FUNCTION agentmesh.audit_immutable() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'agentmesh_audit_immutable';
REVOKE ALL ON FUNCTION agentmesh.agents_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION agentmesh.policies_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION agentmesh.audit_immutable() FROM PUBLIC;

CREATE TRIGGER agents_guard BEFORE INSERT OR UPDATE OR DELETE ON agentmesh.agents
	FOR EACH ROW EXECUTE FUNCTION agentmesh.agents_guard();
CREATE TRIGGER agents_no_truncate BEFORE TRUNCATE ON agentmesh.agents
	FOR EACH STATEMENT EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER policies_guard BEFORE INSERT OR UPDATE OR DELETE ON agentmesh.policies
	FOR EACH ROW EXECUTE FUNCTION agentmesh.policies_guard();
CREATE TRIGGER policies_no_truncate BEFORE TRUNCATE ON agentmesh.policies
	FOR EACH STATEMENT EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER audit_events_immutable BEFORE UPDATE OR DELETE ON agentmesh.audit_events
	FOR EACH ROW EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON agentmesh.audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER credentials_no_truncate BEFORE TRUNCATE ON agentmesh.credentials
	FOR EACH STATEMENT EXECUTE FUNCTION agentmesh.audit_immutable();
ALTER TABLE agentmesh.agents ENABLE ALWAYS TRIGGER agents_guard;
ALTER TABLE agentmesh.agents ENABLE ALWAYS TRIGGER agents_no_truncate;
ALTER TABLE agentmesh.policies ENABLE ALWAYS TRIGGER policies_guard;
ALTER TABLE agentmesh.policies ENABLE ALWAYS TRIGGER policies_no_truncate;
ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable;
ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_no_truncate;
ALTER TABLE agentmesh.credentials ENABLE ALWAYS TRIGGER credentials_no_truncate;


/* ---------------------------------------------------------------------------
 * SQL API (C).  Not STRICT: a NULL where a value is required is reported
 * with SQLSTATE 22004 instead of silently returning NULL.
 * ------------------------------------------------------------------------- */
CREATE FUNCTION agentmesh.lm_request(name pg_catalog.text, owner pg_catalog.text,
		purpose pg_catalog.text DEFAULT '', agent_type pg_catalog.text DEFAULT 'autonomous',
		actor pg_catalog.text DEFAULT NULL, tags pg_catalog.jsonb DEFAULT '{}',
		policy pg_catalog.text DEFAULT 'default')
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_request';
CREATE FUNCTION agentmesh.lm_approve(agent_id pg_catalog.text, actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_approve';
CREATE FUNCTION agentmesh.lm_reject(agent_id pg_catalog.text, reason pg_catalog.text DEFAULT '',
		actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_reject';
CREATE FUNCTION agentmesh.lm_activate(agent_id pg_catalog.text, actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.credential_grant LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_activate';
CREATE FUNCTION agentmesh.lm_heartbeat(agent_id pg_catalog.text, token pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_heartbeat';
CREATE FUNCTION agentmesh.lm_suspend(agent_id pg_catalog.text, reason pg_catalog.text DEFAULT '',
		actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_suspend';
CREATE FUNCTION agentmesh.lm_resume(agent_id pg_catalog.text, actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_resume';
CREATE FUNCTION agentmesh.lm_decommission(agent_id pg_catalog.text, reason pg_catalog.text DEFAULT '',
		actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_decommission';
CREATE FUNCTION agentmesh.lm_change_owner(agent_id pg_catalog.text, new_owner pg_catalog.text,
		actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_change_owner';
CREATE FUNCTION agentmesh.lm_rotate_credentials(agent_id pg_catalog.text, actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.credential_grant LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_rotate_credentials';
CREATE FUNCTION agentmesh.lm_revoke_credentials(agent_id pg_catalog.text, reason pg_catalog.text,
		actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_revoke_credentials';
CREATE FUNCTION agentmesh.lm_verify_credential(token pg_catalog.text)
	RETURNS pg_catalog.text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_verify_credential';
CREATE FUNCTION agentmesh.lm_check_and_rotate(as_of pg_catalog.timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (agent_id pg_catalog.text, action pg_catalog.text, detail pg_catalog.text)
	LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_check_and_rotate';
CREATE FUNCTION agentmesh.lm_detect_orphans(as_of pg_catalog.timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (agent_id pg_catalog.text, name pg_catalog.text, owner pg_catalog.text,
				   state agentmesh.lifecycle_state, reason_code pg_catalog.text,
				   reason pg_catalog.text, days_silent pg_catalog.float8)
	LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_detect_orphans';
CREATE FUNCTION agentmesh.lm_mark_orphaned(agent_id pg_catalog.text, actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_mark_orphaned';
CREATE FUNCTION agentmesh.lm_reclaim(agent_id pg_catalog.text, new_owner pg_catalog.text,
		actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.credential_grant LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_reclaim';
CREATE FUNCTION agentmesh.lm_get(agent_id pg_catalog.text)
	RETURNS agentmesh.agents LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_get';
CREATE FUNCTION agentmesh.lm_list_by_state(state agentmesh.lifecycle_state)
	RETURNS SETOF agentmesh.agents LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_list_by_state';
CREATE FUNCTION agentmesh.lm_list_by_owner(owner pg_catalog.text)
	RETURNS SETOF agentmesh.agents LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_list_by_owner';
CREATE FUNCTION agentmesh.lm_audit_trail(agent_id pg_catalog.text)
	RETURNS SETOF agentmesh.audit_events LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_audit_trail';
CREATE FUNCTION agentmesh.lm_summary()
	RETURNS pg_catalog.jsonb LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_summary';
CREATE FUNCTION agentmesh.lm_verify_audit(agent_id pg_catalog.text DEFAULT NULL,
		OUT intact pg_catalog.bool, OUT events_checked pg_catalog.int8,
		OUT broken_event_id pg_catalog.int8, OUT broken_agent_id pg_catalog.text,
		OUT broken_policy pg_catalog.text, OUT broken_seq pg_catalog.int8,
		OUT problem pg_catalog.text)
	RETURNS record LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_verify_audit';
CREATE FUNCTION agentmesh.lm_transitions()
	RETURNS TABLE (operation pg_catalog.text, from_state agentmesh.lifecycle_state,
				   to_state agentmesh.lifecycle_state, events agentmesh.lifecycle_event_type[])
	LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'lm_transitions';

/* ---------------------------------------------------------------------------
 * Privileges.  PUBLIC gets nothing; the grant table is in docs/roles.md.
 * ------------------------------------------------------------------------- */
REVOKE ALL ON ALL TABLES IN SCHEMA agentmesh FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA agentmesh FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agentmesh FROM PUBLIC;
REVOKE ALL ON TYPE agentmesh.lifecycle_state, agentmesh.lifecycle_event_type,
	agentmesh.credential_grant FROM PUBLIC;
GRANT USAGE ON TYPE agentmesh.lifecycle_state, agentmesh.lifecycle_event_type,
	agentmesh.credential_grant
	TO agentmesh_admin, agentmesh_approver, agentmesh_requester, agentmesh_agent, agentmesh_auditor;

GRANT SELECT ON agentmesh.policies TO agentmesh_admin, agentmesh_approver,
	agentmesh_requester, agentmesh_auditor;
GRANT INSERT, UPDATE ON agentmesh.policies TO agentmesh_admin;
GRANT SELECT ON agentmesh.agents TO agentmesh_admin, agentmesh_approver,
	agentmesh_requester, agentmesh_auditor;
GRANT SELECT ON agentmesh.credentials TO agentmesh_admin, agentmesh_auditor;
GRANT SELECT ON agentmesh.audit_events TO agentmesh_admin, agentmesh_auditor;

GRANT EXECUTE ON FUNCTION
	agentmesh.lm_request(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text,
						 pg_catalog.text, pg_catalog.jsonb, pg_catalog.text),
	agentmesh.lm_activate(pg_catalog.text, pg_catalog.text),
	agentmesh.lm_rotate_credentials(pg_catalog.text, pg_catalog.text)
	TO agentmesh_admin, agentmesh_requester;
GRANT EXECUTE ON FUNCTION
	agentmesh.lm_approve(pg_catalog.text, pg_catalog.text),
	agentmesh.lm_reject(pg_catalog.text, pg_catalog.text, pg_catalog.text)
	TO agentmesh_admin, agentmesh_approver;
GRANT EXECUTE ON FUNCTION
	agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text)
	TO agentmesh_admin, agentmesh_agent;
GRANT EXECUTE ON FUNCTION
	agentmesh.lm_verify_credential(pg_catalog.text)
	TO agentmesh_admin, agentmesh_requester, agentmesh_agent;
GRANT EXECUTE ON FUNCTION
	agentmesh.lm_suspend(pg_catalog.text, pg_catalog.text, pg_catalog.text),
	agentmesh.lm_resume(pg_catalog.text, pg_catalog.text),
	agentmesh.lm_decommission(pg_catalog.text, pg_catalog.text, pg_catalog.text),
	agentmesh.lm_change_owner(pg_catalog.text, pg_catalog.text, pg_catalog.text),
	agentmesh.lm_revoke_credentials(pg_catalog.text, pg_catalog.text, pg_catalog.text),
	agentmesh.lm_check_and_rotate(pg_catalog.timestamptz),
	agentmesh.lm_mark_orphaned(pg_catalog.text, pg_catalog.text),
	agentmesh.lm_reclaim(pg_catalog.text, pg_catalog.text, pg_catalog.text)
	TO agentmesh_admin;
GRANT EXECUTE ON FUNCTION
	agentmesh.lm_get(pg_catalog.text),
	agentmesh.lm_list_by_state(agentmesh.lifecycle_state),
	agentmesh.lm_list_by_owner(pg_catalog.text),
	agentmesh.lm_summary(),
	agentmesh.lm_transitions()
	TO agentmesh_admin, agentmesh_approver, agentmesh_requester, agentmesh_auditor;
GRANT EXECUTE ON FUNCTION
	agentmesh.lm_detect_orphans(pg_catalog.timestamptz)
	TO agentmesh_admin, agentmesh_auditor;
GRANT EXECUTE ON FUNCTION
	agentmesh.lm_audit_trail(pg_catalog.text),
	agentmesh.lm_verify_audit(pg_catalog.text)
	TO agentmesh_admin, agentmesh_auditor;

/* ---- maintenance and seals (worker) ---- */

/*
 * Audit seals, written by lm_run_maintenance() (the worker's pass): each
 * covers every audit event whose xact_id lies in [xmin_from, xmin_to), a
 * range of finished transactions, and is chained to the previous seal.  The
 * hash format is in src/seals.c and docs/audit.md.  Immutable like
 * audit_events; the unique prev_seal_hash makes a forked chain impossible.
 */
CREATE SEQUENCE agentmesh.audit_seals_seal_id_seq;

CREATE TABLE agentmesh.audit_seals (
	seal_id pg_catalog.int8 PRIMARY KEY
		DEFAULT pg_catalog.nextval('agentmesh.audit_seals_seal_id_seq'::pg_catalog.regclass),
	sealed_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
	xmin_from pg_catalog.xid8 NOT NULL,
	xmin_to pg_catalog.xid8 NOT NULL,
	event_count pg_catalog.int8 NOT NULL
		CONSTRAINT audit_seals_event_count_check
		CHECK (event_count OPERATOR(pg_catalog.>) 0),
	first_event_id pg_catalog.int8 NOT NULL,
	last_event_id pg_catalog.int8 NOT NULL,
	prev_seal_hash pg_catalog.bytea,
	seal_hash pg_catalog.bytea NOT NULL
		CONSTRAINT audit_seals_seal_hash_check
		CHECK (pg_catalog.length(seal_hash) OPERATOR(pg_catalog.=) 32),
	CONSTRAINT audit_seals_range_check
		CHECK (xmin_from OPERATOR(pg_catalog.<) xmin_to),
	CONSTRAINT audit_seals_prev_seal_hash_key UNIQUE NULLS NOT DISTINCT (prev_seal_hash)
);
ALTER SEQUENCE agentmesh.audit_seals_seal_id_seq OWNED BY agentmesh.audit_seals.seal_id;
COMMENT ON TABLE agentmesh.audit_seals IS 'Chained SHA-256 seals over ranges of finished transactions'' audit events; written by the maintenance pass.';

/* a seal reads the events of a transaction-id range */
CREATE INDEX audit_events_xact_id_idx ON agentmesh.audit_events (xact_id);

SELECT pg_catalog.pg_extension_config_dump('agentmesh.audit_seals', '');
SELECT pg_catalog.pg_extension_config_dump('agentmesh.audit_seals_seal_id_seq', '');

CREATE TRIGGER audit_seals_immutable BEFORE UPDATE OR DELETE ON agentmesh.audit_seals
	FOR EACH ROW EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON agentmesh.audit_seals
	FOR EACH STATEMENT EXECUTE FUNCTION agentmesh.audit_immutable();
ALTER TABLE agentmesh.audit_seals ENABLE ALWAYS TRIGGER audit_seals_immutable;
ALTER TABLE agentmesh.audit_seals ENABLE ALWAYS TRIGGER audit_seals_no_truncate;

/*
 * One maintenance pass.  Called from SQL it runs in the caller's
 * transaction; the background worker runs the same pass with one
 * transaction per batch.
 */
CREATE FUNCTION agentmesh.lm_run_maintenance(
		as_of pg_catalog.timestamptz DEFAULT pg_catalog.now(),
		batch_size pg_catalog.int4 DEFAULT 1000,
		OUT orphaned pg_catalog.int8, OUT decommissioned pg_catalog.int8,
		OUT heartbeats_missed pg_catalog.int8, OUT rotated pg_catalog.int8,
		OUT issued pg_catalog.int8, OUT expired pg_catalog.int8,
		OUT seals pg_catalog.int8)
	RETURNS record LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_run_maintenance';

/* The workers' state, from shared memory (empty unless preloaded). */
CREATE FUNCTION agentmesh.lm_worker_status(
		OUT datid pg_catalog.oid, OUT datname pg_catalog.name,
		OUT pid pg_catalog.int4, OUT state pg_catalog.text,
		OUT passes pg_catalog.int8, OUT last_pass_start pg_catalog.timestamptz,
		OUT last_pass_duration pg_catalog.interval,
		OUT orphaned pg_catalog.int8, OUT decommissioned pg_catalog.int8,
		OUT heartbeats_missed pg_catalog.int8, OUT rotated pg_catalog.int8,
		OUT issued pg_catalog.int8, OUT expired pg_catalog.int8,
		OUT seals pg_catalog.int8, OUT errors pg_catalog.int8,
		OUT last_error pg_catalog.text, OUT last_error_at pg_catalog.timestamptz)
	RETURNS SETOF record LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_worker_status';

CREATE VIEW agentmesh.worker_status AS
	SELECT datid, datname, pid, state, passes, last_pass_start, last_pass_duration,
		   orphaned, decommissioned, heartbeats_missed, rotated, issued, expired,
		   seals, errors, last_error, last_error_at
	  FROM agentmesh.lm_worker_status();
COMMENT ON VIEW agentmesh.worker_status IS 'Per database: the maintenance worker, its last pass and its last error.';

REVOKE ALL ON agentmesh.audit_seals, agentmesh.worker_status FROM PUBLIC;
REVOKE ALL ON SEQUENCE agentmesh.audit_seals_seal_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION agentmesh.lm_run_maintenance(pg_catalog.timestamptz, pg_catalog.int4),
	agentmesh.lm_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_run_maintenance(pg_catalog.timestamptz, pg_catalog.int4)
	TO agentmesh_admin;
GRANT EXECUTE ON FUNCTION agentmesh.lm_worker_status() TO agentmesh_admin, agentmesh_auditor;
GRANT SELECT ON agentmesh.audit_seals, agentmesh.worker_status TO agentmesh_admin, agentmesh_auditor;

/* ---- 1.1: restore and drop guard ---- */

/*
 * The drop guard: DROP EXTENSION agentmesh_lifecycle and DROP SCHEMA
 * agentmesh are refused while the audit trail holds events, unless a
 * superuser set agentmesh_lifecycle.allow_drop (src/drop_guard.c).  ENABLE
 * ALWAYS, so that session_replication_role = replica does not switch it off.
 */
CREATE FUNCTION agentmesh.drop_guard() RETURNS event_trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'agentmesh_drop_guard';
REVOKE ALL ON FUNCTION agentmesh.drop_guard() FROM PUBLIC;
CREATE EVENT TRIGGER agentmesh_lifecycle_drop_guard ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
	EXECUTE FUNCTION agentmesh.drop_guard();
ALTER EVENT TRIGGER agentmesh_lifecycle_drop_guard ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER agentmesh_lifecycle_drop_guard IS 'Refuses to drop agentmesh_lifecycle while audit rows exist, unless agentmesh_lifecycle.allow_drop is on.';

-- ---- credentials that reach their agents (issue 12) ----

COMMENT ON COLUMN agentmesh.policies.rotate_after IS 'Fraction of a credential''s lifetime after which the maintenance pass rotates it (0 < x <= 1; 0.5 = half-life); it rotates at the latest rotation_overlap before expiry.';
COMMENT ON COLUMN agentmesh.agents.last_used_at IS 'Last successful verification, renewal or claim with any of the agent''s credentials; written at most once a minute per credential, never on a standby.';
COMMENT ON COLUMN agentmesh.credentials.last_used_at IS 'Last successful use of this credential (verification, token heartbeat, renewal, claim); written at most once a minute, never on a standby.';

/*
 * Sealed hand-overs (docs/credentials.md#hand-over).  Whenever a token is
 * issued (activation, rotation, reclaim, renewal, claim) its successor is
 * generated at once, while the token is still in memory, and stored here
 * sealed under a key derived from that token; the database keeps only the
 * seal and the successor's SHA-256.  The maintenance pass later makes the
 * successor a credential (promoted_at) without ever seeing a token, and
 * lm_claim_credential(predecessor token) opens the seal exactly once.
 */
CREATE TABLE agentmesh.credential_handovers (
	predecessor_id pg_catalog.text PRIMARY KEY,
	agent_id pg_catalog.text NOT NULL,
	successor_id pg_catalog.text NOT NULL UNIQUE,
	successor_hash pg_catalog.bytea NOT NULL
		CONSTRAINT credential_handovers_successor_hash_check
		CHECK (pg_catalog.length(successor_hash) OPERATOR(pg_catalog.=) 32),
	sealed pg_catalog.bytea NOT NULL
		CONSTRAINT credential_handovers_sealed_check
		CHECK (pg_catalog.length(sealed) OPERATOR(pg_catalog.=) 108),
	created_at pg_catalog.timestamptz NOT NULL,
	promoted_at pg_catalog.timestamptz
);
COMMENT ON TABLE agentmesh.credential_handovers IS 'Successor tokens sealed under their predecessor''s token (HKDF/HMAC-SHA-256 encrypt-then-MAC); only the predecessor token opens them.';
COMMENT ON COLUMN agentmesh.credential_handovers.predecessor_id IS 'The credential whose token opens the seal.';
COMMENT ON COLUMN agentmesh.credential_handovers.agent_id IS 'The agent of both credentials.';
COMMENT ON COLUMN agentmesh.credential_handovers.successor_id IS 'The credential id the successor has (or will have once the pass promotes it).';
COMMENT ON COLUMN agentmesh.credential_handovers.successor_hash IS 'SHA-256 of the successor token, as credentials.token_hash.';
COMMENT ON COLUMN agentmesh.credential_handovers.sealed IS 'Successor token encrypted and authenticated under keys derived from the predecessor token (76 bytes ciphertext, 32 bytes tag).';
COMMENT ON COLUMN agentmesh.credential_handovers.created_at IS 'When the successor was generated (when the predecessor was issued).';
COMMENT ON COLUMN agentmesh.credential_handovers.promoted_at IS 'When the maintenance pass made the successor a credential; NULL while it is only reserved.';
CREATE INDEX credential_handovers_agent_idx ON agentmesh.credential_handovers (agent_id);
SELECT pg_catalog.pg_extension_config_dump('agentmesh.credential_handovers', '');
REVOKE ALL ON agentmesh.credential_handovers FROM PUBLIC;
GRANT SELECT ON agentmesh.credential_handovers TO agentmesh_admin, agentmesh_auditor;

CREATE FUNCTION agentmesh.lm_renew(token pg_catalog.text)
	RETURNS agentmesh.credential_grant LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_renew';
COMMENT ON FUNCTION agentmesh.lm_renew(pg_catalog.text) IS 'Self-renewal: a live token of an active agent gets its successor (the presented token stays valid for the rotation overlap).';
CREATE FUNCTION agentmesh.lm_claim_credential(token pg_catalog.text)
	RETURNS agentmesh.credential_grant LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_claim_credential';
COMMENT ON FUNCTION agentmesh.lm_claim_credential(pg_catalog.text) IS 'Returns, exactly once, the successor the maintenance pass sealed under the presented token, and erases the sealed copy.';
REVOKE ALL ON FUNCTION agentmesh.lm_renew(pg_catalog.text),
	agentmesh.lm_claim_credential(pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_renew(pg_catalog.text),
	agentmesh.lm_claim_credential(pg_catalog.text) TO agentmesh_admin, agentmesh_agent;
