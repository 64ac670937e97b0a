-- Included by the core_* regression tests (\i test/fingerprint.sql):
-- pg_temp.fp() is a fingerprint of every table of the extension, compared
-- before and after a failing call to show that nothing changed.
CREATE FUNCTION pg_temp.fp() RETURNS text LANGUAGE sql AS $$
	SELECT md5(coalesce((SELECT string_agg(a::text, ',' ORDER BY agent_id) FROM agentmesh.agents a), ''))
		|| md5(coalesce((SELECT string_agg(c::text, ',' ORDER BY credential_id) FROM agentmesh.credentials c), ''))
		|| md5(coalesce((SELECT string_agg(e::text, ',' ORDER BY event_id) FROM agentmesh.audit_events e), ''))
		|| md5(coalesce((SELECT string_agg(p::text, ',' ORDER BY name) FROM agentmesh.policies p), ''))
$$;
