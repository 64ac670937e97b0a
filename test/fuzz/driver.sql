-- Fuzz driver, loaded once into the throwaway database by run.sh.
-- fuzz_calls holds the generated calls; fuzz_batch() runs a range of them,
-- each in its own subtransaction (so one call's error undoes only that call),
-- as the role the generator chose, and records the SQLSTATE.
CREATE EXTENSION agentmesh_lifecycle;
CREATE TABLE fuzz_calls (n bigserial PRIMARY KEY, kind text, role text, sql text);
CREATE TABLE fuzz_results (n bigint, kind text, sqlstate text, message text);
CREATE TABLE fuzz_tokens (tok text);
GRANT ALL ON fuzz_tokens TO PUBLIC;

-- SQLSTATEs a call may end with, and why:
CREATE TABLE fuzz_allowed (sqlstate text PRIMARY KEY, why text, policy_dml_only bool DEFAULT false);
INSERT INTO fuzz_allowed VALUES
 ('00000', 'success', false),
 ('22004', 'NULL where a value is required (documented)', false),
 ('22023', 'empty, too long, control/bidi characters, bad tags, infinite as_of (documented)', false),
 ('42704', 'unknown agent, policy or team role (documented)', false),
 ('55000', 'wrong state for the operation (documented)', false),
 ('42501', 'role lacks EXECUTE/SELECT, agent outside the teams, policy not allowed, distinct approver, heartbeat token (documented)', false),
 ('25006', 'write on a hot standby (documented; not expected on a primary)', false),
 ('22P02', 'bad enum literal or invalid JSON, raised by the input function of the argument', false),
 ('22007', 'unparsable timestamp literal, raised by timestamptz input', false),
 ('22008', 'timestamp out of range: extreme as_of plus a TTL, or datetime arithmetic in the argument', false),
 ('22021', 'invalid UTF-8 from convert_from() in the argument', false),
 ('22P05', 'jsonb rejects \u0000, raised by jsonb input', false),
 ('54000', 'program limit: string or jsonb larger than the server accepts', false),
 ('54001', 'stack depth: absurdly nested jsonb rejected by the jsonb parser', false),
 ('23514', 'policy CHECK constraint rejects a nonsense value', true),
 ('23505', 'duplicate policy name', true),
 ('23502', 'NULL in a NOT NULL policy column', true),
 ('22015', 'interval field overflow in a policy interval literal', true);

CREATE FUNCTION fuzz_batch(lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	r record;
	st text;
	msg text;
	done bigint := 0;
BEGIN
	FOR r IN SELECT * FROM fuzz_calls WHERE n BETWEEN lo AND hi ORDER BY n LOOP
		BEGIN
			IF r.role <> '' THEN
				PERFORM set_config('role', r.role, true);
			END IF;
			EXECUTE r.sql;
			PERFORM set_config('role', 'none', true);
			st := '00000';
			msg := NULL;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
		END;
		INSERT INTO fuzz_results VALUES (r.n, r.kind, st, left(msg, 200));
		done := done + 1;
	END LOOP;
	RETURN done;
END $$;

-- a starting population: agents in every state, and some real tokens
DO $$
DECLARE
	a text;
BEGIN
	FOR i IN 1..60 LOOP
		a := (agentmesh.lm_request('seed-' || i, 'owner' || (i % 5) || '@example.com')).agent_id;
		CONTINUE WHEN i % 6 = 0;
		PERFORM agentmesh.lm_approve(a, 'approver');
		CONTINUE WHEN i % 6 = 1;
		INSERT INTO fuzz_tokens SELECT token FROM agentmesh.lm_activate(a);
		CASE i % 6
			WHEN 3 THEN PERFORM agentmesh.lm_suspend(a, 'seed');
			WHEN 4 THEN PERFORM agentmesh.lm_mark_orphaned(a);
			WHEN 5 THEN PERFORM agentmesh.lm_decommission(a, 'seed');
			ELSE NULL;
		END CASE;
	END LOOP;
END $$;
