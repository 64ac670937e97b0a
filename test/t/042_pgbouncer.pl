# pgbouncer in transaction pooling mode (Debian's pgbouncer 1.18) in front of
# a test cluster, as docs/integrations.md#poolers describes: an extended-
# protocol client (psycopg 3, bind parameters, no named prepared statements)
# runs full lifecycles, heartbeats with tokens and verifications over client
# connections that share two server connections.
# Proves: zero failures; the audit rows' db_user is the client's login (the
# user pgbouncer logs in as), actor the claimed name; the audit chains verify.
# Skipped when pgbouncer or python3-psycopg is not installed.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pgbouncer = '/usr/sbin/pgbouncer';
plan skip_all => 'pgbouncer is not installed (Debian package pgbouncer)' unless -x $pgbouncer;
plan skip_all => 'psycopg 3 is not installed (Debian package python3-psycopg)'
  unless system('/usr/bin/python3', '-c', 'import psycopg') == 0;

my $root = dirname(__FILE__) . '/../..';
my $node = PostgreSQL::Test::Cluster->new('bouncer');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'agentmesh_lifecycle'\n"
	  . "agentmesh_lifecycle.enabled = off\n"
	  . "log_statement = 'all'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION agentmesh_lifecycle;
CREATE ROLE app_admin LOGIN IN ROLE agentmesh_admin;
CREATE ROLE agent_login LOGIN IN ROLE agentmesh_agent;
ALTER ROLE agent_login SET log_parameter_max_length = 0;
UPDATE agentmesh.policies SET heartbeat_requires_token = true WHERE name = 'default';
});

my $dir = $PostgreSQL::Test::Utils::tmp_check . '/pgbouncer';
mkdir $dir;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $sock = $node->host;
my $pgport = $node->port;
open(my $fh, '>', "$dir/userlist.txt") or die;
print $fh qq{"app_admin" ""\n"agent_login" ""\n};
close $fh;
open($fh, '>', "$dir/pgbouncer.ini") or die;
print $fh <<"EOT";
[databases]
app = host=$sock port=$pgport dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOT
close $fh;

my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0)
{
	open(STDOUT, '>>', "$dir/pgbouncer.out") or die;
	open(STDERR, '>&', \*STDOUT) or die;
	exec($pgbouncer, "$dir/pgbouncer.ini") or die "exec: $!";
}
# bounded wait for the listener
my $up = 0;
for (1 .. 50)
{
	if (system("$ENV{PG_BINDIR}/pg_isready -q -h 127.0.0.1 -p $port -d app -U app_admin") == 0
		|| (!$ENV{PG_BINDIR} && system("pg_isready -q -h 127.0.0.1 -p $port -d app -U app_admin") == 0))
	{
		$up = 1;
		last;
	}
	select(undef, undef, undef, 0.2);
}
ok($up, 'pgbouncer listens') or diag(slurp_file("$dir/pgbouncer.log"));

my $admin_dsn = "host=127.0.0.1 port=$port dbname=app user=app_admin";
my $agent_dsn = "host=127.0.0.1 port=$port dbname=app user=agent_login";
my ($out, $err) = run_command(['/usr/bin/python3', "$root/test/pooler/client.py", $admin_dsn, $agent_dsn, 20]);
is($out, 'lifecycles 20 heartbeats 200 verifications 200 failures 0',
	'20 lifecycles, 200 heartbeats and 200 verifications through pgbouncer, no failure')
  or diag($err);

is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT db_user || '/' || actor, ',' ORDER BY db_user || '/' || actor)
  FROM agentmesh.audit_events WHERE event_type = 'requested'}),
	'app_admin/pooler-test', 'db_user is the client login pgbouncer connected as; actor the claim');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM agentmesh.agents WHERE state = 'decommissioned' AND heartbeat_count = 10}),
	'20', 'every agent got its ten heartbeats and was decommissioned');
is($node->safe_psql('postgres', 'SELECT intact FROM agentmesh.lm_verify_audit()'), 't',
	'the audit chains verify');
# the calls were extended-protocol binds (unnamed statements), and the
# agent login's log_parameter_max_length = 0 kept the tokens out of the log
my $pglog = slurp_file($node->logfile);
like($pglog, qr/execute <unnamed>: SELECT state FROM agentmesh\.lm_heartbeat\(\$1, \$2\)/,
	'heartbeats arrived as extended-protocol binds');
unlike($pglog, qr/amk_/, 'no token in the server log');
# two server connections served every client
cmp_ok($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE usename IN ('app_admin', 'agent_login')}),
	'<=', 4, 'at most two server connections per login');

kill 'TERM', $pid;
waitpid($pid, 0);
$node->stop;
done_testing();
