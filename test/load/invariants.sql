-- One row per invariant: name | true/false.  Run after the load.
SELECT 'every agent is in a state of the transition table (never decommissioning/rotating_credentials)',
       bool_and(a.state IN (SELECT to_state FROM agentmesh.lm_transitions()))
  FROM agentmesh.agents a;
SELECT 'every state change has its audit row (latest event state = agent state, seq = head)',
       bool_and(a.audit_seq = (SELECT count(*) FROM agentmesh.audit_events e WHERE e.agent_id = a.agent_id)
            AND a.state = (SELECT e.new_state FROM agentmesh.audit_events e
                            WHERE e.agent_id = a.agent_id AND e.new_state IS NOT NULL
                            ORDER BY e.seq DESC LIMIT 1))
  FROM agentmesh.agents a;
SELECT 'every completed cycle has requested, approved, activated, decommission_started, decommissioned',
       coalesce(bool_and((SELECT array_agg(e.event_type::text ORDER BY e.seq) FROM agentmesh.audit_events e
                          WHERE e.agent_id = t.agent_id)
                         = ARRAY['requested', 'approved', 'activated', 'decommission_started', 'decommissioned']), true)
  FROM load_cycle_tokens t;
SELECT 'every rotation has its credential_rotated event and credential row',
       (SELECT count(*) FROM agentmesh.audit_events WHERE event_type = 'credential_rotated')
     = (SELECT count(*) FROM agentmesh.credentials) - (SELECT count(*) FROM agentmesh.audit_events
                                                       WHERE event_type IN ('activated'));
SELECT 'at most two credentials usable per agent',
       coalesce(max(n) <= 2, true)
  FROM (SELECT agent_id, count(*) n FROM agentmesh.credentials
         WHERE revoked_at IS NULL AND expires_at > now() GROUP BY agent_id) c;
SELECT 'no credential of a non-active agent verifies (decommissioned cycle agents)',
       coalesce(bool_and(agentmesh.lm_verify_credential(tok) IS NULL), true)
  FROM load_cycle_tokens;
SELECT 'no credential of a non-active agent is left unrevoked',
       NOT EXISTS (SELECT FROM agentmesh.credentials c JOIN agentmesh.agents a USING (agent_id)
                    WHERE a.state = 'decommissioned' AND c.revoked_at IS NULL AND c.expires_at > now());
SELECT 'every chain (and seal) verifies', (agentmesh.lm_verify_audit()).intact;
