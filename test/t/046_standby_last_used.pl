# Last-used tracking on a hot standby (issue 12): lm_verify_credential works
# there and writes nothing (no error from a write attempted during
# recovery, the primary's rows and WAL position unchanged), while on the
# primary the first verification records last_used_at once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('lu_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentmesh_lifecycle'
agentmesh_lifecycle.enabled = off
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION agentmesh_lifecycle');
my $id = $primary->safe_psql('postgres',
	"SELECT (agentmesh.lm_request('reader', 'alice')).agent_id");
$primary->safe_psql('postgres', "SELECT agentmesh.lm_approve('$id')");
my $token = $primary->safe_psql('postgres', "SELECT (agentmesh.lm_activate('$id')).token");

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('lu_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

my $row = "SELECT c.last_used_at IS NULL, c.xmin, a.last_used_at IS NULL, a.xmin"
  . " FROM agentmesh.credentials c JOIN agentmesh.agents a USING (agent_id) WHERE c.agent_id = '$id'";
my $before = $primary->safe_psql('postgres', $row);
like($before, qr/^t\|\d+\|t\|\d+$/, 'never used on the primary');
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');

my ($ret, $out, $err) = $standby->psql('postgres',
	"SELECT count(*) FILTER (WHERE agentmesh.lm_verify_credential('$token') = '$id')"
	  . " FROM generate_series(1, 200)");
is($ret, 0, 'verification on the standby raises nothing');
is($out, '200', 'every verification on the standby succeeds');
is($err, '', 'and says nothing');
is($standby->safe_psql('postgres', "SELECT agentmesh.lm_verify_credential('x')"),
	'', 'a bad token is NULL on the standby too');

is($primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()'),
	$lsn, 'the primary wrote no WAL meanwhile');
is($primary->safe_psql('postgres', $row), $before, 'and its rows are unchanged');

# on the primary, the first use is recorded, once, by the next pass (on
# the primary a read may still prune pages, which is WAL of its own)
my $nextxid = $primary->safe_psql('postgres', 'SELECT pg_snapshot_xmax(pg_current_snapshot())');
is($primary->safe_psql('postgres', "SELECT agentmesh.lm_verify_credential('$token')"),
	$id, 'verifies on the primary');
is($primary->safe_psql('postgres', $row), $before, 'the verification itself wrote nothing');
is($primary->safe_psql('postgres', 'SELECT pg_snapshot_xmax(pg_current_snapshot())'),
	$nextxid, 'and took no transaction id (so no commit record, no WAL flush)');
# the use is queued; the next maintenance pass writes it (here, from SQL)
$primary->safe_psql('postgres', 'SELECT agentmesh.lm_run_maintenance()');
my $after = $primary->safe_psql('postgres', $row);
like($after, qr/^f\|\d+\|f\|\d+$/, 'the pass records the last use of credential and agent');
$primary->safe_psql('postgres', "SELECT agentmesh.lm_verify_credential('$token')") for 1 .. 20;
$primary->safe_psql('postgres', 'SELECT agentmesh.lm_run_maintenance()');
is($primary->safe_psql('postgres', $row), $after, 'twenty more uses within the interval write nothing');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres',
		"SELECT last_used_at IS NOT NULL FROM agentmesh.credentials WHERE agent_id = '$id'"),
	't', 'the standby sees the primary\'s record');

$standby->stop;
$primary->stop;
done_testing();
