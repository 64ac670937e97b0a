# pg_dump / pg_restore round trips in every common form: custom format
# (pg_restore), directory format restored with -j 4, and plain SQL through
# psql -v ON_ERROR_STOP=1.  Each restore must exit 0 and print nothing, give
# identical rows (agents, credentials, policies, audit events, seals and the
# sequences), verify, and let new events continue the restored chains.
# Databases: one lm_request under the untouched default policy; the
# untouched default with agents under custom policies and seals; a changed
# default.  The server has no shared_preload_libraries: restoring must not
# depend on it.  Also: DROP DATABASE of a database with audit rows is not
# affected by the drop guard, and the guard and its setting work without
# preload.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('forms');
$node->init;
$node->start;

my %setup = (
	one_request => q{
		SELECT agent_id FROM agentmesh.lm_request('solo', 'alice', actor => 'alice');
	},
	custom_policies => q{
		INSERT INTO agentmesh.policies (name, require_approval, rotation_overlap)
			VALUES ('fast', false, '0');
		INSERT INTO agentmesh.policies (name, audit_heartbeats) VALUES ('loud', true);
		DO $$
		DECLARE
			a agentmesh.agents;
		BEGIN
			FOR i IN 1..9 LOOP
				a := agentmesh.lm_request('bot-' || i, 'team-' || (i % 2), 'forms',
										  actor => 'alice',
										  policy => (ARRAY['default', 'fast', 'loud'])[1 + i % 3]);
				IF a.state = 'pending_approval' THEN
					PERFORM agentmesh.lm_approve(a.agent_id, 'bob');
				END IF;
				IF i % 4 <> 0 THEN
					PERFORM agentmesh.lm_activate(a.agent_id);
					PERFORM agentmesh.lm_heartbeat(a.agent_id);
				END IF;
			END LOOP;
		END
		$$;
		SELECT seals FROM agentmesh.lm_run_maintenance();
		SELECT agentmesh.lm_suspend(agent_id, 'later') FROM agentmesh.agents
		 WHERE state = 'active' AND policy = 'fast';
		SELECT seals FROM agentmesh.lm_run_maintenance();
	},
	changed_default => q{
		UPDATE agentmesh.policies SET max_inactive_days = 30 WHERE name = 'default';
		INSERT INTO agentmesh.policies (name) VALUES ('other');
		SELECT agentmesh.lm_approve(agent_id, 'bob')
		  FROM agentmesh.lm_request('a1', 'alice', actor => 'alice', policy => 'other');
		SELECT agent_id FROM agentmesh.lm_request('a2', 'alice', actor => 'alice');
		SELECT seals FROM agentmesh.lm_run_maintenance();
	},
);

# What must survive the round trip, as one text.
my $snapshot = q{
SELECT (SELECT md5(string_agg(a::text, '|' ORDER BY agent_id)) FROM agentmesh.agents a)
	|| (SELECT coalesce(md5(string_agg(c::text, '|' ORDER BY credential_id)), '-') FROM agentmesh.credentials c)
	|| (SELECT md5(string_agg(p::text, '|' ORDER BY name)) FROM agentmesh.policies p)
	|| (SELECT md5(string_agg(e::text, '|' ORDER BY event_id)) FROM agentmesh.audit_events e)
	|| (SELECT coalesce(md5(string_agg(s::text, '|' ORDER BY seal_id)), '-') FROM agentmesh.audit_seals s)
	|| (SELECT last_value || '/' || is_called FROM agentmesh.audit_events_event_id_seq)
	|| (SELECT last_value || '/' || is_called FROM agentmesh.audit_seals_seal_id_seq)
	|| (SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY level, idx)), '-') FROM agentmesh.audit_tree t)
	|| (SELECT c::text FROM agentmesh.lm_audit_checkpoint() c)
};
my $counts = q{
SELECT (SELECT count(*) FROM agentmesh.agents) || ' agents, '
	|| (SELECT count(*) FROM agentmesh.policies) || ' policies, '
	|| (SELECT count(*) FROM agentmesh.audit_events) || ' events, '
	|| (SELECT count(*) FROM agentmesh.audit_seals) || ' seals'
};

# Run a command; return its exit status, stdout and stderr.
sub run_cmd
{
	my ($cmd, $stdin) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run($cmd, '<', \($stdin // ''), '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

my $n = 0;
for my $db (sort keys %setup)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION agentmesh_lifecycle');
	$node->safe_psql($db, $setup{$db});
	my $before = $node->safe_psql($db, $snapshot);
	my $before_counts = $node->safe_psql($db, $counts);
	is($node->safe_psql($db, 'SELECT intact FROM agentmesh.lm_verify_audit()'),
		't', "$db: chains and seals verify before the dump");
	if ($db eq 'custom_policies')
	{
		ok($node->safe_psql($db, 'SELECT count(*) FROM agentmesh.audit_seals') >= 2,
			"$db: the maintenance passes wrote seals");
	}

	my $base = $node->basedir . "/$db";
	my %forms = (
		custom => {
			dump => [ 'pg_dump', '-Fc', '-f', "$base.dump", '-d', $node->connstr($db) ],
			restore => sub {
				[ 'pg_restore', '--exit-on-error', '-d', $node->connstr($_[0]), "$base.dump" ];
			},
		},
		directory_j4 => {
			dump => [ 'pg_dump', '-Fd', '-j', '4', '-f', "$base.dir", '-d', $node->connstr($db) ],
			restore => sub {
				[ 'pg_restore', '-j', '4', '-d', $node->connstr($_[0]), "$base.dir" ];
			},
		},
		plain => {
			dump => [ 'pg_dump', '-Fp', '-f', "$base.sql", '-d', $node->connstr($db) ],
			restore => sub {
				[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($_[0]),
				  '-f', "$base.sql", '-o', '/dev/null' ];
			},
		},
	);
	for my $form (sort keys %forms)
	{
		my $dst = "${db}_$form";
		my ($rc, $out, $err) = run_cmd($forms{$form}{dump});
		is("$rc|$err", '0|', "$db, $form: pg_dump exits 0 and prints nothing on stderr");
		$node->safe_psql('postgres', "CREATE DATABASE $dst");
		($rc, $out, $err) = run_cmd($forms{$form}{restore}->($dst));
		is($rc, 0, "$db, $form: the restore exits 0");
		is($err, '', "$db, $form: the restore prints no error or warning");
		is($node->safe_psql($dst, $counts), $before_counts,
			"$db, $form: every agent, policy, event and seal is restored");
		is($node->safe_psql($dst, $snapshot), $before,
			"$db, $form: rows, seals and sequences are identical after the restore");
		is($node->safe_psql($dst, 'SELECT intact FROM agentmesh.lm_verify_audit()'),
			't', "$db, $form: chains and seals verify after the restore");

		# New events continue the restored chains: an agent's, the default
		# policy's, and a new agent's; a maintenance pass seals them.
		my $agent = $node->safe_psql($dst,
			"SELECT agent_id FROM agentmesh.agents ORDER BY name LIMIT 1");
		my $seq = $node->safe_psql($dst,
			"SELECT audit_seq FROM agentmesh.agents WHERE agent_id = '$agent'");
		my $pseq = $node->safe_psql($dst,
			"SELECT audit_seq FROM agentmesh.policies WHERE name = 'default'");
		$node->safe_psql($dst, qq{
			SELECT agentmesh.lm_change_owner('$agent', 'carol', actor => 'carol');
			UPDATE agentmesh.policies SET max_inactive_days = 45 WHERE name = 'default';
			SELECT agent_id FROM agentmesh.lm_request('after', 'dave', actor => 'dave');
			SELECT seals FROM agentmesh.lm_run_maintenance();
		});
		is($node->safe_psql($dst, qq{
			SELECT n.seq - $seq || ' ' || (n.prev_hash = o.hash)
			  FROM agentmesh.audit_events n JOIN agentmesh.audit_events o
				ON o.agent_id = n.agent_id AND o.seq = $seq
			 WHERE n.agent_id = '$agent' AND n.event_type = 'owner_changed'
			   AND n.actor = 'carol'}),
			'1 true', "$db, $form: a new event continues the restored agent's chain");
		is($node->safe_psql($dst, q{
			SELECT max(seq) FROM agentmesh.audit_events WHERE policy = 'default'}),
			$pseq + 1, "$db, $form: the default policy's chain continues");
		is($node->safe_psql($dst, 'SELECT intact FROM agentmesh.lm_verify_audit()'),
			't', "$db, $form: chains and seals still verify after new events");
		$n++;
	}
}
is($n, 9, 'three databases restored in three forms each');

# DROP DATABASE is not affected by the drop guard (event triggers do not fire for it).
my ($rc, $out, $err) = run_cmd([ 'psql', '-X', '-d', $node->connstr('postgres'),
	'-c', 'DROP DATABASE custom_policies_plain' ]);
is("$rc|$err", '0|', 'DROP DATABASE of a database with audit rows succeeds');

# The drop guard without shared_preload_libraries: in a new session the
# library is not loaded yet, so SET creates a placeholder; the event trigger
# loads the library, which keeps a superuser's value and discards anyone
# else's.
my $db = 'one_request_custom';
($rc, $out, $err) = run_cmd([ 'psql', '-X', '-d', $node->connstr($db),
	'-c', 'DROP EXTENSION agentmesh_lifecycle' ]);
ok($rc != 0 && $err =~ /cannot be dropped while its audit trail holds events/,
	'drop guard: DROP EXTENSION refused in a new session without preload');
$node->safe_psql('postgres', 'CREATE ROLE guard_user LOGIN IN ROLE agentmesh_auditor');
$node->safe_psql($db, 'GRANT USAGE ON SCHEMA agentmesh TO guard_user');
($rc, $out, $err) = run_cmd([ 'psql', '-X', '-q', '-At', '-d', $node->connstr($db), '-U', 'guard_user',
	'-c', 'SET agentmesh_lifecycle.allow_drop = on',
	'-c', 'SELECT agentmesh.lm_summary() IS NOT NULL',
	'-c', 'SHOW agentmesh_lifecycle.allow_drop' ]);
is($out, "t\noff\n", "drop guard: a non-superuser's value set before the load is discarded");
like($err, qr/permission denied to set parameter "agentmesh_lifecycle.allow_drop"/,
	'drop guard: ... with a warning');
($rc, $out, $err) = run_cmd([ 'psql', '-X', '-d', $node->connstr($db),
	'-c', 'SET agentmesh_lifecycle.allow_drop = on',
	'-c', 'DROP EXTENSION agentmesh_lifecycle' ]);
is("$rc|$err", '0|', "drop guard: a superuser's value set before the load allows the drop");
is($node->safe_psql($db, q{SELECT count(*) FROM pg_extension WHERE extname = 'agentmesh_lifecycle'}),
	'0', 'drop guard: the extension is gone');

$node->stop;
done_testing();
