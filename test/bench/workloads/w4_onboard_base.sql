-- (4) baseline: the same rows written with plain SQL, one statement per step
-- (the agent INSERT/UPDATE, the credential INSERT, and one audit INSERT per
-- step with a SHA-256 hash chained to the previous one).
BEGIN;
WITH s AS (SELECT 'agent:' || replace(gen_random_uuid()::text, '-', '') AS id),
a AS (
  INSERT INTO bench.agents_plain (agent_id, name, owner, purpose, agent_type, state, policy, tags,
                                  requested_by, created_at, updated_at, audit_seq, audit_head)
  SELECT s.id, 'bench-new-' || :client_id::text, 'owner-' || :client_id::text, 'benchmark', 'autonomous',
         'pending_approval', 'default', '{}', 'alice', now(), now(), 1,
         sha256(convert_to(s.id || '|1|requested|' || now()::text || '|alice', 'UTF8'))
    FROM s
  RETURNING agent_id, name, owner, audit_head)
INSERT INTO bench.audit_plain (event_id, agent_id, seq, event_type, occurred_at, actor, db_user,
                               previous_state, new_state, details, prev_hash, hash)
SELECT nextval('bench.audit_plain_seq'), a.agent_id, 1, 'requested', now(), 'alice', session_user, NULL,
       'pending_approval', jsonb_build_object('name', a.name, 'owner', a.owner), NULL, a.audit_head
  FROM a
RETURNING agent_id \gset
WITH o AS (SELECT agent_id, audit_seq, audit_head FROM bench.agents_plain
            WHERE agent_id = :agent_id AND state = 'pending_approval' FOR UPDATE),
u AS (
  UPDATE bench.agents_plain p SET state = 'provisioned', updated_at = now(), audit_seq = o.audit_seq + 1,
         audit_head = sha256(convert_to(o.agent_id || '|2|approved|' || now()::text || '|bob', 'UTF8') || o.audit_head)
    FROM o WHERE p.agent_id = o.agent_id
  RETURNING p.agent_id, p.audit_seq, p.audit_head, o.audit_head AS prev)
INSERT INTO bench.audit_plain (event_id, agent_id, seq, event_type, occurred_at, actor, db_user,
                               previous_state, new_state, details, prev_hash, hash)
SELECT nextval('bench.audit_plain_seq'), u.agent_id, u.audit_seq, 'approved', now(), 'bob', session_user,
       'pending_approval', 'provisioned', '{}', u.prev, u.audit_head
  FROM u;
WITH o AS (SELECT agent_id, audit_seq, audit_head FROM bench.agents_plain
            WHERE agent_id = :agent_id AND state = 'provisioned' FOR UPDATE),
t AS (SELECT 'cred:' || replace(gen_random_uuid()::text, '-', '') AS cid,
             'amk_' || encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'hex') AS token),
c AS (
  INSERT INTO bench.credentials_plain (credential_id, agent_id, token_hash, issued_at, expires_at)
  SELECT t.cid, o.agent_id, sha256(convert_to(t.token, 'UTF8')), now(), now() + interval '24 hours'
    FROM o, t
  RETURNING credential_id, agent_id, issued_at, expires_at),
u AS (
  UPDATE bench.agents_plain p SET state = 'active', credential_id = c.credential_id,
         credential_issued_at = c.issued_at, credential_expires_at = c.expires_at,
         activated_at = now(), updated_at = now(), audit_seq = o.audit_seq + 1,
         audit_head = sha256(convert_to(o.agent_id || '|3|activated|' || now()::text || '|alice', 'UTF8') || o.audit_head)
    FROM o, c WHERE p.agent_id = o.agent_id
  RETURNING p.agent_id, p.audit_seq, p.audit_head, o.audit_head AS prev, c.credential_id)
INSERT INTO bench.audit_plain (event_id, agent_id, seq, event_type, occurred_at, actor, db_user,
                               previous_state, new_state, details, prev_hash, hash)
SELECT nextval('bench.audit_plain_seq'), u.agent_id, u.audit_seq, 'activated', now(), 'alice', session_user,
       'provisioned', 'active', jsonb_build_object('old_credential', NULL, 'new_credential', u.credential_id),
       u.prev, u.audit_head
  FROM u
RETURNING (SELECT token FROM t);
END;
