# Prometheus: Debian's prometheus-postgres-exporter, started against a test
# cluster listening on 127.0.0.1 with examples/postgres_exporter_queries.yaml
# and a login in role agentmesh_auditor, as docs/integrations.md says.
# Proves: /metrics (scraped a bounded number of times) has every agentmesh
# series with the values of the fleet: one series per state and orphan
# reason, zeros included, the expiry windows, the ages and the error count.
# Skipped when the exporter is not installed.
use strict;
use warnings;
use File::Basename qw(dirname);
use HTTP::Tiny;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $exporter = '/usr/bin/prometheus-postgres-exporter';
plan skip_all => "prometheus-postgres-exporter is not installed (Debian package prometheus-postgres-exporter)"
  unless -x $exporter;

my $root = dirname(__FILE__) . '/../..';
my $node = PostgreSQL::Test::Cluster->new('prom');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'agentmesh_lifecycle'\n"
	  . "agentmesh_lifecycle.enabled = off\n"
	  . "listen_addresses = '127.0.0.1'\n");
$node->append_conf('pg_hba.conf', "host all exporter 127.0.0.1/32 trust\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION agentmesh_lifecycle;
CREATE ROLE exporter LOGIN IN ROLE agentmesh_auditor;
INSERT INTO agentmesh.policies (name, require_approval, max_credential_ttl, rotation_overlap)
VALUES ('short', false, '30 minutes', '1 minute'), ('long', false, '24 hours', '5 minutes');
SELECT agentmesh.lm_activate(agent_id) FROM agentmesh.lm_request('a1', 'alice@example.com', policy => 'short');
SELECT agentmesh.lm_activate(agent_id) FROM agentmesh.lm_request('a2', 'alice@example.com', policy => 'long');
SELECT agentmesh.lm_request('p1', 'bob@example.com');
SELECT agentmesh.lm_request('p2', 'bob@example.com');
SELECT agentmesh.lm_run_maintenance();
});

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = 'postgresql://exporter@127.0.0.1:' . $node->port . '/postgres?sslmode=disable';
my $log = $PostgreSQL::Test::Utils::tmp_check . '/exporter.log';
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0)
{
	open(STDOUT, '>', $log) or die;
	open(STDERR, '>&', \*STDOUT) or die;
	$ENV{DATA_SOURCE_NAME} = $dsn;
	exec($exporter, "--web.listen-address=127.0.0.1:$port",
		"--extend.query-path=$root/examples/postgres_exporter_queries.yaml",
		'--disable-default-metrics', '--disable-settings-metrics')
	  or die "exec: $!";
}

# at most 40 scrapes, 0.25 s apart, until the agentmesh series are there
my $http = HTTP::Tiny->new(timeout => 5);
my $body = '';
my $scrapes = 0;
while ($scrapes < 40)
{
	$scrapes++;
	my $res = $http->get("http://127.0.0.1:$port/metrics");
	if ($res->{success} && $res->{content} =~ /^agentmesh_worker_errors[{ ]/m)
	{
		$body = $res->{content};
		last;
	}
	sleep 0.25;
}
kill 'TERM', $pid;
waitpid($pid, 0);
note("scrapes: $scrapes");
ok($body ne '', "the exporter served the agentmesh series (after $scrapes scrapes)")
  or diag(slurp_file($log));

# the series, keyed by name and labels without the exporter's own server label
my %series;
for my $line (split /\n/, $body)
{
	next unless $line =~ /^(agentmesh\w*)(?:\{(.*)\})? (\S+)$/;
	my ($name, $labels, $v) = ($1, $2 // '', $3);
	$labels = join(',', grep { !/^server=/ } split(/,(?=\w+=")/, $labels));
	$series{ $labels eq '' ? $name : "$name\{$labels\}" } = $v;
}
sub value { return $series{ $_[0] }; }

my %want = (
	'agentmesh_agents_count{state="active"}' => 2,
	'agentmesh_agents_count{state="pending_approval"}' => 2,
	'agentmesh_agents_count{state="orphaned"}' => 0,
	'agentmesh_agents_count{state="decommissioned"}' => 0,
	'agentmesh_orphan_candidates_count{reason="no_owner"}' => 0,
	'agentmesh_orphan_candidates_count{reason="silent"}' => 0,
	'agentmesh_credentials_expiring_count{window="1h"}' => 1,
	'agentmesh_credentials_expiring_count{window="24h"}' => 2,
	'agentmesh_credentials_expired' => 0,
	'agentmesh_worker_errors' => 0,
);
for my $s (sort keys %want)
{
	is(value($s), $want{$s}, "$s = $want{$s}");
}
is(scalar(grep { /^agentmesh_agents_count\{/ } keys %series), 8, 'one agents series per state');
is(scalar(grep { /^agentmesh_orphan_candidates_count\{/ } keys %series), 4, 'one series per orphan rule');
my $seal_age = value('agentmesh_last_seal_age_seconds');
ok(defined $seal_age && $seal_age >= 0 && $seal_age < 600, 'the seal age is a number of seconds');
# lm_run_maintenance() in SQL is not a recorded run: the pass age is unknown
is(value('agentmesh_last_pass_age_seconds'), 'NaN', 'no recorded pass: NaN, not 0');

$node->stop;
done_testing();
