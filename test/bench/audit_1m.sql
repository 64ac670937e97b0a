-- Audit verification, Merkle tree and proofs at 1 000 000 events (issue 11;
-- docs/performance.md). Run with psql -X -f on an empty database with the
-- extension created and agentmesh_lifecycle.enabled = off; takes a few minutes.
\timing on
SELECT count(agentmesh.lm_request('n' || i, 'o')) FROM generate_series(1, 250000) i;
SELECT seals FROM agentmesh.lm_run_maintenance();
UPDATE agentmesh.agents SET purpose = 'p1';
SELECT seals FROM agentmesh.lm_run_maintenance();
UPDATE agentmesh.agents SET purpose = 'p2';
SELECT seals FROM agentmesh.lm_run_maintenance();
UPDATE agentmesh.agents SET purpose = 'p3';
SELECT seals FROM agentmesh.lm_run_maintenance();
SELECT count(*) FROM agentmesh.audit_events;
SELECT * FROM agentmesh.lm_audit_checkpoint();
-- idle passes (nothing to seal)
SELECT seals FROM agentmesh.lm_run_maintenance();
SELECT seals FROM agentmesh.lm_run_maintenance();
SELECT seals FROM agentmesh.lm_run_maintenance();
-- 10 000 new events, then the pass that seals them (x3)
UPDATE agentmesh.agents SET purpose = 'q1' WHERE name IN (SELECT 'n' || i FROM generate_series(1, 10000) i);
SELECT seals FROM agentmesh.lm_run_maintenance();
UPDATE agentmesh.agents SET purpose = 'q2' WHERE name IN (SELECT 'n' || i FROM generate_series(10001, 20000) i);
SELECT seals FROM agentmesh.lm_run_maintenance();
UPDATE agentmesh.agents SET purpose = 'q3' WHERE name IN (SELECT 'n' || i FROM generate_series(20001, 30000) i);
SELECT seals FROM agentmesh.lm_run_maintenance();
SELECT tree_size FROM agentmesh.lm_audit_checkpoint();
SELECT tree_size FROM agentmesh.lm_audit_checkpoint();
SELECT tree_size FROM agentmesh.lm_audit_checkpoint();
SELECT cardinality(proof) FROM agentmesh.lm_audit_consistency_proof(123457);
SELECT cardinality(proof) FROM agentmesh.lm_audit_consistency_proof(777777, 1000001);
SELECT cardinality(proof) FROM agentmesh.lm_audit_consistency_proof(1000000);
SELECT cardinality(proof) FROM agentmesh.lm_audit_inclusion_proof(5);
SELECT cardinality(proof) FROM agentmesh.lm_audit_inclusion_proof(654321);
SELECT cardinality(proof) FROM agentmesh.lm_audit_inclusion_proof(999999, 1000000);
SELECT pg_total_relation_size('agentmesh.audit_tree') AS tree_bytes,
       pg_relation_size('agentmesh.audit_tree') AS tree_heap,
       pg_total_relation_size('agentmesh.audit_checkpoints') AS cp_bytes,
       (SELECT count(*) FROM agentmesh.audit_tree) AS tree_rows,
       pg_total_relation_size('agentmesh.audit_events') AS events_bytes,
       (SELECT tree_size FROM agentmesh.lm_audit_checkpoint()) AS leaves;
SELECT intact, events_checked FROM agentmesh.lm_verify_audit();
SELECT count(*) FROM agentmesh.lm_verify_audit_problems();
