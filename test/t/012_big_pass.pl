# A maintenance pass over 100 000 agents while a client session holds a
# row lock on one of them: the pass neither waits nor fails, skips that
# agent, and a later pass handles it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $n = 100000;
my $node = PostgreSQL::Test::Cluster->new('big');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentmesh_lifecycle'
agentmesh_lifecycle.enabled = off
shared_buffers = 256MB
synchronous_commit = off
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION agentmesh_lifecycle;
INSERT INTO agentmesh.policies (name, require_approval, orphan_threshold)
	VALUES ('fleet', false, '1 hour');
});

my $t = time();
$node->safe_psql('postgres',
	"SELECT count(agentmesh.lm_activate((agentmesh.lm_request('a' || i, 'owner', policy => 'fleet')).agent_id))
	   FROM generate_series(1, $n) i");
note sprintf('created and activated %d agents in %.1f s', $n, time() - $t);
$node->safe_psql('postgres', 'VACUUM ANALYZE agentmesh.agents');

my $locked = $node->safe_psql('postgres',
	'SELECT agent_id FROM agentmesh.agents ORDER BY agent_id OFFSET 500 LIMIT 1');
my $client = $node->background_psql('postgres');
$client->query_safe('BEGIN');
$client->query_safe(
	"SELECT agent_id FROM agentmesh.agents WHERE agent_id = '$locked' FOR UPDATE");

# lock_timeout: if the pass waited for the client's lock it would fail here
$t = time();
my $res = $node->safe_psql('postgres',
	"SET lock_timeout = '20s';
	 SELECT orphaned || '/' || heartbeats_missed || '/' || rotated
	   FROM agentmesh.lm_run_maintenance(now() + interval '2 hours', allow_future => true)");
my $elapsed = time() - $t;
is($res, ($n - 1) . '/0/0', 'the pass orphans every agent but the locked one');
note sprintf('maintenance pass over %d agents: %.1f s', $n, $elapsed);
cmp_ok($elapsed, '<', 60, 'in under a minute');

is($node->safe_psql('postgres',
	"SELECT state FROM agentmesh.agents WHERE agent_id = '$locked'"),
	'active', 'the locked agent was skipped');
$client->query_safe('COMMIT');
$client->quit;

is( $node->safe_psql(
		'postgres',
		"SELECT orphaned FROM agentmesh.lm_run_maintenance(now() + interval '2 hours', allow_future => true)"),
	'1', 'the next pass handles it');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM agentmesh.audit_events WHERE event_type = 'orphan_detected'"),
	$n, 'one orphan_detected row per agent');
is($node->safe_psql('postgres', "SELECT intact FROM agentmesh.lm_verify_audit('$locked')"),
	't', 'the skipped agent\'s chain verifies');
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM agentmesh.audit_seals'),
	't', 'the passes sealed the events');

$node->stop;
done_testing();
