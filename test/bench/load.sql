-- Load agents :lo .. :hi through the extension's own functions, in one
-- transaction: lm_request -> lm_approve -> lm_activate per agent, every step
-- audited and hash-chained by the extension exactly as for a client.  The
-- agent id and the (shown-once) token go to bench.map for the workloads.
\set ON_ERROR_STOP 1
INSERT INTO bench.map (i, agent_id, token)
SELECT g, gr.agent_id, gr.token
  FROM generate_series(:lo, :hi) g,
       LATERAL agentmesh.lm_request('bench-agent-' || g, 'owner-' || (g % 1000), 'benchmark',
                                    'autonomous', 'loader') r,
       LATERAL agentmesh.lm_approve(r.agent_id, 'approver') ap,
       LATERAL agentmesh.lm_activate(ap.agent_id, 'loader') gr;
