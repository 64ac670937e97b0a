/* agentmesh_lifecycle 1.0 -> 1.1 — upgrade script
 *
 * Every schema change of 1.1 is made twice: in agentmesh_lifecycle--1.1.sql
 * (a fresh install) and here, in the same order where order shows in the
 * catalog (column order, enum label order).  test/t/030_upgrade.pl compares a
 * catalog description of both, object by object, so a change made in only
 * one of the two scripts fails the test command.
 *
 * The same rules as the install script apply: every name schema-qualified,
 * operators inside SQL bodies written as OPERATOR(pg_catalog.x).
 */

\echo Use "ALTER EXTENSION agentmesh_lifecycle UPDATE TO '1.1'" to load this file. \quit

/* ---- 1.1: restore and drop guard ---- */

/*
 * References are checked by agents_guard instead of foreign keys: a
 * parallel pg_restore may load agents before policies, and credentials
 * before agents (see check_policy_exists in src/audit.c).
 */
ALTER TABLE agentmesh.agents DROP CONSTRAINT agents_policy_fkey;
ALTER TABLE agentmesh.credentials DROP CONSTRAINT credentials_agent_id_fkey;

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

/* ---- integrations (issue 13) ---- */

/* lm_transitions().events is text[] from 1.1 on: drivers read it as a list. */
DROP FUNCTION agentmesh.lm_transitions();
CREATE FUNCTION agentmesh.lm_transitions()
	RETURNS TABLE (operation pg_catalog.text, from_state agentmesh.lifecycle_state,
				   to_state agentmesh.lifecycle_state, events pg_catalog.text[])
	LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'lm_transitions';
REVOKE ALL ON FUNCTION agentmesh.lm_transitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_transitions()
	TO agentmesh_admin, agentmesh_approver, agentmesh_requester, agentmesh_auditor;

/* ---- catalog comments (issue 13) ----
 *
 * Every object the extension creates has a comment, so that \d+, \df+ and
 * BI catalogs describe themselves; sql/catalog_comments.sql fails on any
 * member, column or role without one.  Kept in one block, identical in the
 * install and the update script, so fresh and updated catalogs match.
 */
COMMENT ON SCHEMA agentmesh IS 'agentmesh_lifecycle: lifecycle of AI-agent identities';

COMMENT ON TYPE agentmesh.lifecycle_state IS 'Lifecycle state of an agent: pending_approval, provisioned, active, suspended, rotating_credentials, decommissioning, decommissioned, orphaned.';
COMMENT ON TYPE agentmesh.lifecycle_event_type IS 'Type of an audit event; the details keys of each type are listed in docs/audit.md.';
COMMENT ON TYPE agentmesh.credential_grant IS 'Result of lm_activate, lm_rotate_credentials and lm_reclaim: the agent and its new credential, with the token (returned once, never stored). Use SELECT * FROM agentmesh.lm_activate(...).';
COMMENT ON COLUMN agentmesh.credential_grant.agent_id IS 'The agent the credential was issued to.';
COMMENT ON COLUMN agentmesh.credential_grant.state IS 'The agent''s state after the operation.';
COMMENT ON COLUMN agentmesh.credential_grant.credential_id IS 'Id of the new credential (cred:<hex>); not secret.';
COMMENT ON COLUMN agentmesh.credential_grant.credential_issued_at IS 'When the credential was issued.';
COMMENT ON COLUMN agentmesh.credential_grant.credential_expires_at IS 'When the credential expires (issued_at + the policy''s max_credential_ttl).';
COMMENT ON COLUMN agentmesh.credential_grant.token IS 'The secret token (amk_...). Returned only here, only once; only its SHA-256 is stored.';

COMMENT ON TABLE agentmesh.policies IS 'Named lifecycle policies; row ''default'' always exists. Changes are audited.';
COMMENT ON COLUMN agentmesh.policies.name IS 'Policy name (lower-case letters, digits, _ . -); agents refer to it for life, so it cannot be renamed or deleted.';
COMMENT ON COLUMN agentmesh.policies.require_approval IS 'Requests start in pending_approval and need lm_approve (else they are provisioned at once).';
COMMENT ON COLUMN agentmesh.policies.require_owner IS 'A request needs an owner.';
COMMENT ON COLUMN agentmesh.policies.require_distinct_approver IS 'The actor who requested an agent cannot approve it.';
COMMENT ON COLUMN agentmesh.policies.heartbeat_interval IS 'Expected heartbeat period; silence longer than this records heartbeat_missed.';
COMMENT ON COLUMN agentmesh.policies.orphan_threshold IS 'Silence after which an active agent is an orphan candidate.';
COMMENT ON COLUMN agentmesh.policies.max_inactive_days IS 'Days without heartbeat or change after which an agent is reported inactive (1 to 36500).';
COMMENT ON COLUMN agentmesh.policies.max_credential_ttl IS 'Lifetime of an issued credential (positive, at most 366 days).';
COMMENT ON COLUMN agentmesh.policies.rotation_overlap IS 'How long the previous credential stays valid after a rotation; also the pre-expiry rotation window.';
COMMENT ON COLUMN agentmesh.policies.auto_rotate IS 'The maintenance pass rotates expiring credentials.';
COMMENT ON COLUMN agentmesh.policies.revoke_on_decommission IS 'Decommissioning revokes the agent''s credentials.';
COMMENT ON COLUMN agentmesh.policies.heartbeat_requires_token IS 'Heartbeats must carry a live token of the agent.';
COMMENT ON COLUMN agentmesh.policies.audit_heartbeats IS 'Write a heartbeat audit event for every heartbeat.';
COMMENT ON COLUMN agentmesh.policies.auto_decommission IS 'The maintenance pass decommissions orphans inactive past max_inactive_days.';
COMMENT ON COLUMN agentmesh.policies.created_at IS 'When the policy was created.';
COMMENT ON COLUMN agentmesh.policies.updated_at IS 'When the policy was last changed.';
COMMENT ON COLUMN agentmesh.policies.audit_seq IS 'Sequence number of the policy''s last audit event (its hash chain head); set by the trigger.';
COMMENT ON COLUMN agentmesh.policies.audit_head IS 'SHA-256 of the policy''s last audit event (its hash chain head); set by the trigger.';

COMMENT ON TABLE agentmesh.agents IS 'One row per agent identity; never deleted (decommissioned rows are tombstones).';
COMMENT ON COLUMN agentmesh.agents.agent_id IS 'Agent id: agent: followed by 128 random bits in hex.';
COMMENT ON COLUMN agentmesh.agents.name IS 'Display name given at request.';
COMMENT ON COLUMN agentmesh.agents.owner IS 'Accountable person or team; NULL only under a policy without require_owner.';
COMMENT ON COLUMN agentmesh.agents.purpose IS 'Free-text purpose given at request.';
COMMENT ON COLUMN agentmesh.agents.agent_type IS 'Kind of agent (default autonomous); free text.';
COMMENT ON COLUMN agentmesh.agents.state IS 'Current lifecycle state; changes only along lm_transitions().';
COMMENT ON COLUMN agentmesh.agents.policy IS 'Name of the policy (agentmesh.policies) that governs the agent.';
COMMENT ON COLUMN agentmesh.agents.credential_id IS 'Id of the newest credential, or NULL before activation.';
COMMENT ON COLUMN agentmesh.agents.credential_issued_at IS 'When the newest credential was issued.';
COMMENT ON COLUMN agentmesh.agents.credential_expires_at IS 'When the newest credential expires.';
COMMENT ON COLUMN agentmesh.agents.last_heartbeat IS 'Time of the last heartbeat, or NULL if none was ever sent.';
COMMENT ON COLUMN agentmesh.agents.heartbeat_count IS 'Number of heartbeats received.';
COMMENT ON COLUMN agentmesh.agents.created_at IS 'When the agent was requested.';
COMMENT ON COLUMN agentmesh.agents.updated_at IS 'When the row last changed other than by a heartbeat.';
COMMENT ON COLUMN agentmesh.agents.activated_at IS 'When the agent was first activated.';
COMMENT ON COLUMN agentmesh.agents.decommissioned_at IS 'When the agent was decommissioned or rejected.';
COMMENT ON COLUMN agentmesh.agents.tags IS 'Caller-defined labels (a flat jsonb object).';
COMMENT ON COLUMN agentmesh.agents.requested_by IS 'Actor who requested the agent (checked by require_distinct_approver).';
COMMENT ON COLUMN agentmesh.agents.heartbeat_missed_at IS 'When the maintenance pass last recorded a missed heartbeat; cleared by the next heartbeat.';
COMMENT ON COLUMN agentmesh.agents.audit_seq IS 'Sequence number of the agent''s last audit event (its hash chain head); set by the trigger.';
COMMENT ON COLUMN agentmesh.agents.audit_head IS 'SHA-256 of the agent''s last audit event (its hash chain head); set by the trigger.';

COMMENT ON TABLE agentmesh.credentials IS 'Issued credentials; token_hash is SHA-256 of the token, which is never stored.';
COMMENT ON COLUMN agentmesh.credentials.credential_id IS 'Credential id: cred: followed by random hex; not secret.';
COMMENT ON COLUMN agentmesh.credentials.agent_id IS 'The agent the credential belongs to.';
COMMENT ON COLUMN agentmesh.credentials.token_hash IS 'SHA-256 of the token (32 bytes); the token itself is never stored.';
COMMENT ON COLUMN agentmesh.credentials.issued_at IS 'When the credential was issued.';
COMMENT ON COLUMN agentmesh.credentials.expires_at IS 'When the credential stops verifying.';
COMMENT ON COLUMN agentmesh.credentials.superseded_at IS 'When a rotation replaced it; it verifies until the end of the rotation overlap.';
COMMENT ON COLUMN agentmesh.credentials.revoked_at IS 'When it was revoked, or NULL.';
COMMENT ON COLUMN agentmesh.credentials.revoke_reason IS 'Why it was revoked (operator text, or decommissioned / reclaimed / rotated).';
COMMENT ON COLUMN agentmesh.credentials.expired_recorded IS 'A credential_expired event was written for it (at most once).';

COMMENT ON SEQUENCE agentmesh.audit_events_event_id_seq IS 'Assigns audit_events.event_id at insert: ids are unique but do not follow commit order (see lm_events).';
COMMENT ON TABLE agentmesh.audit_events IS 'Immutable, hash-chained audit trail written by triggers in the transaction of each change.';
COMMENT ON COLUMN agentmesh.audit_events.event_id IS 'Unique id, assigned at insert (not in commit order).';
COMMENT ON COLUMN agentmesh.audit_events.agent_id IS 'The agent the event is about, or NULL for a policy event.';
COMMENT ON COLUMN agentmesh.audit_events.policy IS 'The policy the event is about (policy_changed), or NULL for an agent event.';
COMMENT ON COLUMN agentmesh.audit_events.seq IS 'Position in the subject''s hash chain: 1, 2, ... per agent or policy.';
COMMENT ON COLUMN agentmesh.audit_events.event_type IS 'What happened.';
COMMENT ON COLUMN agentmesh.audit_events.occurred_at IS 'Transaction time of the change.';
COMMENT ON COLUMN agentmesh.audit_events.actor IS 'The person or system the caller said it acted for (a claim), or session_user.';
COMMENT ON COLUMN agentmesh.audit_events.db_user IS 'The authenticated session_user that made the change.';
COMMENT ON COLUMN agentmesh.audit_events.previous_state IS 'State before the event, or NULL if the state did not change.';
COMMENT ON COLUMN agentmesh.audit_events.new_state IS 'State after the event, or NULL if the state did not change.';
COMMENT ON COLUMN agentmesh.audit_events.details IS 'Event-specific data; keys per event type in docs/audit.md. Never holds a token.';
COMMENT ON COLUMN agentmesh.audit_events.prev_hash IS 'Hash of the previous event of the same subject, or NULL for the first.';
COMMENT ON COLUMN agentmesh.audit_events.hash IS 'SHA-256 of the canonical encoding of this event and prev_hash (docs/audit.md).';
COMMENT ON COLUMN agentmesh.audit_events.xact_id IS 'Id of the inserting transaction; seals and lm_events read events by it.';

COMMENT ON SEQUENCE agentmesh.audit_seals_seal_id_seq IS 'Assigns audit_seals.seal_id.';
COMMENT ON TABLE agentmesh.audit_seals IS 'Chained SHA-256 seals over ranges of finished transactions'' audit events; written by the maintenance pass.';
COMMENT ON COLUMN agentmesh.audit_seals.seal_id IS 'Seal number, in chain order.';
COMMENT ON COLUMN agentmesh.audit_seals.sealed_at IS 'When the seal was written.';
COMMENT ON COLUMN agentmesh.audit_seals.xmin_from IS 'First transaction id of the sealed range (inclusive).';
COMMENT ON COLUMN agentmesh.audit_seals.xmin_to IS 'End of the sealed range (exclusive): the sealing snapshot''s xmin.';
COMMENT ON COLUMN agentmesh.audit_seals.event_count IS 'Number of events sealed.';
COMMENT ON COLUMN agentmesh.audit_seals.first_event_id IS 'Smallest event_id sealed.';
COMMENT ON COLUMN agentmesh.audit_seals.last_event_id IS 'Largest event_id sealed.';
COMMENT ON COLUMN agentmesh.audit_seals.prev_seal_hash IS 'seal_hash of the previous seal, or NULL for the first; unique, so the chain cannot fork.';
COMMENT ON COLUMN agentmesh.audit_seals.seal_hash IS 'SHA-256 over the range and the sealed events'' ids and hashes, chained to prev_seal_hash (docs/audit.md).';

COMMENT ON VIEW agentmesh.worker_status IS 'Per database: the maintenance worker, its last pass and its last error.';
COMMENT ON COLUMN agentmesh.worker_status.datid IS 'OID of the database.';
COMMENT ON COLUMN agentmesh.worker_status.datname IS 'Name of the database.';
COMMENT ON COLUMN agentmesh.worker_status.pid IS 'Process id of the database''s worker, or NULL when none runs.';
COMMENT ON COLUMN agentmesh.worker_status.state IS 'What the worker is doing: starting, probing, idle, running, stopped, ...';
COMMENT ON COLUMN agentmesh.worker_status.passes IS 'Maintenance passes completed since the server started.';
COMMENT ON COLUMN agentmesh.worker_status.last_pass_start IS 'When the last completed pass started.';
COMMENT ON COLUMN agentmesh.worker_status.last_pass_duration IS 'How long the last completed pass took.';
COMMENT ON COLUMN agentmesh.worker_status.orphaned IS 'Agents the last pass marked orphaned.';
COMMENT ON COLUMN agentmesh.worker_status.decommissioned IS 'Agents the last pass decommissioned.';
COMMENT ON COLUMN agentmesh.worker_status.heartbeats_missed IS 'Missed heartbeats the last pass recorded.';
COMMENT ON COLUMN agentmesh.worker_status.rotated IS 'Credentials the last pass rotated.';
COMMENT ON COLUMN agentmesh.worker_status.issued IS 'Credentials the last pass issued to agents without one.';
COMMENT ON COLUMN agentmesh.worker_status.expired IS 'Credential expiries the last pass recorded.';
COMMENT ON COLUMN agentmesh.worker_status.seals IS 'Audit seals the last pass wrote (0 or 1).';
COMMENT ON COLUMN agentmesh.worker_status.errors IS 'Passes that failed since the server started.';
COMMENT ON COLUMN agentmesh.worker_status.last_error IS 'Message of the last failed pass.';
COMMENT ON COLUMN agentmesh.worker_status.last_error_at IS 'When the last pass failed.';

COMMENT ON FUNCTION agentmesh.agents_guard() IS 'Trigger on agents: checks every change against the transition table, writes its audit events, keeps audit rows immutable. Not callable.';
COMMENT ON FUNCTION agentmesh.policies_guard() IS 'Trigger on policies: validates values, refuses renames and deletes, writes policy_changed events. Not callable.';
COMMENT ON FUNCTION agentmesh.audit_immutable() IS 'Trigger refusing UPDATE, DELETE and TRUNCATE of audit rows (55000). Not callable.';
COMMENT ON FUNCTION agentmesh.drop_guard() IS 'Event trigger function refusing DROP EXTENSION/SCHEMA while audit rows exist, unless agentmesh_lifecycle.allow_drop is on.';

COMMENT ON FUNCTION agentmesh.lm_request(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.text) IS 'lm_request(name, owner, purpose DEFAULT '''', agent_type DEFAULT ''autonomous'', actor DEFAULT session_user, tags DEFAULT ''{}'', policy DEFAULT ''default''): requests a new agent; returns its row, in pending_approval (or provisioned when the policy needs no approval).';
COMMENT ON FUNCTION agentmesh.lm_approve(pg_catalog.text, pg_catalog.text) IS 'lm_approve(agent_id, actor DEFAULT session_user): pending_approval -> provisioned; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_reject(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_reject(agent_id, reason DEFAULT '''', actor DEFAULT session_user): pending_approval -> decommissioned; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_activate(pg_catalog.text, pg_catalog.text) IS 'lm_activate(agent_id, actor DEFAULT session_user): provisioned -> active with a first credential. Returns credential_grant: SELECT * FROM agentmesh.lm_activate($1).';
COMMENT ON FUNCTION agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text) IS 'lm_heartbeat(agent_id, token DEFAULT NULL): records a heartbeat of an active, suspended or orphaned agent (token checked if given or required); returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_suspend(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_suspend(agent_id, reason DEFAULT '''', actor DEFAULT session_user): active -> suspended; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_resume(pg_catalog.text, pg_catalog.text) IS 'lm_resume(agent_id, actor DEFAULT session_user): suspended -> active; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_decommission(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_decommission(agent_id, reason DEFAULT '''', actor DEFAULT session_user): any live state -> decommissioned (credentials revoked per policy); returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_change_owner(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_change_owner(agent_id, new_owner, actor DEFAULT session_user): sets a new owner; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_rotate_credentials(pg_catalog.text, pg_catalog.text) IS 'lm_rotate_credentials(agent_id, actor DEFAULT session_user): issues a new credential, the previous one valid for rotation_overlap. Returns credential_grant: SELECT * FROM agentmesh.lm_rotate_credentials($1).';
COMMENT ON FUNCTION agentmesh.lm_revoke_credentials(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_revoke_credentials(agent_id, reason, actor DEFAULT session_user): revokes every credential of the agent at once; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_verify_credential(pg_catalog.text) IS 'lm_verify_credential(token): the agent id the token belongs to if it is live and the agent active, else NULL; never raises, writes nothing.';
COMMENT ON FUNCTION agentmesh.lm_check_and_rotate(pg_catalog.timestamptz) IS 'lm_check_and_rotate(as_of DEFAULT now()): applies the rotation policy to every active agent; returns (agent_id, action issued/rotated/expired/ok, detail).';
COMMENT ON FUNCTION agentmesh.lm_detect_orphans(pg_catalog.timestamptz) IS 'lm_detect_orphans(as_of DEFAULT now()): read-only; one row per orphan reason (silent, never_heartbeat, no_owner, inactive) of each live agent.';
COMMENT ON FUNCTION agentmesh.lm_mark_orphaned(pg_catalog.text, pg_catalog.text) IS 'lm_mark_orphaned(agent_id, actor DEFAULT session_user): active -> orphaned; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_reclaim(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_reclaim(agent_id, new_owner, actor DEFAULT session_user): orphaned -> active with a new owner and credential, old credentials revoked. Returns credential_grant: SELECT * FROM agentmesh.lm_reclaim($1, $2).';
COMMENT ON FUNCTION agentmesh.lm_get(pg_catalog.text) IS 'lm_get(agent_id): the agent row, or NULL. SELECT * FROM agentmesh.lm_get($1).';
COMMENT ON FUNCTION agentmesh.lm_list_by_state(agentmesh.lifecycle_state) IS 'lm_list_by_state(state): the agents in that state.';
COMMENT ON FUNCTION agentmesh.lm_list_by_owner(pg_catalog.text) IS 'lm_list_by_owner(owner): the agents of that owner.';
COMMENT ON FUNCTION agentmesh.lm_audit_trail(pg_catalog.text) IS 'lm_audit_trail(agent_id): the agent''s audit events in chain order.';
COMMENT ON FUNCTION agentmesh.lm_summary() IS 'lm_summary(): jsonb with total_agents, by_state and by_owner counts. For monitoring use agentmesh.fleet_metrics.';
COMMENT ON FUNCTION agentmesh.lm_verify_audit(pg_catalog.text) IS 'lm_verify_audit(agent_id DEFAULT NULL): recomputes the hash chains (and, without an agent, the seals); returns (intact, events_checked, broken_event_id, broken_agent_id, broken_policy, broken_seq, problem): SELECT * FROM agentmesh.lm_verify_audit().';
COMMENT ON FUNCTION agentmesh.lm_transitions() IS 'lm_transitions(): the transition table the code enforces, one row per (operation, from_state) with to_state and the events (text[]) it writes.';
COMMENT ON FUNCTION agentmesh.lm_run_maintenance(pg_catalog.timestamptz, pg_catalog.int4) IS 'lm_run_maintenance(as_of DEFAULT now(), batch_size DEFAULT 1000): one maintenance pass in the caller''s transaction; returns its counts: SELECT * FROM agentmesh.lm_run_maintenance(). Schedulers use CALL agentmesh.run_maintenance().';
COMMENT ON FUNCTION agentmesh.lm_worker_status() IS 'lm_worker_status(): the workers'' shared-memory state and recorded run_maintenance runs; read it through the view agentmesh.worker_status.';

COMMENT ON ROLE agentmesh_admin IS 'agentmesh_lifecycle group role: every operation, policy changes, reads of everything (docs/roles.md).';
COMMENT ON ROLE agentmesh_approver IS 'agentmesh_lifecycle group role: approves or rejects requested agents, reads agents and policies.';
COMMENT ON ROLE agentmesh_requester IS 'agentmesh_lifecycle group role: requests, activates and rotates agents, verifies credentials.';
COMMENT ON ROLE agentmesh_agent IS 'agentmesh_lifecycle group role for agents themselves: heartbeats and credential verification only.';
COMMENT ON ROLE agentmesh_auditor IS 'agentmesh_lifecycle group role: read-only access to agents, credentials (hashes), the audit trail, seals and the views.';
