# Hot standby and failover: no launcher or worker on a standby; the read
# functions work there and every writing function fails with 25006 and a
# message that says the server is a standby; after promotion the worker
# starts and orphans a silent agent.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
# no worker on the primary, so that the silent agent is still active at failover
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentmesh_lifecycle'
agentmesh_lifecycle.naptime = 1
agentmesh_lifecycle.enabled = off
});
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION agentmesh_lifecycle;
INSERT INTO agentmesh.policies (name, require_approval, heartbeat_interval, orphan_threshold)
	VALUES ('quick_orphan', false, '1 second', '2 seconds');
});
my $id = $primary->safe_psql('postgres',
	"SELECT (agentmesh.lm_request('silent', 'alice', policy => 'quick_orphan')).agent_id");
my $token = $primary->safe_psql('postgres', "SELECT (agentmesh.lm_activate('$id')).token");
my $pending = $primary->safe_psql('postgres',
	"SELECT (agentmesh.lm_request('pending', 'bob')).agent_id");

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', 'agentmesh_lifecycle.enabled = on');
$standby->start;
$primary->wait_for_catchup($standby);

sleep 2;
is( $standby->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'agentmesh_lifecycle%'"),
	'0', 'no launcher and no worker on the standby');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM agentmesh.worker_status'),
	'0', 'worker_status is empty on the standby');

# reads
my %reads = (
	"SELECT (agentmesh.lm_get('$id')).state" => 'active',
	"SELECT count(*) FROM agentmesh.lm_list_by_state('active')" => '1',
	"SELECT count(*) FROM agentmesh.lm_list_by_owner('alice')" => '1',
	"SELECT count(*) > 0 FROM agentmesh.lm_audit_trail('$id')" => 't',
	"SELECT count(*) FROM agentmesh.lm_detect_orphans(now() + interval '1 day') WHERE agent_id = '$id'" => '1',
	"SELECT agentmesh.lm_verify_credential('$token') = '$id'" => 't',
	"SELECT agentmesh.lm_summary()->>'total_agents'" => '2',
	'SELECT intact FROM agentmesh.lm_verify_audit()' => 't',
	'SELECT count(*) FROM agentmesh.lm_transitions() WHERE operation = \'activate\'' => '1',
);
for my $q (sort keys %reads)
{
	is($standby->safe_psql('postgres', $q), $reads{$q}, "standby read: $q");
}

# writes
my @writes = (
	"agentmesh.lm_request('x', 'alice')",
	"agentmesh.lm_approve('$pending')",
	"agentmesh.lm_reject('$pending', 'no')",
	"agentmesh.lm_activate('$pending')",
	"agentmesh.lm_heartbeat('$id')",
	"agentmesh.lm_suspend('$id', 'why')",
	"agentmesh.lm_resume('$id')",
	"agentmesh.lm_decommission('$id', 'why')",
	"agentmesh.lm_change_owner('$id', 'carol')",
	"agentmesh.lm_rotate_credentials('$id')",
	"agentmesh.lm_revoke_credentials('$id', 'why')",
	"agentmesh.lm_check_and_rotate()",
	"agentmesh.lm_mark_orphaned('$id')",
	"agentmesh.lm_reclaim('$id', 'carol')",
	"agentmesh.lm_run_maintenance()",
);
for my $w (@writes)
{
	my ($rc, $out, $err) = $standby->psql('postgres', "SELECT * FROM $w",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:  25006: .*standby/, "standby write refused with 25006: $w");
}

# failover
$standby->promote;
ok( $standby->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'agentmesh_lifecycle worker' AND datname = 'postgres'"
	),
	'after promotion the worker starts');
ok( $standby->poll_query_until(
		'postgres', "SELECT state = 'orphaned' FROM agentmesh.agents WHERE agent_id = '$id'"),
	'and orphans the silent agent');
is( $standby->safe_psql(
		'postgres',
		"SELECT count(*) FROM agentmesh.audit_events WHERE agent_id = '$id' AND event_type = 'orphan_detected' AND actor = 'agentmesh-maintenance'"
	),
	'1', 'with one audit row');
ok($standby->poll_query_until('postgres', 'SELECT count(*) > 0 FROM agentmesh.audit_seals'),
	'the promoted server writes seals');
is($standby->safe_psql('postgres', 'SELECT intact FROM agentmesh.lm_verify_audit()'),
	't', 'audit verifies on the promoted server');

$standby->stop;
$primary->stop;
done_testing();
