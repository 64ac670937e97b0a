# Revocation wins (issue 10): an administrator's lm_revoke_credentials,
# lm_suspend and lm_decommission is never held up longer than
# agentmesh_lifecycle.revocation_wait by a session holding the agent's row.
#  (a) an agent login idling in "BEGIN; SELECT lm_heartbeat(id, token);"
#      (also inside a savepoint): the revocation completes after the bound
#      (the default one, 5 s, measured) and not before, the holder is
#      terminated, its heartbeat rolled back, the token no longer verifies and
#      a new heartbeat with it is refused;
#  (b) a requester holding an open lm_rotate_credentials transaction: the
#      same for lm_suspend and lm_decommission; neither the old nor the
#      uncommitted new token verifies;
#      two sessions sharing the row's lock (a multixact) are both terminated;
#  (c) an administrator's session (a non-superuser agentmesh_admin login,
#      and a superuser) holding the row: 55P03 naming its process id, after
#      the bound and not before; the holder is alive; nothing changed;
#  (d) the bound is respected: every elapsed time is at least the bound and
#      below the bound plus a generous margin; no time is printed;
#  (e) operations that do not revoke (lm_change_owner by an administrator)
#      and a revoking operation by a caller who is not an administrator
#      still wait for the holder as before, terminating no one;
#  (f) from the moment the revocation commits, a transaction opened before
#      it (READ COMMITTED and REPEATABLE READ) no longer verifies the token
#      and cannot heartbeat with it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

# generous: the machine may be loaded; the lower limit is the point
my $margin = 10;

my $node = PostgreSQL::Test::Cluster->new('revocation');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'agentmesh_lifecycle'\n"
	  . "agentmesh_lifecycle.enabled = off\n"
	  . "max_prepared_transactions = 5\n");
$node->start;

sub sql { return $node->safe_psql('postgres', shift); }

sql(q{
CREATE EXTENSION agentmesh_lifecycle;
CREATE ROLE agent_login LOGIN IN ROLE agentmesh_agent;
CREATE ROLE req_login LOGIN IN ROLE agentmesh_requester;
CREATE ROLE admin_login LOGIN IN ROLE agentmesh_admin;
CREATE ROLE admin2_login LOGIN IN ROLE agentmesh_admin;
-- not an administrator, but a requester of the agents' team, so allowed to
-- suspend them: waits as before
CREATE ROLE ops_login LOGIN IN ROLE agentmesh_requester, req_login;
-- and to lock agent rows in plain SQL, so that two of its sessions can share
-- one (BYPASSRLS: row locks of a plain SELECT also need an UPDATE policy)
ALTER ROLE ops_login BYPASSRLS;
GRANT SELECT (agent_id), UPDATE (purpose) ON agentmesh.agents TO ops_login;
-- the SQLSTATE of a statement, or 'ok'
CREATE FUNCTION public.try(q text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$;
GRANT EXECUTE ON FUNCTION public.try(text) TO PUBLIC;
});

sub active_agent
{
	# of req_login's team, so that the requester may rotate it (issue 10)
	my $id = sql("SELECT agent_id FROM agentmesh.lm_request('bot', 'alice\@example.com', team => 'req_login')");
	sql("SELECT agentmesh.lm_approve('$id', 'approver')");
	my $tok = sql("SELECT token FROM agentmesh.lm_activate('$id')");
	return ($id, $tok);
}

# agent row, credentials and audit trail of one agent, as one text
sub fingerprint
{
	my ($id) = @_;
	return sql(qq{
		SELECT md5(concat_ws('|',
			(SELECT a::text FROM agentmesh.agents a WHERE agent_id = '$id'),
			(SELECT string_agg(c::text, ',' ORDER BY credential_id) FROM agentmesh.credentials c WHERE agent_id = '$id'),
			(SELECT string_agg(e::text, ',' ORDER BY event_id) FROM agentmesh.audit_events e WHERE agent_id = '$id')))});
}

sub verifies
{
	my ($tok) = @_;
	return $node->safe_psql('postgres', "SELECT agentmesh.lm_verify_credential('$tok') IS NOT NULL",
		extra_params => [ '-U', 'agent_login' ]) eq 't';
}

sub heartbeat_sqlstate
{
	my ($id, $tok) = @_;
	return $node->safe_psql('postgres',
		"SELECT public.try(\$\$SELECT agentmesh.lm_heartbeat('$id', '$tok')\$\$)",
		extra_params => [ '-U', 'agent_login' ]);
}

sub alive
{
	my ($pid) = @_;
	return sql("SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") eq '1';
}

sub gone
{
	my ($pid) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid");
}

# A session of $user holding an open transaction after running @stmts.
sub holder
{
	my ($user, @stmts) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0,
		extra_params => [ '-U', $user ]);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_safe('BEGIN');
	my $out;
	$out = $bg->query_safe($_) for @stmts;
	return ($bg, $pid, $out);
}

sub close_dead
{
	my ($bg) = @_;
	eval { $bg->quit; };
}

# Run $sql as $user with revocation_wait = $wait_ms (undef: the default);
# returns (ok, stdout, stderr, seconds).
sub timed
{
	my ($user, $wait_ms, $sql) = @_;
	my $set = defined $wait_ms ? "SET agentmesh_lifecycle.revocation_wait = $wait_ms;\n" : '';
	my ($out, $err);
	my $t0 = time;
	my $rc = $node->psql('postgres', "\\set VERBOSITY verbose\n$set$sql",
		stdout => \$out, stderr => \$err, extra_params => [ '-U', $user ]);
	my $dt = time - $t0;
	return ($rc == 0 && $err !~ /ERROR/, $out, $err, $dt);
}

sub within
{
	my ($dt, $bound_s, $what) = @_;
	ok($dt >= $bound_s, "$what: not before the bound");
	ok($dt < $bound_s + $margin, "$what: within the bound plus a margin");
	diag(sprintf('%s: %.2f s (bound %.1f s)', $what, $dt, $bound_s));
}

is(sql('SHOW agentmesh_lifecycle.revocation_wait'), '5s', 'the default bound is 5 s');

# ---- (a) an agent login holding a heartbeat -------------------------------
{
	my ($id, $tok) = active_agent();
	my $count = sql("SELECT heartbeat_count FROM agentmesh.agents WHERE agent_id = '$id'");
	my ($bg, $pid) = holder('agent_login',
		"SELECT state FROM agentmesh.lm_heartbeat('$id', '$tok')");
	my ($ok, $out, $err, $dt) = timed('admin_login', undef,
		"SELECT credential_id IS NULL FROM agentmesh.lm_revoke_credentials('$id', 'leaked')");
	ok($ok, 'revoke with a heartbeat holder succeeds') or diag($err);
	is($out, 't', 'the credential is gone from the agent');
	within($dt, 5, 'revoke, heartbeat holder, default bound');
	ok(gone($pid), 'the heartbeat holder was terminated');
	close_dead($bg);
	ok(!verifies($tok), 'its token no longer verifies');
	is(heartbeat_sqlstate($id, $tok), '42501', 'a heartbeat with it is refused');
	is(sql("SELECT heartbeat_count FROM agentmesh.agents WHERE agent_id = '$id'"), $count,
		'the held heartbeat was rolled back');
	is(sql("SELECT count(*) FROM agentmesh.audit_events WHERE agent_id = '$id' AND event_type = 'credential_revoked'"),
		'1', 'one credential_revoked event');
	is(sql("SELECT count(*) FROM agentmesh.credentials WHERE agent_id = '$id' AND revoked_at IS NULL"),
		'0', 'no unrevoked credential');
	like($node->logfile ? slurp_file($node->logfile) : '',
		qr/terminating process $pid, which held agent "\Q$id\E" past agentmesh_lifecycle\.revocation_wait/,
		'the server log names the terminated process');
}

# (a) the holder took the row in a savepoint (a subtransaction's xid)
{
	my ($id, $tok) = active_agent();
	my ($bg, $pid) = holder('agent_login', 'SAVEPOINT s1',
		"SELECT state FROM agentmesh.lm_heartbeat('$id', '$tok')");
	my ($ok, $out, $err, $dt) = timed('admin_login', 1000,
		"SELECT credential_id IS NULL FROM agentmesh.lm_revoke_credentials('$id', 'leaked')");
	ok($ok, 'revoke with a holder in a savepoint succeeds') or diag($err);
	within($dt, 1, 'revoke, holder in a savepoint, 1 s bound');
	ok(gone($pid), 'the savepoint holder was terminated');
	close_dead($bg);
	ok(!verifies($tok), 'its token no longer verifies');
}

# ---- (b) a requester holding an open rotation -----------------------------
for my $op ('suspend', 'decommission')
{
	my ($id, $tok) = active_agent();
	my ($bg, $pid, $newtok) = holder('req_login',
		"SELECT token FROM agentmesh.lm_rotate_credentials('$id')");
	ok($newtok =~ /^amk_/, "the requester holds a rotation of the agent to $op");
	my ($ok, $out, $err, $dt) = timed('admin_login', 2000,
		"SELECT state FROM agentmesh.lm_$op('$id', 'incident')");
	ok($ok, "$op with a rotation holder succeeds") or diag($err);
	is($out, $op eq 'suspend' ? 'suspended' : 'decommissioned', "the agent is ${op}ed");
	within($dt, 2, "$op, rotation holder, 2 s bound");
	ok(gone($pid), "the rotation holder was terminated ($op)");
	close_dead($bg);
	ok(!verifies($tok), "the old token no longer verifies ($op)");
	ok(!verifies($newtok), "the uncommitted rotation's token does not verify ($op)");
	is(sql("SELECT count(*) FROM agentmesh.credentials WHERE agent_id = '$id'"), '1',
		"the rolled-back rotation left no credential ($op)");
	is(sql("SELECT count(*) FROM agentmesh.audit_events WHERE agent_id = '$id' AND event_type = 'credential_rotated'"),
		'0', "no rotation event ($op)");
	if ($op eq 'decommission')
	{
		isnt(heartbeat_sqlstate($id, $tok), 'ok', 'no heartbeat after the decommission');
		is(sql("SELECT count(*) FROM agentmesh.credentials WHERE agent_id = '$id' AND revoked_at IS NULL AND expires_at > now()"),
			'0', 'no usable credential after the decommission');
	}
}

# (b) two sessions sharing the row lock (a multixact): both are terminated
{
	my ($id, $tok) = active_agent();
	my ($bg1, $pid1) = holder('ops_login',
		"SELECT 1 FROM agentmesh.agents WHERE agent_id = '$id' FOR KEY SHARE");
	my ($bg2, $pid2) = holder('ops_login',
		"SELECT 1 FROM agentmesh.agents WHERE agent_id = '$id' FOR KEY SHARE");
	my ($ok, $out, $err, $dt) = timed('admin_login', 1000,
		"SELECT 1 FROM agentmesh.lm_revoke_credentials('$id', 'leaked')");
	ok($ok, 'revoke with two sharing holders succeeds') or diag($err);
	within($dt, 1, 'revoke, two sharing holders, 1 s bound');
	ok(gone($pid1) && gone($pid2), 'both sharing holders were terminated');
	close_dead($bg1);
	close_dead($bg2);
	ok(!verifies($tok), 'the token no longer verifies (sharing holders)');
}

# ---- (c) an administrator's session holding the row -----------------------
for my $who ('admin2_login', 'superuser')
{
	my ($id, $tok) = active_agent();
	my $fp = fingerprint($id);
	my $user = $who eq 'superuser' ? $node->safe_psql('postgres', 'SELECT current_user') : $who;
	my ($bg, $pid) = holder($user, "SELECT 1 FROM agentmesh.lm_heartbeat('$id')");
	for my $op ("lm_revoke_credentials('$id', 'leaked')", "lm_suspend('$id')", "lm_decommission('$id')")
	{
		my ($opname) = $op =~ /^(\w+)/;
		my ($ok, $out, $err, $dt) = timed('admin_login', 1500, "SELECT 1 FROM agentmesh.$op");
		ok(!$ok, "$opname fails while $who holds the row");
		like($err, qr/ERROR:  55P03: .*held up longer than agentmesh_lifecycle\.revocation_wait/, "$opname: 55P03 ($who)");
		like($err, qr/held by process $pid \(an administrator's session\), which is never terminated/,
			"$opname: the detail names the holder's process id ($who)");
		within($dt, 1.5, "$opname, $who holder, 1.5 s bound");
		ok(alive($pid), "the $who holder is not terminated ($opname)");
	}
	$bg->query_safe('ROLLBACK');
	$bg->quit;
	is(fingerprint($id), $fp, "nothing changed ($who holder)");
	ok(verifies($tok), "the token still verifies ($who holder)");
}

# a prepared transaction holding the row has no process to terminate: one
# that called a writing lm_* function cannot be prepared at all, and one
# that locked the row in plain SQL (here the superuser's) makes the
# revocation fail with 55P03, its HINT naming ROLLBACK PREPARED
{
	my ($id, $tok) = active_agent();
	my ($rc, $o, $e) = $node->psql('postgres',
		"BEGIN; SELECT 1 FROM agentmesh.lm_heartbeat('$id', '$tok'); PREPARE TRANSACTION 'hb'",
		extra_params => [ '-U', 'agent_login' ]);
	like($e, qr/cannot PREPARE a transaction that called a writing agentmesh function/,
		'an agent login cannot prepare its heartbeat transaction');
	is(sql("SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'hb'"), '0', 'nothing was prepared');
	sql("BEGIN; SELECT 1 FROM agentmesh.agents WHERE agent_id = '$id' FOR UPDATE; PREPARE TRANSACTION 'hold'");
	my ($ok, $out, $err, $dt) = timed('admin_login', 500,
		"SELECT 1 FROM agentmesh.lm_revoke_credentials('$id', 'leaked')");
	like($err, qr/55P03: .*\n.*held by a prepared transaction, which is never terminated/, 'a prepared holder: 55P03 naming it');
	like($err, qr/ROLLBACK PREPARED/, 'its HINT names ROLLBACK PREPARED');
	sql("ROLLBACK PREPARED 'hold'");
	ok(verifies($tok), 'nothing revoked (prepared holder)');
}

# ---- (e) operations that do not revoke, and callers who are not admins ---
{
	my ($id, $tok) = active_agent();
	for my $case ([ 'admin_login', "lm_change_owner('$id', 'bob\@example.com')" ],
		[ 'ops_login', "lm_suspend('$id', 'by ops')" ])
	{
		my ($user, $call) = @$case;
		my ($callname) = $call =~ /^(\w+)/;
		my ($bg, $pid) = holder('agent_login',
			"SELECT state FROM agentmesh.lm_heartbeat('$id', '$tok')");
		my $w = $node->background_psql('postgres', on_error_stop => 0,
			extra_params => [ '-U', $user ]);
		my $wpid = $w->query_safe('SELECT pg_backend_pid()');
		$w->query_safe('SET agentmesh_lifecycle.revocation_wait = 200');
		$w->query_until(qr/start/, "\\echo start\nSELECT state FROM agentmesh.$call;\n\\echo done\n");
		# ten bounds later it still waits for the row, and nobody was terminated
		sleep 2;
		ok($node->poll_query_until('postgres',
				"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $wpid"),
			"$user: $callname waits for the holder");
		ok(alive($pid), "$user: $callname terminates no one");
		$bg->query_safe('COMMIT');
		$bg->quit;
		$w->query_until(qr/done/, '');
		$w->quit;
	}
	is(sql("SELECT owner || ' ' || state FROM agentmesh.agents WHERE agent_id = '$id'"),
		'bob@example.com suspended', 'both waited and then completed');
}

# ---- (f) transactions opened before the revocation ------------------------
for my $iso ('READ COMMITTED', 'REPEATABLE READ')
{
	my ($id, $tok) = active_agent();
	my $v = $node->background_psql('postgres', on_error_stop => 0,
		extra_params => [ '-U', 'req_login' ]);
	$v->query_safe("BEGIN ISOLATION LEVEL $iso");
	is($v->query_safe("SELECT agentmesh.lm_verify_credential('$tok') IS NOT NULL"), 't',
		"$iso: verifies before the revocation");
	my $h = $node->background_psql('postgres', on_error_stop => 0,
		extra_params => [ '-U', 'agent_login' ]);
	$h->query_safe("BEGIN ISOLATION LEVEL $iso");
	$h->query_safe("SELECT agentmesh.lm_verify_credential('$tok')");	# takes the snapshot
	my ($ok, $out, $err, $dt) = timed('admin_login', undef,
		"SELECT 1 FROM agentmesh.lm_revoke_credentials('$id', 'leaked')");
	ok($ok, "$iso: the revocation does not wait for readers") or diag($err);
	ok($dt < $margin, "$iso: the revocation is immediate without a row holder");
	is($v->query_safe("SELECT agentmesh.lm_verify_credential('$tok') IS NULL"), 't',
		"$iso: the open transaction no longer verifies the token");
	like($h->query_safe("SELECT public.try(\$\$SELECT agentmesh.lm_heartbeat('$id', '$tok')\$\$)"),
		qr/^(42501|40001)$/, "$iso: the open transaction cannot heartbeat with it");
	$v->query_safe('COMMIT');
	$h->query_safe('COMMIT');
	$v->quit;
	$h->quit;
}

done_testing();
