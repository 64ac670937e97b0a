-- (3) extension: lm_verify_credential(token)
\set i random(1, :n)
SELECT agentmesh.lm_verify_credential(m.token) FROM bench.map m WHERE m.i = :i;
