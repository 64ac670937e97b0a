-- a full lifecycle of a new agent: request, approve, activate, decommission
SELECT agent_id AS cid FROM agentmesh.lm_request('cycle', 'load@example.com')
\gset
SELECT 1 FROM agentmesh.lm_approve(:cid, 'approver');
INSERT INTO load_cycle_tokens SELECT agent_id, token FROM agentmesh.lm_activate(:cid);
SELECT 1 FROM agentmesh.lm_decommission(:cid, 'load test');
