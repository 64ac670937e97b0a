# Upgrade 1.0 -> 1.1.  A database made with version 1.0, with data from every
# 1.0 operation (test/upgrade_data.sql), is updated with ALTER EXTENSION
# UPDATE: its rows are identical afterwards, the audit chains and seals still
# verify, and the 1.1 functions work on the upgraded data.  Then the updated
# extension is compared with a fresh 1.1 install, object by object, through a
# catalog description of every member (test/catalog_description.sql); a
# third database shows that the comparison catches a difference.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = dirname(__FILE__) . '/../..';

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'agentmesh_lifecycle'\n"
	  . "agentmesh_lifecycle.enabled = off\n");
$node->start;

my $extversion = q{SELECT extversion FROM pg_extension WHERE extname = 'agentmesh_lifecycle'};

# ---------------------------------------------------------------------------
# 1.0, with the new shared library: every operation, through the data script
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE up');
$node->safe_psql('up', q{CREATE EXTENSION agentmesh_lifecycle VERSION '1.0'});
is($node->safe_psql('up', $extversion), '1.0', 'version 1.0 is installed');

my $data_out = $node->safe_psql('up', slurp_file("$root/test/upgrade_data.sql"));
is($data_out, <<'EOT' =~ s/\n\z//r, '1.0: every operation gives the expected results');
list_by_state orphaned|orphan-manual
list_by_owner heidi|stable-1,stable-2
get|active|heidi|kept across the upgrade
summary|{"by_state": {"active": 16, "orphaned": 1, "suspended": 1, "provisioned": 1, "decommissioned": 5, "pending_approval": 2}, "total_agents": 26}
transitions|34
verify_credential|4
trail stable-1|requested,approved,activated,credential_rotated
workers|0
orphans +2h|fast|never_heartbeat
orphans +2h|ownerless|no_owner
check_and_rotate +55min|issued|revoked
check_and_rotate +55min|rotated|fast,rot
maintenance +2h|2|0|10|1|1|1|t
maintenance +3d|9|1|4|1|0|0|t
maintenance now|t
agent|active|orphaned|dave|default
agent|audited|active|judy|audited
agent|fast|decommissioned|kate|fast
agent|norot|active|kate|norot
agent|orphan-manual|orphaned|dave|default
agent|owner-changed|orphaned|grace|default
agent|ownerless|orphaned||ownerless
agent|pending|pending_approval|alice|default
agent|provisioned|provisioned|carol|default
agent|provisioned-auto|decommissioned|alice|rot
agent|reclaimed|orphaned|frank|default
agent|rejected|decommissioned|alice|default
agent|resumed|orphaned|dave|default
agent|retired-active|decommissioned|dave|default
agent|retired-orphaned|decommissioned|dave|default
agent|retired-suspended|decommissioned|dave|default
agent|revoked|orphaned|dave|default
agent|revoked-late|orphaned|dave|default
agent|rot|active|kate|rot
agent|rotated|orphaned|dave|default
agent|sql-attributes|orphaned|dave|default
agent|sql-inserted|pending_approval|zoe|default
agent|sql-state|orphaned|dave|default
agent|stable-1|active|heidi|stable
agent|stable-2|active|heidi|stable
agent|suspended|suspended|dave|default
maintenance events|active|heartbeat_missed,orphan_detected
maintenance events|audited|heartbeat_missed
maintenance events|fast|credential_rotated,orphan_detected,decommission_started,decommissioned
maintenance events|norot|credential_expired,heartbeat_missed
maintenance events|owner-changed|heartbeat_missed,orphan_detected
maintenance events|ownerless|orphan_detected
maintenance events|reclaimed|heartbeat_missed,orphan_detected
maintenance events|resumed|heartbeat_missed,orphan_detected
maintenance events|revoked|credential_rotated,heartbeat_missed,orphan_detected
maintenance events|revoked-late|heartbeat_missed,credential_rotated,orphan_detected
maintenance events|rot|credential_rotated,heartbeat_missed,credential_rotated,credential_rotated
maintenance events|rotated|heartbeat_missed,orphan_detected
maintenance events|sql-attributes|heartbeat_missed,orphan_detected
maintenance events|sql-state|heartbeat_missed,orphan_detected
maintenance events|stable-1|heartbeat_missed
maintenance events|stable-2|heartbeat_missed
policy events|audited|1
policy events|default|1
policy events|fast|1
policy events|norot|2
policy events|ownerless|1
policy events|rot|1
policy events|stable|2
verify|t|
EOT

# The data covers what 1.0 can make.
is($node->safe_psql('up', q{
	SELECT string_agg(s::text, ',' ORDER BY s)
	  FROM unnest(enum_range(NULL::agentmesh.lifecycle_state)) s
	 WHERE NOT EXISTS (SELECT FROM agentmesh.agents a WHERE a.state = s)}),
	'rotating_credentials,decommissioning',
	'1.0 data: agents in every state but the two that are never committed');
is($node->safe_psql('up', q{
	SELECT coalesce(string_agg(t::text, ',' ORDER BY t), '(none)')
	  FROM unnest(enum_range(NULL::agentmesh.lifecycle_event_type)) t
	 WHERE NOT EXISTS (SELECT FROM agentmesh.audit_events e WHERE e.event_type = t)}),
	'(none)', '1.0 data: audit events of every type');
is($node->safe_psql('up', q{
	SELECT count(*) FILTER (WHERE details->>'source' = 'sql' AND event_type IN ('suspended', 'resumed'))
		   || ' ' || count(*) FILTER (WHERE event_type = 'attributes_changed')
	  FROM agentmesh.audit_events}),
	'2 1', '1.0 data: plain-SQL state changes and attribute changes are audited');
cmp_ok($node->safe_psql('up', 'SELECT count(*) FROM agentmesh.audit_seals'), '>=', 3,
	'1.0 data: the maintenance passes wrote seals');

# Seals recomputed in plain SQL, and chained (src/seals.c, docs/audit.md).
my $seals_ok = q{
SELECT bool_and(s.seal_hash = sha256(
		COALESCE(s.prev_seal_hash, ''::bytea)
		|| int8send(s.xmin_from::text::int8) || int8send(s.xmin_to::text::int8)
		|| COALESCE((SELECT string_agg(int8send(e.event_id) || e.hash, ''::bytea ORDER BY e.event_id)
					   FROM agentmesh.audit_events e
					  WHERE e.xact_id >= s.xmin_from AND e.xact_id < s.xmin_to), ''::bytea)))
	   AND bool_and(s.prev_seal_hash IS NOT DISTINCT FROM
					(SELECT p.seal_hash FROM agentmesh.audit_seals p
					  WHERE p.seal_id < s.seal_id ORDER BY p.seal_id DESC LIMIT 1))
  FROM agentmesh.audit_seals s
};
my $verify = q{SELECT intact, events_checked > 0, broken_event_id, broken_agent_id,
	broken_policy, broken_seq, problem FROM agentmesh.lm_verify_audit()};
is($node->safe_psql('up', $verify), 't|t|||||', '1.0: lm_verify_audit() finds the chains intact');
is($node->safe_psql('up', $seals_ok), 't', '1.0: the seals recompute and are chained');

# ---------------------------------------------------------------------------
# ALTER EXTENSION UPDATE: the data stays exactly as it was
# ---------------------------------------------------------------------------
# Every row of every table (whole rows: nothing may change, not even
# xact_id), and the sequences.  Columns that 1.1 adds are left out (they
# do not exist before the update); each topic lists its own.
my $added_agents = q{ARRAY['last_used_at', 'team']};   # issues 12, 10
my $added_credentials = q{ARRAY['last_used_at']};    # issue 12
my $added_policies = q{ARRAY['rotate_after', 'allowed_roles', 'approver_role']};   # issues 12, 10
my $snapshot = qq{
SELECT (SELECT md5(string_agg((to_jsonb(a) - $added_agents)::text, '|' ORDER BY agent_id)) FROM agentmesh.agents a)
	|| (SELECT md5(string_agg((to_jsonb(c) - $added_credentials)::text, '|' ORDER BY credential_id)) FROM agentmesh.credentials c)
	|| (SELECT md5(string_agg((to_jsonb(p) - $added_policies)::text, '|' ORDER BY name)) FROM agentmesh.policies p)
	|| (SELECT md5(string_agg(e::text, '|' ORDER BY event_id)) FROM agentmesh.audit_events e)
	|| (SELECT md5(string_agg(s::text, '|' ORDER BY seal_id)) FROM agentmesh.audit_seals s)
	|| (SELECT md5((last_value, is_called)::text) FROM agentmesh.audit_events_event_id_seq)
	|| (SELECT md5((last_value, is_called)::text) FROM agentmesh.audit_seals_seal_id_seq)
};
# the rows written before the update, for later
my $old_rows = q{
SELECT (SELECT md5(string_agg(e::text, '|' ORDER BY event_id)) FROM agentmesh.audit_events e
		 WHERE event_id <= %d)
	|| (SELECT md5(string_agg(s::text, '|' ORDER BY seal_id)) FROM agentmesh.audit_seals s
		 WHERE seal_id <= %d)
};
# An agent whose requesting login is gone by the update gets no team
# (docs/upgrades.md): admins, approvers and auditors see it, admins manage it.
$node->safe_psql('up', q{
CREATE ROLE upgrade_gone LOGIN IN ROLE agentmesh_requester;
SET SESSION AUTHORIZATION upgrade_gone;
SELECT agentmesh.lm_request('gone-requester', 'olga');
RESET SESSION AUTHORIZATION;
DROP ROLE upgrade_gone;
});
my $before = $node->safe_psql('up', $snapshot);
my ($last_event, $last_seal) = split /\|/, $node->safe_psql('up',
	'SELECT (SELECT max(event_id) FROM agentmesh.audit_events), '
	  . '(SELECT max(seal_id) FROM agentmesh.audit_seals)');
my $old_before = $node->safe_psql('up', sprintf($old_rows, $last_event, $last_seal));

$node->safe_psql('up', 'ALTER EXTENSION agentmesh_lifecycle UPDATE');
is($node->safe_psql('up', $extversion), '1.1', 'ALTER EXTENSION UPDATE goes to 1.1');
is($node->safe_psql('up', $snapshot), $before,
	'agents, credentials, policies, audit events, seals and sequences are unchanged by the update');
is($node->safe_psql('up', $verify), 't|t|||||', 'after the update: chains intact');
# Teams of 1.0 agents (docs/upgrades.md): the login that requested the agent,
# the db_user of its requested event, when that role exists; else none.
is($node->safe_psql('up', q{
SELECT count(*), count(*) FILTER (WHERE a.team IS NOT DISTINCT FROM
		(SELECT e.db_user::name FROM agentmesh.audit_events e
		  WHERE e.agent_id = a.agent_id AND e.event_type = 'requested' AND e.seq = 1
			AND EXISTS (SELECT FROM pg_roles r WHERE r.rolname = e.db_user))),
	   count(*) FILTER (WHERE a.team IS NULL) > 0
  FROM agentmesh.agents a}), '27|27|t',
	'after the update: every 1.0 agent has its requester as team, or none when that role is gone');
is($node->safe_psql('up', q{SELECT count(*) FROM agentmesh.policies
	WHERE allowed_roles IS NOT NULL OR approver_role IS NOT NULL}), '0',
	'after the update: no policy restricts its roles');
is($node->safe_psql('up', $seals_ok), 't', 'after the update: seals recompute');
is( $node->safe_psql('up', q{
SELECT (SELECT tree_size FROM agentmesh.lm_audit_checkpoint()) = (SELECT sum(event_count) FROM agentmesh.audit_seals)
   AND (SELECT count(*) FROM agentmesh.audit_checkpoints) = (SELECT count(*) FROM agentmesh.audit_seals)
   AND (SELECT count(*) FROM agentmesh.lm_verify_audit_problems()) = 0}),
	't', 'after the update: the Merkle tree covers every seal written by 1.0 (issue 11)');

# ---------------------------------------------------------------------------
# 1.1 on the upgraded data
# ---------------------------------------------------------------------------
my $after_out = $node->safe_psql('up', q{
\set ON_ERROR_STOP 1
SELECT agent_id AS s1 FROM agentmesh.agents WHERE name = 'stable-1' \gset
SELECT agent_id AS s2 FROM agentmesh.agents WHERE name = 'stable-2' \gset
SELECT agent_id AS au FROM agentmesh.agents WHERE name = 'audited' \gset
-- the credentials issued by 1.0 (stable-1 first: inside its rotation overlap)
SELECT 'upgraded tokens' AS what, t.name, agentmesh.lm_verify_credential(t.token) = a.agent_id
  FROM public.upgrade_tokens t JOIN agentmesh.agents a ON a.name = split_part(t.name, ' ', 1)
 ORDER BY 2;
-- upgraded agents: heartbeat with the token (audited), rotate, change owner,
-- resume, reclaim, approve, reject
SELECT agentmesh.lm_heartbeat(:'au', (SELECT token FROM public.upgrade_tokens WHERE name = 'audited'))
	IS NOT NULL AS beat \gset
SELECT 'heartbeat upgraded' AS what, state, heartbeat_count FROM agentmesh.agents WHERE agent_id = :'au';
INSERT INTO public.upgrade_tokens
	SELECT 'stable-2 rotated', token FROM agentmesh.lm_rotate_credentials(:'s2', 'heidi');
SELECT 'rotated upgraded' AS what, name, agentmesh.lm_verify_credential(token) = :'s2'
  FROM public.upgrade_tokens WHERE name LIKE 'stable-2%' ORDER BY name;
SELECT agentmesh.lm_heartbeat(:'s1') IS NOT NULL AS beat \gset
SELECT 'heartbeat upgraded' AS what, state, heartbeat_count FROM agentmesh.agents WHERE agent_id = :'s1';
SELECT 'change owner upgraded' AS what, state, owner FROM agentmesh.lm_change_owner(:'s1', 'ivan', 'ops');
SELECT 'resume upgraded' AS what, state
  FROM agentmesh.lm_resume((SELECT agent_id FROM agentmesh.agents WHERE name = 'suspended'), 'ops');
SELECT 'reclaim upgraded' AS what, state
  FROM agentmesh.lm_reclaim((SELECT agent_id FROM agentmesh.agents WHERE name = 'orphan-manual'),
							'laura', 'ops');
SELECT 'approve upgraded' AS what, state
  FROM agentmesh.lm_approve((SELECT agent_id FROM agentmesh.agents WHERE name = 'pending'), 'bob');
SELECT 'reject upgraded' AS what, state FROM agentmesh.lm_reject('agent:sql-inserted', 'unknown', 'bob');
-- a new agent: request, approve (distinct approver), activate, heartbeat, rotate, verify
SELECT agent_id AS nw FROM agentmesh.lm_request('after-upgrade', 'mallory', 'made on 1.1',
		actor => 'mallory', policy => 'stable') \gset
SET SESSION AUTHORIZATION upgrade_approver;
SELECT 'new' AS what, state FROM agentmesh.lm_approve(:'nw', 'ivan');
RESET SESSION AUTHORIZATION;
INSERT INTO public.upgrade_tokens
	SELECT 'after-upgrade', token FROM agentmesh.lm_activate(:'nw', 'mallory');
SELECT agentmesh.lm_heartbeat(:'nw') IS NOT NULL AS beat \gset
SELECT 'new' AS what, state, heartbeat_count FROM agentmesh.agents WHERE agent_id = :'nw';
INSERT INTO public.upgrade_tokens
	SELECT 'after-upgrade rotated', token FROM agentmesh.lm_rotate_credentials(:'nw', 'mallory');
SELECT 'new' AS what, name, agentmesh.lm_verify_credential(token) = :'nw'
  FROM public.upgrade_tokens WHERE name LIKE 'after-upgrade%' ORDER BY name;
-- policies: the default policy's chain continues, a new policy starts one
UPDATE agentmesh.policies SET max_inactive_days = 61 WHERE name = 'default';
INSERT INTO agentmesh.policies (name) VALUES ('after-upgrade');
SELECT 'policy events' AS what, policy, count(*), max(seq)
  FROM agentmesh.audit_events WHERE policy IN ('default', 'after-upgrade')
 GROUP BY policy ORDER BY policy;
-- maintenance on the upgraded data: missed heartbeats, rotation, orphans, seals
SELECT 'maintenance +4d' AS what, orphaned, decommissioned, heartbeats_missed, rotated, issued,
	   expired, seals > 0 AS sealed
  FROM agentmesh.lm_run_maintenance(now() + interval '4 days', allow_future => true);
SELECT 'maintenance +40d' AS what, orphaned, decommissioned, heartbeats_missed, rotated, issued,
	   expired, seals > 0 AS sealed
  FROM agentmesh.lm_run_maintenance(now() + interval '40 days', allow_future => true);
SELECT 'maintenance now' AS what, seals > 0 AS sealed FROM agentmesh.lm_run_maintenance();
-- decommission an upgraded agent: its credentials stop verifying
SELECT 'decommission upgraded' AS what, state FROM agentmesh.lm_decommission(:'s2', 'done', 'ops');
SELECT 'after decommission' AS what,
	   count(*) FILTER (WHERE agentmesh.lm_verify_credential(token) IS NOT NULL)
  FROM public.upgrade_tokens WHERE name LIKE 'stable-2%';
});
is($after_out, <<'EOT' =~ s/\n\z//r, '1.1 on upgraded data: every operation gives the expected results');
upgraded tokens|audited|t
upgraded tokens|stable-1|t
upgraded tokens|stable-1 first|t
upgraded tokens|stable-2|t
heartbeat upgraded|active|3
rotated upgraded|stable-2|t
rotated upgraded|stable-2 rotated|t
heartbeat upgraded|active|2
change owner upgraded|active|ivan
resume upgraded|active
reclaim upgraded|active
approve upgraded|provisioned
reject upgraded|decommissioned
new|provisioned
new|active|1
new|after-upgrade|t
new|after-upgrade rotated|t
policy events|after-upgrade|1|1
policy events|default|2|2
maintenance +4d|2|0|3|1|0|0|t
maintenance +40d|6|0|0|0|0|0|t
maintenance now|t
decommission upgraded|decommissioned
after decommission|0
EOT
is($node->safe_psql('up', $verify), 't|t|||||',
	'1.1 on upgraded data: chains intact after the new events');
is($node->safe_psql('up', $seals_ok), 't',
	'1.1 on upgraded data: old and new seals recompute and form one chain');
is($node->safe_psql('up', sprintf($old_rows, $last_event, $last_seal)), $old_before,
	'1.1 on upgraded data: the audit rows and seals written by 1.0 are untouched');
is($node->safe_psql('up', qq{
	SELECT count(*) FROM agentmesh.audit_events e
	 WHERE e.event_id > $last_event AND e.agent_id IN (
		SELECT agent_id FROM agentmesh.audit_events WHERE event_id <= $last_event)
	   AND e.seq = 1}), '0',
	'1.1 on upgraded data: upgraded agents\' chains continue instead of restarting');

# ---------------------------------------------------------------------------
# The updated extension against a fresh 1.1 install, object by object
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION agentmesh_lifecycle');
is($node->safe_psql('fresh', $extversion), '1.1', 'a fresh install is 1.1');

my $describe = slurp_file("$root/test/catalog_description.sql");
my $desc_fresh = $node->safe_psql('fresh', $describe);
my $desc_up = $node->safe_psql('up', $describe);

my @lines = split /\n/, $desc_fresh;
cmp_ok(scalar(@lines), '>', 500, 'the catalog description has a plausible size');
like($desc_fresh, qr/^function agentmesh\.lm_heartbeat\(pg_catalog\.text,pg_catalog\.text\) \| def 001 CREATE OR REPLACE FUNCTION agentmesh\.lm_heartbeat\(/m,
	'the description shows lm_heartbeat\'s definition');
like($desc_fresh, qr/^table agentmesh\.agents \| column 006 state agentmesh\.lifecycle_state NOT NULL /m,
	'the description shows the agents table\'s columns');
like($desc_fresh, qr/^table agentmesh\.agents \| trigger agents_guard enabled A: /m,
	'the description shows the triggers');
like($desc_fresh, qr/^extension agentmesh_lifecycle \| dumped table agentmesh\.audit_seals condition ''$/m,
	'the description shows the extension\'s configuration tables');

# Equal descriptions, or a unified diff of the two.
my $n_diff = 0;
sub same_description
{
	my ($got, $expected, $got_label, $name) = @_;
	my $ok = ok($got eq $expected, $name);
	if (!$ok)
	{
		$n_diff++;
		my $dir = $PostgreSQL::Test::Utils::tmp_check;
		my $f_expected = "$dir/description_fresh.txt";
		my $f_got = "$dir/description_${got_label}_$n_diff.txt";
		for ([ $f_expected, $expected ], [ $f_got, $got ])
		{
			open(my $fh, '>', $_->[0]) or die "cannot write $_->[0]: $!";
			print $fh $_->[1], "\n";
			close $fh;
		}
		my ($diff) = run_command([ 'diff', '-u', '--label', 'fresh 1.1 install',
			'--label', $got_label, $f_expected, $f_got ]);
		diag("catalog description differs from the fresh install's:\n$diff");
	}
	return $ok;
}

same_description($desc_up, $desc_fresh, 'updated',
	'the 1.0 install updated to 1.1 has exactly the objects of a fresh 1.1 install');

# Negative control: a third database with the fresh install, changed in one
# way at a time (each rolled back); every change must show in the description.
$node->safe_psql('postgres', 'CREATE DATABASE ctl');
$node->safe_psql('ctl', 'CREATE EXTENSION agentmesh_lifecycle');
same_description($node->safe_psql('ctl', $describe), $desc_fresh, 'control',
	'another fresh install is described identically (no OIDs in the description)');
my @changes = (
	[ 'a function comment', q{COMMENT ON FUNCTION agentmesh.lm_get(text) IS 'x'} ],
	[ 'a column default', q{ALTER TABLE agentmesh.agents ALTER COLUMN purpose SET DEFAULT 'x'} ],
	[ 'a table grant', q{GRANT SELECT ON agentmesh.credentials TO agentmesh_agent} ],
	[ 'a column grant', q{GRANT SELECT (revoked_at) ON agentmesh.credentials TO agentmesh_agent} ],
	[ 'a function grant', q{GRANT EXECUTE ON FUNCTION agentmesh.lm_summary() TO PUBLIC} ],
	[ 'a column comment', q{COMMENT ON COLUMN agentmesh.agents.tags IS 'x'} ],
	[ 'a function\'s volatility', q{ALTER FUNCTION agentmesh.lm_get(text) VOLATILE} ],
	[ 'a function\'s setting', q{ALTER FUNCTION agentmesh.lm_get(text) SET work_mem = '1MB'} ],
	[ 'an enum label\'s position',
		q{ALTER TYPE agentmesh.lifecycle_event_type ADD VALUE 'x' BEFORE 'requested'} ],
	[ 'a new column', q{ALTER TABLE agentmesh.policies ADD COLUMN x int} ],
	[ 'a dropped column', q{ALTER TABLE agentmesh.agents DROP COLUMN heartbeat_missed_at} ],
	[ 'a new index', q{CREATE INDEX agents_name_idx ON agentmesh.agents (name)} ],
	[ 'a constraint', q{ALTER TABLE agentmesh.agents ADD CONSTRAINT agents_name_check CHECK (name <> '')} ],
	[ 'a trigger\'s firing mode', q{ALTER TABLE agentmesh.agents ENABLE TRIGGER agents_guard} ],
	[ 'a table option', q{ALTER TABLE agentmesh.agents SET (fillfactor = 80)} ],
	[ 'row security', q{ALTER TABLE agentmesh.policies ENABLE ROW LEVEL SECURITY} ],
	[ 'forced row security', q{ALTER TABLE agentmesh.agents FORCE ROW LEVEL SECURITY} ],
	[ 'a row-security policy', q{CREATE POLICY p ON agentmesh.agents USING (true)} ],
	[ 'a sequence parameter', q{ALTER SEQUENCE agentmesh.audit_seals_seal_id_seq CACHE 10} ],
	[ 'a configuration table\'s condition', q{UPDATE pg_catalog.pg_extension
		SET extcondition = array_replace(extcondition, '', 'WHERE true')
		WHERE extname = 'agentmesh_lifecycle'} ],
	[ 'a member less', q{ALTER EXTENSION agentmesh_lifecycle DROP VIEW agentmesh.worker_status} ],
	[ 'an owner', q{CREATE ROLE agentmesh_test_owner; ALTER TYPE agentmesh.credential_grant OWNER TO agentmesh_test_owner} ],
	[ 'the schema\'s ACL', q{REVOKE USAGE ON SCHEMA agentmesh FROM agentmesh_agent} ],
	[ 'default privileges', q{ALTER DEFAULT PRIVILEGES IN SCHEMA agentmesh GRANT SELECT ON TABLES TO agentmesh_agent} ],
);
for my $c (@changes)
{
	my ($what, $sql) = @$c;
	my $desc = $node->safe_psql('ctl', "BEGIN;\n$sql;\n$describe\nROLLBACK;");
	isnt($desc, $desc_fresh, "negative control: the description shows $what");
}
is($node->safe_psql('ctl', $describe), $desc_fresh, 'negative control: the changes were rolled back');
$node->safe_psql('postgres', 'DROP DATABASE ctl');

$node->stop;
done_testing();
