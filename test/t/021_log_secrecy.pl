# Tokens never reach the server log, with log_statement = 'all', when the
# application sends them as bind parameters and its login role carries the
# documented deployment setting log_parameter_max_length = 0.
#  - lm_verify_credential with valid, malformed (bad checksum, truncated,
#    over-long), expired, revoked and suspended-agent tokens, through the
#    extended and the prepared protocol (pgbench -M extended / -M prepared);
#  - lm_heartbeat with a wrong token under heartbeat_requires_token (an
#    ERROR, so log_min_error_statement logs the statement as well);
#  - negative control: a login without the setting does leak the token in
#    "DETAIL:  parameters: $1 = '...'", proving the setting is what matters;
#  - pgaudit with pgaudit.log_parameter = on: the role that passes tokens
#    gets pgaudit.log_parameter = off, as docs/credentials.md says, and no
#    token is logged; a role without it leaks the token into the AUDIT line
#    even with log_parameter_max_length = 0 (skipped where pgaudit has no
#    build, e.g. on the self-built 18).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('secrecy');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'agentmesh_lifecycle'\n"
	  . "agentmesh_lifecycle.enabled = off\n"
	  . "log_statement = 'all'\n"
	  . "log_min_error_statement = error\n");
$node->start;

sub sql { return $node->safe_psql('postgres', shift); }

sql(q{
CREATE EXTENSION agentmesh_lifecycle;
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap) VALUES ('short', '1 second', '0');
INSERT INTO agentmesh.policies (name, heartbeat_requires_token) VALUES ('tokened', true);
CREATE ROLE agent_login LOGIN IN ROLE agentmesh_agent;
ALTER ROLE agent_login SET log_parameter_max_length = 0;
CREATE ROLE careless_login LOGIN IN ROLE agentmesh_agent;
});

sub active_agent
{
	my ($policy) = @_;
	my $id = sql("SELECT agent_id FROM agentmesh.lm_request('bot', 'alice\@example.com', policy => '$policy')");
	sql("SELECT agentmesh.lm_approve('$id', 'approver')");
	my $tok = sql("SELECT token FROM agentmesh.lm_activate('$id')");
	return ($id, $tok);
}

my %tok;
my ($id_valid, $id_exp, $id_rev, $id_sus, $id_hb);
($id_valid, $tok{valid}) = active_agent('default');
($id_exp, $tok{expired}) = active_agent('short');
($id_rev, $tok{revoked}) = active_agent('default');
($id_sus, $tok{suspended}) = active_agent('default');
($id_hb, $tok{heartbeat}) = active_agent('tokened');
my (undef, $control) = active_agent('default');
sql("SELECT agentmesh.lm_revoke_credentials('$id_rev', 'leaked')");
sql("SELECT agentmesh.lm_suspend('$id_sus', 'incident')");
$tok{bad_checksum} = substr($tok{valid}, 0, -1) . (substr($tok{valid}, -1) eq '0' ? '1' : '0');
$tok{truncated} = substr($tok{valid}, 0, -2);
$tok{overlong} = $tok{valid} . 'ff';
sleep 2;    # the 'short' policy's token has expired

my $dir = PostgreSQL::Test::Utils::tempdir;
sub write_script
{
	my ($name, $sql) = @_;
	open my $fh, '>', "$dir/$name" or die $!;
	print $fh "$sql\n";
	close $fh;
	return "$dir/$name";
}
my $verify = write_script('verify.sql', 'SELECT agentmesh.lm_verify_credential(:tok) IS NOT NULL AS ok;');
my $hb = write_script('hb.sql', 'SELECT state FROM agentmesh.lm_heartbeat(:id, :tok);');

# pgbench sends :variables as bind parameters in extended and prepared mode
sub pgbench
{
	my ($user, $mode, $script, %vars) = @_;
	my @cmd = ('pgbench', '-n', '-t', '1', '-M', $mode, '-f', $script,
		'-h', $node->host, '-p', $node->port, '-U', $user,
		map({ ('-D', "$_=$vars{$_}") } sort keys %vars), 'postgres');
	return run_log(\@cmd);
}

my $logpos = -s $node->logfile;
for my $kind (sort keys %tok)
{
	next if $kind eq 'heartbeat';
	for my $mode ('extended', 'prepared')
	{
		ok(pgbench('agent_login', $mode, $verify, tok => $tok{$kind}),
			"verify a $kind token ($mode protocol) runs without error");
	}
}
# heartbeat for the tokened agent with another agent's token: 42501 ERROR
ok(!pgbench('agent_login', 'extended', $hb, id => $id_hb, tok => $tok{valid}),
	'heartbeat with a wrong token fails');
ok(pgbench('agent_login', 'extended', $hb, id => $id_hb, tok => $tok{heartbeat}),
	'heartbeat with the right token succeeds');

my $log = slurp_file($node->logfile, $logpos);
like($log, qr/execute .*lm_verify_credential\(\$1\)/, 'the statements were logged (log_statement = all)');
like($log, qr/permission denied|heartbeat refused: no live credential/, 'the failing heartbeat was logged as an ERROR');
for my $kind (sort keys %tok)
{
	my $body = substr($tok{$kind}, 4, 40);
	ok(index($log, $body) < 0, "no part of the $kind token is in the server log");
}

# results as seen by the database: only the valid token verifies (this
# superuser query has the tokens as literals, so it runs after the log scan)
is(sql(qq{SELECT string_agg(k, ',' ORDER BY k) FROM (VALUES
	('valid', '$tok{valid}'), ('expired', '$tok{expired}'), ('revoked', '$tok{revoked}'),
	('suspended', '$tok{suspended}'), ('bad_checksum', '$tok{bad_checksum}'),
	('truncated', '$tok{truncated}'), ('overlong', '$tok{overlong}')) t(k, v)
	WHERE agentmesh.lm_verify_credential(v) IS NOT NULL}), 'valid',
	'only the valid token verifies');

# negative control: without log_parameter_max_length = 0 the token leaks
$logpos = -s $node->logfile;
ok(pgbench('careless_login', 'extended', $verify, tok => $control), 'control verify runs');
my $ctl = slurp_file($node->logfile, $logpos);
ok(index($ctl, $control) >= 0,
	'negative control: a login without log_parameter_max_length = 0 leaks the token as a logged parameter');

# A name in a log line is quoted and escaped: a database whose name holds a
# newline cannot start a line that looks like the server's own (here a
# forged seal line).
my $evil = "ev\"il\nLOG:  agentmesh_lifecycle: audit seal 9";
$node->safe_psql('postgres', q{SELECT format('CREATE DATABASE %I', E'}
	  . ($evil =~ s/\n/\\n/r =~ s/'/''/gr) . q{') \gexec});
$logpos = -s $node->logfile;
$node->safe_psql($evil, q{
CREATE EXTENSION agentmesh_lifecycle;
SELECT agentmesh.lm_request('b', 'o@example.com') IS NOT NULL;
SELECT seals FROM agentmesh.lm_run_maintenance();
});
my $seal_log = slurp_file($node->logfile, $logpos);
like($seal_log, qr/audit seal 1 of database "ev\\"il\\x0aLOG:  agentmesh_lifecycle: audit seal 9": /,
	'the seal line quotes and escapes the database name');
unlike($seal_log, qr/^LOG:  agentmesh_lifecycle: audit seal 9/m,
	'no log line starts with the forged text');

$node->stop;

# pgaudit (Debian's postgresql-15-pgaudit) with pgaudit.log_parameter = on
# logs every bind value in its AUDIT line, whatever log_parameter_max_length
# says.  The documented per-role guidance (docs/credentials.md#secrecy):
# the roles that pass tokens get pgaudit.log_parameter = off (and
# log_parameter_max_length = 0); auditing of the statements stays on.
my $pkglibdir = $node->config_data('--pkglibdir');
SKIP:
{
	skip "pgaudit is not installed for this PostgreSQL ($pkglibdir): on 15 install Debian's "
	  . "postgresql-15-pgaudit; no pgaudit build exists for the self-built 18", 4
	  unless -e "$pkglibdir/pgaudit.so";

	my $pa = PostgreSQL::Test::Cluster->new('pgaudit');
	$pa->init;
	$pa->append_conf('postgresql.conf',
		"shared_preload_libraries = 'agentmesh_lifecycle, pgaudit'\n"
		  . "agentmesh_lifecycle.enabled = off\n"
		  . "pgaudit.log = 'function, read, write'\n"
		  . "pgaudit.log_parameter = on\n");
	$pa->start;
	$pa->safe_psql('postgres', q{
CREATE EXTENSION pgaudit;
CREATE EXTENSION agentmesh_lifecycle;
CREATE ROLE agent_login LOGIN IN ROLE agentmesh_agent;
ALTER ROLE agent_login SET log_parameter_max_length = 0;
ALTER ROLE agent_login SET pgaudit.log_parameter = off;
CREATE ROLE careless_login LOGIN IN ROLE agentmesh_agent;
ALTER ROLE careless_login SET log_parameter_max_length = 0;
});
	my $aid = $pa->safe_psql('postgres', q{SELECT agent_id FROM agentmesh.lm_request('bot', 'o@example.com')});
	$pa->safe_psql('postgres', "SELECT agentmesh.lm_approve('$aid')");
	my $ptok = $pa->safe_psql('postgres', "SELECT token FROM agentmesh.lm_activate('$aid')");
	my $pos = -s $pa->logfile;
	my @base = ('pgbench', '-n', '-t', '1', '-M', 'extended', '-f', $verify,
		'-h', $pa->host, '-p', $pa->port, '-D', "tok=$ptok");
	ok(run_log([ @base, '-U', 'agent_login', 'postgres' ]), 'pgaudit: verify as the guided login');
	my $alog = slurp_file($pa->logfile, $pos);
	like($alog, qr/AUDIT: SESSION,.*lm_verify_credential/, 'pgaudit audited the call');
	ok(index($alog, substr($ptok, 4, 40)) < 0,
		'pgaudit with the per-role setting: no part of the token in the log');
	$pos = -s $pa->logfile;
	run_log([ @base, '-U', 'careless_login', 'postgres' ]);
	ok(index(slurp_file($pa->logfile, $pos), $ptok) >= 0,
		'negative control: pgaudit.log_parameter on leaks the token despite log_parameter_max_length = 0');
	$pa->stop;
}

done_testing();
