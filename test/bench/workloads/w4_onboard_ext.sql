-- (4) extension: request -> approve -> activate in one client transaction.
BEGIN;
SELECT r.agent_id FROM agentmesh.lm_request('bench-new-' || :client_id::text, 'owner-' || :client_id::text,
    'benchmark', 'autonomous', 'alice') r \gset
SELECT a.state FROM agentmesh.lm_approve(:agent_id, 'bob') a;
SELECT g.token FROM agentmesh.lm_activate(:agent_id, 'alice') g;
END;
