# pg_dump of a database with the extension and data, restored into a fresh
# database, gives the same agents, credentials, policies and audit rows, and
# the audit chains still verify there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'agentmesh_lifecycle'\n"
	  . "agentmesh_lifecycle.enabled = off\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION agentmesh_lifecycle;
UPDATE agentmesh.policies SET max_inactive_days = 30 WHERE name = 'default';
INSERT INTO agentmesh.policies (name, require_approval, rotation_overlap)
	VALUES ('fast', false, '0');
CREATE TABLE tokens (agent_id text, token text);
DO $$
DECLARE
	a agentmesh.agents;
	g agentmesh.credential_grant;
BEGIN
	FOR i IN 1..20 LOOP
		a := agentmesh.lm_request('bot-' || i, 'team-' || (i % 3), 'dump test',
								  actor => 'alice', tags => '{"n": "x"}',
								  policy => CASE WHEN i % 2 = 0 THEN 'fast' ELSE 'default' END);
		IF a.state = 'pending_approval' THEN
			PERFORM agentmesh.lm_approve(a.agent_id, 'bob');
		END IF;
		IF i % 5 <> 0 THEN
			g := agentmesh.lm_activate(a.agent_id);
			INSERT INTO tokens VALUES (a.agent_id, g.token);
			PERFORM agentmesh.lm_heartbeat(a.agent_id);
		END IF;
		IF i % 4 = 0 AND i % 5 <> 0 THEN
			g := agentmesh.lm_rotate_credentials(a.agent_id);
			INSERT INTO tokens VALUES (a.agent_id, g.token);
		END IF;
		IF i % 7 = 0 THEN
			PERFORM agentmesh.lm_decommission(a.agent_id, 'retired');
		END IF;
	END LOOP;
END
$$;
});

# What must survive the round trip, as one text per table.
my $snapshot = q{
SELECT (SELECT md5(string_agg(a::text, '|' ORDER BY agent_id)) FROM agentmesh.agents a)
	|| (SELECT md5(string_agg(c::text, '|' ORDER BY credential_id)) FROM agentmesh.credentials c)
	|| (SELECT md5(string_agg(p::text, '|' ORDER BY name)) FROM agentmesh.policies p)
	|| (SELECT md5(string_agg((e.event_id, e.agent_id, e.policy, e.seq, e.event_type, e.occurred_at,
							   e.actor, e.db_user, e.details, e.prev_hash, e.hash)::text,
							  '|' ORDER BY event_id)) FROM agentmesh.audit_events e)
};
my $before = $node->safe_psql('src', $snapshot);
is($node->safe_psql('src', 'SELECT intact FROM agentmesh.lm_verify_audit()'),
	't', 'chains verify before the dump');

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ],
	'pg_dump succeeds');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ],
	'pg_restore into a fresh database succeeds');

is($node->safe_psql('dst', $snapshot), $before,
	'agents, credentials, policies and audit rows are identical after restore');
is($node->safe_psql('dst', 'SELECT intact FROM agentmesh.lm_verify_audit()'),
	't', 'chains verify after the restore');
is($node->safe_psql('dst', q{
	SELECT count(*) FROM tokens t
	 WHERE agentmesh.lm_verify_credential(t.token) IS DISTINCT FROM
		   (SELECT agent_id FROM agentmesh.lm_get(t.agent_id) WHERE state = 'active'
			AND EXISTS (SELECT FROM agentmesh.credentials c
						 WHERE c.agent_id = t.agent_id AND c.revoked_at IS NULL
						   AND c.expires_at > now()
						   AND c.token_hash = sha256(convert_to(t.token, 'UTF8'))))}),
	'0', 'restored credentials verify exactly as before');

# Life goes on in the restored database: new events extend the restored chains.
$node->safe_psql('dst', q{
	SELECT agentmesh.lm_suspend(agent_id, 'after restore')
	  FROM agentmesh.agents WHERE state = 'active';
	UPDATE agentmesh.policies SET max_inactive_days = 31 WHERE name = 'default';
});
is($node->safe_psql('dst', 'SELECT intact FROM agentmesh.lm_verify_audit()'),
	't', 'chains still verify after new events in the restored database');
is($node->safe_psql('dst', q{SELECT count(*) FROM agentmesh.audit_events
	WHERE policy = 'default'}), '2', 'default policy chain continues from the dump');

$node->stop;
done_testing();
