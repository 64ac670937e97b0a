-- Included by sql/core_audit.sql (\i) and scripts/demo.sql (\ir): the audit
-- hash recomputed in plain SQL with pgcrypto, independently of the C code.
-- pg_temp.recompute(e) is the hash of event e under the canonical encoding,
-- version 1 (src/audit.c; docs/audit.md):
--   byte 1 | text agent_id | text policy | int64 seq | text event_type |
--   int64 occurred_at (microseconds since 1970-01-01 UTC) | text actor |
--   text db_user | text previous_state | text new_state | text details |
--   bytes prev_hash;  text/bytes = int32 length + bytes, -1 for NULL
CREATE FUNCTION pg_temp.t(x text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN x IS NULL THEN '\xffffffff'::bytea
				ELSE int4send(octet_length(convert_to(x, 'UTF8'))) || convert_to(x, 'UTF8') END
$$;
CREATE FUNCTION pg_temp.recompute(e agentmesh.audit_events) RETURNS bytea LANGUAGE sql AS $$
	SELECT digest('\x01'::bytea
		|| pg_temp.t(e.agent_id) || pg_temp.t(e.policy)
		|| int8send(e.seq)
		|| pg_temp.t(e.event_type::text)
		|| int8send((extract(epoch FROM e.occurred_at) * 1000000)::int8)
		|| pg_temp.t(e.actor) || pg_temp.t(e.db_user)
		|| pg_temp.t(e.previous_state::text) || pg_temp.t(e.new_state::text)
		|| pg_temp.t(e.details::text)
		|| CASE WHEN e.prev_hash IS NULL THEN '\xffffffff'::bytea
				ELSE int4send(length(e.prev_hash)) || e.prev_hash END,
		'sha256')
$$;
