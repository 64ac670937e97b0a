--
-- audit_tree: the RFC 6962 Merkle code against the published test vectors,
-- and the real tree over sealed events: checkpoints, proofs, their errors
-- and who may read them.
--
-- The vectors are Certificate Transparency's, as published in
-- transparency-dev/merkle: testonly/constants.go (LeafInputs, RootHashes)
-- and proof/verify_test.go (inclusionProofs, consistencyProofs; leaf numbers
-- there count from 1), reproduced here by value.  The merkle code is reached
-- through test-only C entry points of the extension's library, bound in
-- pg_temp for this session only: they are not part of the extension's SQL API.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.mroot(bytea[], int8) RETURNS bytea
	LANGUAGE c STRICT AS 'agentmesh_lifecycle', 'am_merkle_test_root';
CREATE FUNCTION pg_temp.mincl(bytea[], int8, int8) RETURNS bytea[]
	LANGUAGE c STRICT AS 'agentmesh_lifecycle', 'am_merkle_test_inclusion';
CREATE FUNCTION pg_temp.mcons(bytea[], int8, int8) RETURNS bytea[]
	LANGUAGE c STRICT AS 'agentmesh_lifecycle', 'am_merkle_test_consistency';
CREATE TEMP TABLE ct AS SELECT ARRAY['\x'::bytea, '\x00', '\x10', '\x2021', '\x3031',
	'\x40414243', '\x5051525354555657', '\x606162636465666768696a6b6c6d6e6f'] AS leaves;
CREATE FUNCTION pg_temp.hx(bytea[]) RETURNS text[] LANGUAGE sql
	AS $$ SELECT array_agg(encode(h, 'hex') ORDER BY o) FROM unnest($1) WITH ORDINALITY u(h, o) $$;

-- roots of sizes 0..8
SELECT n, encode(pg_temp.mroot(leaves, n), 'hex') = want AS root_ok
  FROM ct, (VALUES
	(0, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'),
	(1, '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'),
	(2, 'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'),
	(3, 'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77'),
	(4, 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'),
	(5, '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4'),
	(6, '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef'),
	(7, 'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c'),
	(8, '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328')) v(n, want)
 ORDER BY n;

-- inclusion proofs (leaf index from 0)
SELECT i, n, pg_temp.hx(pg_temp.mincl(leaves, i, n)) IS NOT DISTINCT FROM want AS proof_ok
  FROM ct, (VALUES
	(0, 1, NULL::text[]),
	(0, 8, ARRAY['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
				 '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
				 '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']),
	(5, 8, ARRAY['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
				 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
				 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']),
	(2, 3, ARRAY['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']),
	(1, 5, ARRAY['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
				 '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
				 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'])) v(i, n, want)
 ORDER BY n, i;

-- consistency proofs
SELECT m, n, pg_temp.hx(pg_temp.mcons(leaves, m, n)) IS NOT DISTINCT FROM want AS proof_ok
  FROM ct, (VALUES
	(1, 1, NULL::text[]),
	(1, 8, ARRAY['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
				 '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
				 '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']),
	(6, 8, ARRAY['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
				 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
				 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']),
	(2, 5, ARRAY['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
				 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']),
	(6, 7, ARRAY['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
				 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
				 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'])) v(m, n, want)
 ORDER BY n, m;

-- the real tree: empty before the first seal
SELECT tree_size, encode(root_hash, 'hex') AS root_hash, seal_id,
	   origin ~ '^agentmesh-lifecycle\.invalid/audit/[0-9a-f]{32}$' AS origin_ok
  FROM agentmesh.lm_audit_checkpoint();

SELECT (agentmesh.lm_request('t1', 'o')).agent_id AS a \gset
SELECT state FROM agentmesh.lm_approve(:'a');
SELECT seals FROM agentmesh.lm_run_maintenance();
SELECT (agentmesh.lm_request('t2', 'o')).agent_id AS b \gset
SELECT seals FROM agentmesh.lm_run_maintenance();
SELECT state FROM agentmesh.lm_approve(:'b');

-- leaves: the sealed events in seal order, then event id; the root is the
-- vector-tested code's root over their hashes, and matches each checkpoint
CREATE TEMP TABLE sealed AS
SELECT e.event_id, e.hash, row_number() OVER (ORDER BY s.seal_id, e.event_id) - 1 AS leaf, s.seal_id
  FROM agentmesh.audit_seals s JOIN agentmesh.audit_events e
	ON e.xact_id >= s.xmin_from AND e.xact_id < s.xmin_to;
SELECT count(*) AS sealed_events FROM sealed;
SELECT c.tree_size, c.root_hash = pg_temp.mroot((SELECT array_agg(hash ORDER BY leaf) FROM sealed), c.tree_size) AS root_ok
  FROM agentmesh.audit_checkpoints c ORDER BY c.seal_id;
SELECT bool_and(t.hash = sha256('\x00'::bytea || s.hash)) AS leaf_hashes_ok, count(*) AS leaves
  FROM sealed s JOIN agentmesh.audit_tree t ON t.level = 0 AND t.idx = s.leaf AND t.event_id = s.event_id;
SELECT c.tree_size, c.seal_id = (SELECT max(seal_id) FROM agentmesh.audit_seals) AS last_seal,
	   c.root_hash = pg_temp.mroot((SELECT array_agg(hash ORDER BY leaf) FROM sealed), c.tree_size) AS root_ok,
	   c.checkpoint = c.origin || E'\n' || c.tree_size || E'\n' || encode(c.root_hash, 'base64') || E'\n' AS note_ok
  FROM agentmesh.lm_audit_checkpoint() c;

-- proofs are the vector-tested code's proofs over the same leaves
SELECT s.leaf, p.leaf_index = s.leaf AS index_ok, p.tree_size,
	   p.leaf_hash = sha256('\x00'::bytea || s.hash) AS leaf_ok,
	   p.proof IS NOT DISTINCT FROM pg_temp.mincl((SELECT array_agg(hash ORDER BY leaf) FROM sealed), s.leaf, 3) AS proof_ok
  FROM sealed s, agentmesh.lm_audit_inclusion_proof(s.event_id) p ORDER BY s.leaf;
SELECT p.old_size, p.new_size,
	   p.proof IS NOT DISTINCT FROM pg_temp.mcons((SELECT array_agg(hash ORDER BY leaf) FROM sealed), m, 3) AS proof_ok
  FROM generate_series(0, 3) m, agentmesh.lm_audit_consistency_proof(m) p ORDER BY m;
SELECT cardinality(proof) FROM agentmesh.lm_audit_inclusion_proof(
	(SELECT event_id FROM sealed WHERE leaf = 0), 1);
SELECT cardinality(proof) FROM agentmesh.lm_audit_consistency_proof(1, 2);

-- refusals: 22023 for sizes outside 0..current, 42704 for no such event,
-- 55000 for an event not sealed yet
\set VERBOSITY sqlstate
SELECT * FROM agentmesh.lm_audit_consistency_proof(-1);
SELECT * FROM agentmesh.lm_audit_consistency_proof(4);
SELECT * FROM agentmesh.lm_audit_consistency_proof(2, 1);
SELECT * FROM agentmesh.lm_audit_consistency_proof(1, 99);
SELECT * FROM agentmesh.lm_audit_consistency_proof(NULL);
SELECT * FROM agentmesh.lm_audit_inclusion_proof(NULL);
SELECT * FROM agentmesh.lm_audit_inclusion_proof(-5);
SELECT * FROM agentmesh.lm_audit_inclusion_proof((SELECT max(event_id) FROM agentmesh.audit_events));
SELECT * FROM agentmesh.lm_audit_inclusion_proof((SELECT event_id FROM sealed WHERE leaf = 2), 2);
SELECT * FROM agentmesh.lm_audit_inclusion_proof((SELECT event_id FROM sealed WHERE leaf = 0), 0);
\set VERBOSITY default
SELECT * FROM agentmesh.lm_audit_consistency_proof(4);
\set VERBOSITY terse

-- the tree is immutable like the seals
\set VERBOSITY sqlstate
DELETE FROM agentmesh.audit_tree;
UPDATE agentmesh.audit_checkpoints SET tree_size = 1;
TRUNCATE agentmesh.audit_log_origin;
\set VERBOSITY terse

-- the next seal extends the tree; every earlier root stays provable
SELECT seals FROM agentmesh.lm_run_maintenance();
SELECT tree_size FROM agentmesh.lm_audit_checkpoint();
SELECT intact FROM agentmesh.lm_verify_audit();

-- readable by the auditor and the admin; not by the other roles
SET ROLE agentmesh_auditor;
SELECT tree_size FROM agentmesh.lm_audit_checkpoint();
SELECT cardinality(proof) >= 0 AS ok FROM agentmesh.lm_audit_consistency_proof(1);
SELECT leaf_index FROM agentmesh.lm_audit_inclusion_proof((SELECT min(event_id) FROM agentmesh.audit_events));
RESET ROLE;
SET ROLE agentmesh_admin;
SELECT tree_size FROM agentmesh.lm_audit_checkpoint();
RESET ROLE;
\set VERBOSITY sqlstate
SET ROLE agentmesh_agent;
SELECT tree_size FROM agentmesh.lm_audit_checkpoint();
RESET ROLE;
SET ROLE agentmesh_requester;
SELECT * FROM agentmesh.lm_audit_consistency_proof(1);
RESET ROLE;
\set VERBOSITY terse

SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
