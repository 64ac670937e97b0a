-- (3) baseline: SELECT by SHA-256 of the token on an indexed plain copy of
-- agentmesh.credentials.
\set i random(1, :n)
SELECT c.agent_id FROM bench.map m JOIN bench.credentials_plain c
    ON c.token_hash = sha256(convert_to(m.token, 'UTF8'))
 WHERE m.i = :i AND c.revoked_at IS NULL AND c.expires_at > now();
