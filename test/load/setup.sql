-- Load-test population: :nagents active agents with their first token.
CREATE EXTENSION IF NOT EXISTS agentmesh_lifecycle;
CREATE TABLE load_agents (n int PRIMARY KEY, agent_id text NOT NULL, tok text NOT NULL);
CREATE TABLE load_cycle_tokens (agent_id text, tok text);
INSERT INTO load_agents
SELECT i, g.agent_id, g.token
  FROM generate_series(1, :nagents) i,
       LATERAL (SELECT (agentmesh.lm_request('load-' || i, 'owner' || (i % 50) || '@example.com')).agent_id) r(id),
       LATERAL (SELECT agentmesh.lm_approve(r.id, 'approver')) ap,
       LATERAL agentmesh.lm_activate(r.id) g;
ANALYZE load_agents;
