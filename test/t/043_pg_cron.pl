# pg_cron runs the maintenance pass: Debian's postgresql-15-cron (pg_cron 1.4)
# preloaded WITHOUT this extension's worker, on a socket-only server, set up
# exactly as docs/integrations.md says: cron.host = the socket directory, a
# superuser schedules CALL agentmesh.run_maintenance() with
# cron.schedule_in_database(..., username => an admin login).
# Proves: the job runs as that login, a silent agent is orphaned by it, the
# run is recorded (maintenance_runs, worker_status 'scheduled',
# cron.job_run_details 'succeeded'), and a login without agentmesh_admin
# gets a failed job (42501) and no change.
# Skipped when pg_cron is not installed for this server (no build of
# pg_cron exists for the self-built PostgreSQL 18).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
my $pkglibdir = `$ENV{PG_CONFIG} --pkglibdir` if $ENV{PG_CONFIG};
$pkglibdir = $node->config_data('--pkglibdir') unless $pkglibdir;
chomp $pkglibdir;
if (!-e "$pkglibdir/pg_cron.so")
{
	plan skip_all => "pg_cron is not installed for this PostgreSQL ($pkglibdir): "
	  . "on 15 install Debian's postgresql-15-cron; no pg_cron build exists for the self-built 18";
}

$node->init;
my $socket_dir = $node->host;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'app'
cron.host = '$socket_dir'
listen_addresses = ''
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
CREATE EXTENSION agentmesh_lifecycle;
CREATE EXTENSION pg_cron;
CREATE ROLE maint LOGIN IN ROLE agentmesh_admin;
CREATE ROLE intruder LOGIN;
INSERT INTO agentmesh.policies (name, orphan_threshold) VALUES ('quick', '1 second');
});
is($node->safe_psql('app', 'SELECT count(*) FROM agentmesh.lm_worker_status()'), '0',
	'the extension\'s worker is not running (not preloaded)');

my $id = $node->safe_psql('app',
	q{SELECT agent_id FROM agentmesh.lm_request('cron-bot', 'alice@example.com', policy => 'quick')});
$node->safe_psql('app', "SELECT agentmesh.lm_approve('$id')");
$node->safe_psql('app', "SELECT agentmesh.lm_activate('$id')");
$node->safe_psql('app', "SELECT agentmesh.lm_heartbeat('$id')");
sleep 2;    # silent past the policy's orphan_threshold

# Both jobs run at the next minute (pg_cron 1.4 has no seconds schedules):
# the documented recipe, a superuser scheduling for the admin login, and a
# job of a login without agentmesh_admin, which must fail and change nothing.
$node->safe_psql('app', q{
SELECT cron.schedule_in_database('agentmesh-maintenance', '* * * * *',
	'CALL agentmesh.run_maintenance()', 'app', 'maint');
SELECT cron.schedule_in_database('intruder-maintenance', '* * * * *',
	'CALL agentmesh.run_maintenance()', 'app', 'intruder');
});
ok($node->poll_query_until('app', "SELECT state = 'orphaned' FROM agentmesh.agents WHERE agent_id = '$id'"),
	'the scheduled pass orphaned the silent agent');
ok( $node->poll_query_until('app',
		q{SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		   WHERE j.jobname = 'agentmesh-maintenance' AND d.status = 'succeeded'}),
	'pg_cron records the job as succeeded');
ok( $node->poll_query_until('app',
		q{SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		   WHERE j.jobname = 'intruder-maintenance' AND d.status = 'failed'}),
	'the intruder\'s job ran and failed');
like($node->safe_psql('app',
		q{SELECT d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		   WHERE j.jobname = 'intruder-maintenance' LIMIT 1}),
	qr/permission denied/, 'refused: permission denied');
# no further run while the results are read
$node->safe_psql('app', q{SELECT cron.unschedule(jobid) FROM cron.job});
is($node->safe_psql('app',
		q{SELECT db_user || ' ' || orphaned || ' ' || (error IS NULL) || ' ' || (finished_at IS NOT NULL)
		    FROM agentmesh.maintenance_runs ORDER BY run_id LIMIT 1}),
	'maint 1 true true', 'the run is recorded with its counts, as the admin login');
is($node->safe_psql('app',
		q{SELECT state || ' ' || (passes >= 1) || ' ' || orphaned || ' ' || errors
		    FROM agentmesh.worker_status}),
	'scheduled true 1 0', 'worker_status shows the last pass in pg_cron mode');
is($node->safe_psql('app',
		q{SELECT actor || ' ' || db_user FROM agentmesh.audit_log
		   WHERE agent_id = '} . $id . q{' AND event_type = 'orphan_detected'}),
	'agentmesh-maintenance maint', 'the audit event names the maintenance actor and the admin login');
is($node->safe_psql('app',
		q{SELECT count(*) FROM agentmesh.maintenance_runs WHERE db_user = 'intruder'}),
	'0', 'the refused job left no run');
is($node->safe_psql('app',
		q{SELECT string_agg(DISTINCT db_user, ',') FROM agentmesh.audit_events
		   WHERE actor = 'agentmesh-maintenance'}),
	'maint', 'every change of the pass was made by the admin login');
cmp_ok($node->safe_psql('app',
		q{SELECT value FROM agentmesh.fleet_metrics WHERE metric = 'last_pass_age_seconds'}),
	'<', 600, 'fleet_metrics has the age of the last pass');

$node->stop;
done_testing();
