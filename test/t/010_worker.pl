# The maintenance workers: one per database with the extension, started and
# stopped by the launcher; orphaning, rotation, auto_decommission and seals
# done by the worker itself; DROP EXTENSION / DROP DATABASE not blocked;
# SIGHUP, pg_terminate_backend and a crash of another backend survived,
# without duplicate audit rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentmesh_lifecycle'
agentmesh_lifecycle.naptime = 1
max_worker_processes = 16
restart_after_crash = on
});
$node->start;

# number of workers (in one database, or in all)
sub workers
{
	my ($db) = @_;
	my $where = defined $db ? "AND datname = '$db'" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'agentmesh_lifecycle worker' $where"
	);
}

sub worker_pid
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'agentmesh_lifecycle worker' AND datname = '$db'"
	);
}

sub wait_workers
{
	my ($db, $n, $what) = @_;
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = $n FROM pg_stat_activity WHERE backend_type = 'agentmesh_lifecycle worker' AND datname = '$db'"
		),
		$what);
}

$node->safe_psql('postgres', "CREATE DATABASE $_") for qw(db1 db2 db3);
$node->safe_psql($_, 'CREATE EXTENSION agentmesh_lifecycle') for qw(db1 db2);

wait_workers('db1', 1, 'db1 gets a worker');
wait_workers('db2', 1, 'db2 gets a worker');
is(workers('db3'), '0', 'db3, without the extension, gets none');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(DISTINCT backend_type || '/' || application_name, ',') FROM pg_stat_activity WHERE backend_type LIKE 'agentmesh_lifecycle%'"
	),
	'agentmesh_lifecycle launcher/agentmesh_lifecycle launcher,agentmesh_lifecycle worker/agentmesh_lifecycle worker',
	'launcher and workers are named in pg_stat_activity');

# --- the worker does the maintenance -----------------------------------------
$node->safe_psql(
	'db1', q{
INSERT INTO agentmesh.policies (name, require_approval, heartbeat_interval, orphan_threshold)
	VALUES ('quick_orphan', false, '1 second', '3 seconds');
INSERT INTO agentmesh.policies (name, require_approval, max_credential_ttl, rotation_overlap)
	VALUES ('quick_rotate', false, '6 seconds', '4 seconds');
INSERT INTO agentmesh.policies (name, require_approval, auto_decommission, max_inactive_days)
	VALUES ('retire', false, true, 1);
});
my $orphan = $node->safe_psql('db1',
	"SELECT (agentmesh.lm_request('silent', 'alice', policy => 'quick_orphan')).agent_id");
my $rot = $node->safe_psql('db1',
	"SELECT (agentmesh.lm_request('rotating', 'alice', policy => 'quick_rotate')).agent_id");
my $old = $node->safe_psql('db1',
	"SELECT (agentmesh.lm_request('old', 'alice', policy => 'retire')).agent_id");
$node->safe_psql('db1', "SELECT agentmesh.lm_activate(x) FROM unnest(ARRAY['$orphan', '$rot', '$old']) x");
# an agent last heard of three days ago (a liveness column: no audit event)
$node->safe_psql('db1',
	"UPDATE agentmesh.agents SET last_heartbeat = now() - interval '3 days' WHERE agent_id = '$old'");

ok( $node->poll_query_until(
		'db1',
		"SELECT state = 'orphaned' FROM agentmesh.agents WHERE agent_id = '$orphan'"),
	'the worker orphans a silent agent');
is( $node->safe_psql(
		'db1',
		"SELECT string_agg(event_type || ':' || actor || ':' || COALESCE(NULLIF(array_to_string(ARRAY(SELECT jsonb_array_elements_text(details->'reason_codes')), ','), ''), '-'), ',' ORDER BY seq)
		   FROM agentmesh.audit_events WHERE agent_id = '$orphan' AND seq > 3"
	),
	'heartbeat_missed:agentmesh-maintenance:-,orphan_detected:agentmesh-maintenance:never_heartbeat',
	'with one heartbeat_missed and one orphan_detected row by agentmesh-maintenance');
ok( $node->poll_query_until(
		'db1',
		"SELECT count(*) > 0 FROM agentmesh.audit_events WHERE agent_id = '$rot' AND event_type = 'credential_rotated' AND actor = 'agentmesh-maintenance'"
	),
	'the worker rotates a credential near expiry');
ok( $node->poll_query_until(
		'db1', "SELECT state = 'decommissioned' FROM agentmesh.agents WHERE agent_id = '$old'"),
	'auto_decommission retires an agent silent past max_inactive_days');
is( $node->safe_psql(
		'db1',
		"SELECT details->>'policy_rule' FROM agentmesh.audit_events WHERE agent_id = '$old' AND event_type = 'decommission_started'"
	),
	'auto_decommission',
	'the decommission audit row carries the reason');
ok( $node->poll_query_until(
		'db1',
		"SELECT count(*) >= 2 FROM agentmesh.audit_seals"),
	'seals appear');
is($node->safe_psql('db1', 'SELECT intact FROM agentmesh.lm_verify_audit()'),
	't', 'chains and seals verify');
ok($node->log_contains('agentmesh_lifecycle: audit seal [0-9]+ of database "db1"'),
	'seals are logged');
ok( $node->poll_query_until(
		'db1',
		"SELECT passes > 0 AND errors = 0 AND state IN ('waiting', 'running pass') FROM agentmesh.worker_status WHERE datname = 'db1'"
	),
	'worker_status shows the passes');

# --- SIGHUP: naptime changes without restart ------------------------------------
sub passes
{
	return $node->safe_psql('db1',
		"SELECT passes FROM agentmesh.worker_status WHERE datname = 'db1'");
}
my $pid1 = worker_pid('db1');
$node->safe_psql('postgres', "ALTER SYSTEM SET agentmesh_lifecycle.naptime = '1h'");
$node->reload;
sleep 2;
my $p0 = passes();
sleep 3;
cmp_ok(passes() - $p0, '<=', 1, 'naptime 1h after reload: no more passes');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET agentmesh_lifecycle.naptime');
$node->reload;
ok($node->poll_query_until('db1',
	"SELECT passes >= $p0 + 2 FROM agentmesh.worker_status WHERE datname = 'db1'"),
	'naptime back to 1 s after reload');
is(worker_pid('db1'), $pid1, 'the same worker process throughout');

# --- allow-list ---------------------------------------------------------------------
$node->safe_psql('postgres', "ALTER SYSTEM SET agentmesh_lifecycle.databases = 'db2'");
$node->reload;
wait_workers('db1', 0, 'a database outside agentmesh_lifecycle.databases loses its worker');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET agentmesh_lifecycle.databases');
$node->reload;
wait_workers('db1', 1, 'and gets it back when the list is reset');

# --- CREATE / DROP EXTENSION, DROP DATABASE -----------------------------------------
my $t = time();
$node->safe_psql('db3', 'CREATE EXTENSION agentmesh_lifecycle');
wait_workers('db3', 1, 'CREATE EXTENSION starts a worker');
cmp_ok(time() - $t, '<', 5, 'within a few seconds');

$t = time();
$node->safe_psql('db3', 'SET agentmesh_lifecycle.allow_drop = on; DROP EXTENSION agentmesh_lifecycle');
wait_workers('db3', 0, 'DROP EXTENSION stops the worker');
cmp_ok(time() - $t, '<', 5, 'promptly');
$node->safe_psql('postgres', 'DROP DATABASE db3');
pass('DROP DATABASE after DROP EXTENSION');

is(workers('db2'), '1', 'db2 still has its worker');
$t = time();
my $droplog = -s $node->logfile;
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE db2');
is($rc, 0, 'DROP DATABASE (without FORCE) of a database with a running worker succeeds')
  or diag $err;
cmp_ok(time() - $t, '<', 5, 'promptly');
is(workers('db2'), '0', 'and its worker is gone');
# quiet where nothing is wrong: the stop is a LOG line, not a FATAL one
my $dropped = slurp_file($node->logfile, $droplog);
like($dropped, qr/LOG:  agentmesh_lifecycle worker for database "db2" stopping on request/,
	'the worker says at LOG that it stops');
unlike($dropped, qr/FATAL/, 'DROP DATABASE logs no FATAL');
sleep 2;
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'agentmesh_lifecycle worker' AND datname IS DISTINCT FROM 'db1'"),
	'0', 'no worker started for the dropped database');

# --- a terminated worker and a crashed backend ---------------------------------------
$pid1 = worker_pid('db1');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'agentmesh_lifecycle worker' AND datname = 'db1' AND pid <> $pid1"
	),
	'a terminated worker is replaced');

my $bg = $node->background_psql('db1');
my $victim = $bg->query_safe('SELECT pg_backend_pid()');
kill 'KILL', $victim;
eval { $bg->quit; };
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'server back after a backend crash');
wait_workers('db1', 1, 'a worker runs again after the crash restart');

my $orphan2 = $node->safe_psql('db1',
	"SELECT (agentmesh.lm_request('silent2', 'alice', policy => 'quick_orphan')).agent_id");
$node->safe_psql('db1', "SELECT agentmesh.lm_activate('$orphan2')");
ok( $node->poll_query_until(
		'db1',
		"SELECT state = 'orphaned' FROM agentmesh.agents WHERE agent_id = '$orphan2'"),
	'and it orphans a new silent agent');
is( $node->safe_psql(
		'db1',
		"SELECT count(*) FROM agentmesh.audit_events WHERE agent_id IN ('$orphan', '$orphan2') AND event_type IN ('orphan_detected', 'heartbeat_missed')"
	),
	'4', 'no duplicate audit rows');
is( $node->safe_psql(
		'db1',
		"SELECT count(*) FROM (SELECT agent_id, event_type FROM agentmesh.audit_events WHERE actor = 'agentmesh-maintenance' AND event_type <> 'credential_rotated' GROUP BY 1, 2 HAVING count(*) > 1) d"
	),
	'0', 'no agent has a maintenance event twice (rotations aside)');
ok($node->poll_query_until('db1',
	"SELECT count(*) >= 3 FROM agentmesh.audit_seals"), 'seals continue');
is($node->safe_psql('db1', 'SELECT intact FROM agentmesh.lm_verify_audit()'),
	't', 'chains and seals verify after the restarts');

$node->stop;
done_testing();
