# Rotation that never strands a running agent (issue 12): the reference
# agent (examples/agent.py) heartbeats with its token every second under a
# policy with a 6-second credential lifetime while the worker (naptime 1 s)
# rotates at half-life, through at least 5 rotations, with nobody handing it
# anything.  The agent never gets a refused heartbeat, every rotation is in
# the audit trail, at most two credentials verify at any moment, the token
# is never in the agent's output, and once the agent stops it is orphaned
# and its credentials expire as before.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use Time::HiRes qw(time sleep);

my $python = '/usr/bin/python3';
plan skip_all => 'python3-psycopg is not installed'
  unless system($python, '-c', 'import psycopg') == 0;
my $agent_py = abs_path(dirname(__FILE__) . '/../../examples/agent.py');

my $node = PostgreSQL::Test::Cluster->new('agent_rotation');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentmesh_lifecycle'
agentmesh_lifecycle.naptime = 1
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION agentmesh_lifecycle;
CREATE ROLE agent_login LOGIN IN ROLE agentmesh_agent;
INSERT INTO agentmesh.policies (name, require_approval, heartbeat_interval, orphan_threshold,
		max_credential_ttl, rotation_overlap, rotate_after, heartbeat_requires_token)
	VALUES ('fast', false, '1 second', '8 seconds', '6 seconds', '1 second', 0.5, true);
});
my $id = $node->safe_psql('postgres',
	"SELECT (agentmesh.lm_request('long-runner', 'alice', policy => 'fast')).agent_id");
my ($first, $token) = split /\|/, $node->safe_psql('postgres',
	"SELECT credential_id || '|' || token FROM agentmesh.lm_activate('$id')");

my $dir = PostgreSQL::Test::Utils::tempdir();
my $token_file = "$dir/token";
open my $fh, '>', $token_file or die;
print $fh "$token\n";
close $fh;
chmod 0600, $token_file;

my $dsn = $node->connstr('postgres') . ' user=agent_login';
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[
		$python, $agent_py, '--dsn', $dsn, '--agent-id', $id,
		'--token-file', $token_file, '--interval', '1', '--duration', '24'
	],
	'>', \$out, '2>', \$err);

# sample: how many credentials of the agent verify, twice a second
my $max_live = 0;
my $samples = 0;
my $until = time + 24;
while (time < $until)
{
	my $live = $node->safe_psql('postgres',
		"SELECT count(*) FROM agentmesh.credentials WHERE agent_id = '$id' AND revoked_at IS NULL"
		  . " AND issued_at <= clock_timestamp() AND clock_timestamp() < expires_at");
	$max_live = $live if $live > $max_live;
	$samples++;
	sleep 0.5;
}
$h->finish;
my $rc = $? >> 8;
note $out;
note $err if $err ne '';

is($rc, 0, 'the agent exits cleanly: no heartbeat was refused');
unlike($out, qr/heartbeat refused/, 'no refused heartbeat in the agent log');
my ($beats) = $out =~ /stopped after (\d+) heartbeats, 0 refused/;
cmp_ok($beats // 0, '>=', 18, 'the agent heartbeated about every second');
cmp_ok($max_live, '<=', 2, "at most two credentials verified at any of $samples samples");
cmp_ok($max_live, '>=', 1, 'the agent always had a credential');

my $rotations = $node->safe_psql('postgres',
	"SELECT count(*) FROM agentmesh.audit_events WHERE agent_id = '$id'"
	  . " AND event_type = 'credential_rotated' AND actor = 'agentmesh-maintenance'");
cmp_ok($rotations, '>=', 5, "the worker rotated $rotations times");
my $claims = () = $out =~ /claimed successor/g;
cmp_ok($claims, '>=', 5, "the agent claimed $claims successors itself");
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM agentmesh.credentials c WHERE c.agent_id = '$id'"
		  . " AND c.credential_id <> '$first' AND NOT EXISTS (SELECT FROM agentmesh.audit_events e"
		  . "  WHERE e.agent_id = c.agent_id AND e.event_type = 'credential_rotated'"
		  . "    AND e.details->>'new_credential' = c.credential_id)"),
	'0', 'every credential after the first is audited as a rotation');

open $fh, '<', $token_file or die;
my $final = <$fh>;
close $fh;
chomp $final;
isnt($final, $token, 'the token file holds a newer token');
is($node->safe_psql('postgres', "SELECT agentmesh.lm_verify_credential('$final')"),
	$id, 'the newest token verifies');
unlike($out . $err, qr/amk_[0-9a-f]{8}/, 'no token in the agent output');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM agentmesh.audit_events WHERE details::text LIKE '%amk\\_%'"),
	'0', 'no token in the audit trail');
is($node->safe_psql('postgres',
		"SELECT count(*) <= 1 FROM agentmesh.credentials WHERE agent_id = '$id' AND last_used_at IS NULL"),
	't', 'every credential was used (last_used_at) but at most the newest, unclaimed one');

# the agent stopped: it is orphaned, and its credentials expire
ok( $node->poll_query_until(
		'postgres', "SELECT state = 'orphaned' FROM agentmesh.agents WHERE agent_id = '$id'"),
	'a stopped agent is still orphaned');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM agentmesh.credentials WHERE agent_id = '$id' AND revoked_at IS NULL"
		  . " AND clock_timestamp() < expires_at"),
	'and its credentials expire');
is($node->safe_psql('postgres', "SELECT agentmesh.lm_verify_credential('$final') IS NULL"),
	't', 'its last token no longer verifies');
is($node->safe_psql('postgres', 'SELECT intact FROM agentmesh.lm_verify_audit()'),
	't', 'the audit trail verifies');

$node->stop;
done_testing();
