-- (5) extension: lm_rotate_credentials(agent_id)
\set i random(1, :n)
SELECT g.token FROM bench.map m, LATERAL agentmesh.lm_rotate_credentials(m.agent_id, 'bench') g WHERE m.i = :i;
