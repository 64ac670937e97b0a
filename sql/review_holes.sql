--
-- review_holes: what a red-team pass over 1.1 found, each shown closed.
-- Every refusal has its SQLSTATE, echoes nothing it refused, and changes
-- nothing (fingerprint).
--
CREATE EXTENSION agentmesh_lifecycle;

\i test/fingerprint.sql

SET client_min_messages = warning;
CREATE ROLE regress_rh_team NOLOGIN;
CREATE ROLE regress_rh_req LOGIN IN ROLE agentmesh_requester, regress_rh_team, pg_monitor;
CREATE ROLE regress_rh_agent LOGIN IN ROLE agentmesh_agent;
RESET client_min_messages;

SET ROLE regress_rh_req;
SELECT agent_id AS a FROM agentmesh.lm_request('rh-bot', 'o@example.com', team => 'regress_rh_team') \gset
RESET ROLE;
SELECT state FROM agentmesh.lm_approve(:'a', 'approver');
SELECT token AS t FROM agentmesh.lm_activate(:'a') \gset
SELECT pg_temp.fp() AS fp0 \gset

\set VERBOSITY default
\set SHOW_CONTEXT never

-- 1. A transaction that called a writing lm_* function cannot be prepared:
-- a prepared transaction holds the agent's row with no session behind it,
-- which revocation could never terminate.
SET ROLE regress_rh_agent;
BEGIN;
SELECT state FROM agentmesh.lm_heartbeat(:'a', :'t');
PREPARE TRANSACTION 'rh_hold';
RESET ROLE;
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'rh_hold';
-- reads alone may be prepared, and the flag does not outlive its transaction
BEGIN;
SELECT state FROM agentmesh.lm_get(:'a');
PREPARE TRANSACTION 'rh_read';
COMMIT PREPARED 'rh_read';

-- 2. A token passed as agent_id is refused without being echoed, by the
-- audit functions too.
SELECT * FROM agentmesh.lm_audit_trail(:'t');
SELECT * FROM agentmesh.lm_verify_audit(:'t');
SELECT * FROM agentmesh.lm_verify_audit_problems(:'t');

-- 3. A team must be a role of its own: not one every requester shares, not
-- a predefined role (the requester is a member of pg_monitor here).
SET ROLE regress_rh_req;
SELECT agentmesh.lm_request('shared', 'o@example.com', team => 'agentmesh_requester');
SELECT agentmesh.lm_request('shared', 'o@example.com', team => 'pg_monitor');
RESET ROLE;
SELECT agentmesh.lm_change_team(:'a', 'pg_read_all_data');
SELECT agentmesh.lm_change_team(:'a', 'agentmesh_auditor');
SELECT agentmesh.lm_change_team(:'a', 'regress_rh_no_such_team');

-- 4. Invisible characters in names and actors: the soft hyphen, the
-- combining grapheme joiner, a Hangul filler, a variation selector, the
-- invisible operators, a tag character.
SELECT agentmesh.lm_request(U&'rh\00ADbot', 'o@example.com');
SELECT agentmesh.lm_request(U&'rh\034Fbot', 'o@example.com');
SELECT agentmesh.lm_request(U&'rh\3164bot', 'o@example.com');
SELECT agentmesh.lm_request(U&'rh\FE0Fbot', 'o@example.com');
SELECT agentmesh.lm_request(U&'rh\2062bot', 'o@example.com');
SELECT agentmesh.lm_request(U&'rh\+0E0041bot', 'o@example.com');
SELECT agentmesh.lm_suspend(:'a', 'x', U&'ad\00ADmin');

-- 5. A NULL where a proof needs a value is 22004, like every other NULL.
\set VERBOSITY sqlstate
SELECT * FROM agentmesh.lm_audit_consistency_proof(NULL);
SELECT * FROM agentmesh.lm_audit_inclusion_proof(NULL);
\set VERBOSITY default

-- nothing of the above changed anything
SELECT pg_temp.fp() = :'fp0' AS unchanged;
SELECT state FROM agentmesh.lm_get(:'a');

-- ordinary accents and other scripts still pass
SELECT name FROM agentmesh.lm_request(U&'r\00E9sum\00E9-\0431\043E\0442', 'o@example.com');

SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
DROP ROLE regress_rh_req, regress_rh_agent, regress_rh_team;
