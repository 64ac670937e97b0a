-- (5) baseline: INSERT of a credential row + UPDATE of the agent + audit
-- INSERT (hash chained), in one statement.
\set i random(1, :n)
WITH o AS (SELECT p.agent_id, p.audit_seq, p.audit_head, p.credential_id FROM bench.agents_plain p
            WHERE p.agent_id = (SELECT m.agent_id FROM bench.map m WHERE m.i = :i) FOR UPDATE),
t AS (SELECT 'cred:' || replace(gen_random_uuid()::text, '-', '') AS cid,
             'amk_' || encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'hex') AS token),
c AS (
  INSERT INTO bench.credentials_plain (credential_id, agent_id, token_hash, issued_at, expires_at)
  SELECT t.cid, o.agent_id, sha256(convert_to(t.token, 'UTF8')), now(), now() + interval '24 hours'
    FROM o, t
  RETURNING credential_id, agent_id, issued_at, expires_at),
u AS (
  UPDATE bench.agents_plain p SET credential_id = c.credential_id,
         credential_issued_at = c.issued_at, credential_expires_at = c.expires_at,
         updated_at = now(), audit_seq = o.audit_seq + 1,
         audit_head = sha256(convert_to(o.agent_id || '|' || (o.audit_seq + 1)::text || '|credential_rotated|'
                                        || now()::text || '|bench', 'UTF8') || o.audit_head)
    FROM o, c WHERE p.agent_id = o.agent_id
  RETURNING p.agent_id, p.audit_seq, p.audit_head, o.audit_head AS prev, o.credential_id AS old_cred,
            c.credential_id AS new_cred)
INSERT INTO bench.audit_plain (event_id, agent_id, seq, event_type, occurred_at, actor, db_user,
                               previous_state, new_state, details, prev_hash, hash)
SELECT nextval('bench.audit_plain_seq'), u.agent_id, u.audit_seq, 'credential_rotated', now(), 'bench',
       session_user, NULL, NULL, jsonb_build_object('old_credential', u.old_cred, 'new_credential', u.new_cred),
       u.prev, u.audit_head
  FROM u
RETURNING (SELECT token FROM t);
