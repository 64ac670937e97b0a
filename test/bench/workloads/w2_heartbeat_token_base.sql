-- (2) baseline: the same UPDATE plus a SELECT by SHA-256 of the token on an
-- indexed plain copy of agentmesh.credentials, in one statement (one round
-- trip, like the extension's call): the row is updated only if the token is
-- a live credential of that agent.
\set i random(1, :n)
WITH m AS (SELECT m.agent_id, m.token FROM bench.map m WHERE m.i = :i),
c AS (SELECT c.agent_id FROM bench.credentials_plain c, m
       WHERE c.token_hash = sha256(convert_to(m.token, 'UTF8')) AND c.agent_id = m.agent_id
         AND c.revoked_at IS NULL AND c.expires_at > now())
UPDATE bench.agents_plain a SET last_heartbeat = now(), heartbeat_count = a.heartbeat_count + 1
  FROM c WHERE a.agent_id = c.agent_id;
