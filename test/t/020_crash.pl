# Crash and fault tests: a transition interrupted before COMMIT leaves no
# trace.
#  - kill -9 of the backend in the middle of activate, rotate, decommission
#    (the lm_* call has run inside an open transaction, the row lock is held,
#    COMMIT was never sent): after crash recovery the agent row, its
#    credentials and its audit rows are exactly as before, the token the
#    killed call returned does not verify, the chains verify, and the same
#    operation then succeeds;
#  - statement_timeout and pg_cancel_backend() while a transition waits on a
#    row lock, inside a transaction that already did another transition:
#    both transitions are rolled back.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'agentmesh_lifecycle'\n"
	  . "agentmesh_lifecycle.enabled = off\n"
	  . "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION agentmesh_lifecycle');

sub sql { return $node->safe_psql('postgres', shift); }

# a new agent in the given state: provisioned or active
sub new_agent
{
	my ($state) = @_;
	my $id = sql("SELECT agent_id FROM agentmesh.lm_request('bot', 'alice\@example.com')");
	sql("SELECT agentmesh.lm_approve('$id', 'approver')");
	sql("SELECT agentmesh.lm_activate('$id')") if $state eq 'active';
	return $id;
}

# everything the extension stores about one agent, as one string
sub snapshot
{
	my ($id) = @_;
	return sql(
		qq{SELECT a::text,
		  (SELECT string_agg(c::text, ';' ORDER BY c.credential_id) FROM agentmesh.credentials c WHERE c.agent_id = a.agent_id),
		  (SELECT string_agg(e::text, ';' ORDER BY e.seq) FROM agentmesh.audit_events e WHERE e.agent_id = a.agent_id)
		 FROM agentmesh.agents a WHERE a.agent_id = '$id'});
}

# state, credentials and audit agree for every agent
sub coherent
{
	return sql(
		q{SELECT bool_and(a.audit_seq = (SELECT count(*) FROM agentmesh.audit_events e WHERE e.agent_id = a.agent_id)
		            AND a.state = (SELECT e.new_state FROM agentmesh.audit_events e
		                            WHERE e.agent_id = a.agent_id AND e.new_state IS NOT NULL
		                            ORDER BY e.seq DESC LIMIT 1)
		            AND (a.credential_id IS NULL OR EXISTS (SELECT FROM agentmesh.credentials c
		                                                     WHERE c.credential_id = a.credential_id)))
		          AND (agentmesh.lm_verify_audit()).intact
		 FROM agentmesh.agents a});
}

my %ops = (
	activate     => [ 'provisioned', "SELECT token FROM agentmesh.lm_activate('%s')" ],
	rotate       => [ 'active', "SELECT token FROM agentmesh.lm_rotate_credentials('%s')" ],
	decommission => [ 'active', "SELECT state FROM agentmesh.lm_decommission('%s', 'retired')" ],);

for my $op (sort keys %ops)
{
	my ($from, $call) = @{ $ops{$op} };
	my $id = new_agent($from);
	my $before = snapshot($id);
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_safe('BEGIN');
	my $out = $bg->query_safe(sprintf($call, $id));
	# the transition has run: another session cannot lock the row
	my ($rc, $o, $err) = $node->psql('postgres',
		"SELECT 1 FROM agentmesh.agents WHERE agent_id = '$id' FOR UPDATE NOWAIT");
	like($err, qr/could not obtain lock/, "$op: transition in progress holds the agent row");

	my $logpos = -s $node->logfile;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $logpos);
	$node->poll_query_until('postgres', 'SELECT true') or die "no restart";
	eval { $bg->quit; };

	is(snapshot($id), $before, "$op: after kill -9 and recovery the agent, credentials and audit are as before");
	if ($op ne 'decommission')
	{
		is(sql("SELECT agentmesh.lm_verify_credential('$out') IS NULL"), 't',
			"$op: the token returned by the killed call does not verify");
	}
	is(coherent(), 't', "$op: state, credentials and audit agree; chains verify");
	sql(sprintf($call, $id));
	isnt(snapshot($id), $before, "$op: the same operation succeeds after recovery");
	is(coherent(), 't', "$op: coherent after the retry");
}

# --- statement_timeout / pg_cancel_backend while waiting for a row lock ----
for my $how ('statement_timeout', 'pg_cancel_backend')
{
	my $x = new_agent('active');    # locked by the blocker
	my $y = new_agent('active');    # changed first by the victim
	my ($bx, $by) = (snapshot($x), snapshot($y));

	my $blocker = $node->background_psql('postgres');
	$blocker->query_safe('BEGIN');
	$blocker->query_safe("SELECT 1 FROM agentmesh.agents WHERE agent_id = '$x' FOR UPDATE");

	my $victim = $node->background_psql('postgres', on_error_stop => 0);
	my $vpid = $victim->query_safe('SELECT pg_backend_pid()');
	$victim->query_safe('BEGIN');
	$victim->query_safe("SELECT agentmesh.lm_rotate_credentials('$y')");
	$victim->query_safe("SELECT agentmesh.lm_suspend('$y', 'first')");
	if ($how eq 'statement_timeout')
	{
		$victim->query_safe("SET LOCAL statement_timeout = '300ms'");
		$victim->query("SELECT agentmesh.lm_decommission('$x', 'second')");
	}
	else
	{
		$victim->query_until(qr/sent/, "\\echo sent\nSELECT agentmesh.lm_decommission('$x', 'second');\n");
		$node->poll_query_until('postgres',
			"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $vpid")
		  or die "victim never waited";
		sql("SELECT pg_cancel_backend($vpid)");
		$victim->query('SELECT 1');
	}
	like($victim->{stderr}, qr/canceling statement due to (statement timeout|user request)/,
		"$how: the waiting decommission is cancelled");
	$victim->{stderr} = '';
	$victim->query('COMMIT');
	$victim->quit;
	$blocker->query_safe('COMMIT');
	$blocker->quit;

	is(snapshot($x), $bx, "$how: the cancelled decommission changed nothing");
	is(snapshot($y), $by, "$how: the earlier rotate and suspend in the same transaction were rolled back");
	is(coherent(), 't', "$how: state, credentials and audit agree; chains verify");
}

ok(!$node->log_contains(qr/TRAP:|terminated by signal (?!9)/), 'no assertion failure or unexpected signal in the server log');
$node->stop;
done_testing();
