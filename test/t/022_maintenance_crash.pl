# An immediate shutdown in the middle of a worker's maintenance pass, twice:
# once in the orphan phase, once in the missed-heartbeat phase.  The worker
# commits after every batch (batch_size 100), so each crash leaves part of
# the work committed and part not done.  Proves:
#  - after crash recovery the partial work is coherent: an agent is orphaned
#    exactly when it has its one orphan_detected event, a missed heartbeat is
#    recorded exactly when its heartbeat_missed event exists, chains and
#    seals verify, and every batch committed before the stop survived;
#  - the next pass completes the work: every silent agent ends orphaned with
#    exactly one orphan_detected event, every agent of the other group has
#    exactly one heartbeat_missed event (one per silence, none twice although
#    the phase ran again from the start), no other maintenance event is
#    duplicated, later passes add nothing, and lm_verify_audit() (chains and
#    seals) passes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $n_silent = 10000;    # orphan phase: orphan_threshold 1 s
my $n_missed = 10000;    # heartbeat phase: heartbeat_interval 1 s, threshold 30 days

my $node = PostgreSQL::Test::Cluster->new('maint_crash');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'agentmesh_lifecycle'
agentmesh_lifecycle.enabled = off
agentmesh_lifecycle.naptime = 1
agentmesh_lifecycle.batch_size = 100
shared_buffers = 128MB
});
$node->start;

sub sql { return $node->safe_psql('postgres', shift); }

sub set_worker
{
	my ($on) = @_;
	# the last setting in the file wins
	$node->append_conf('postgresql.conf', 'agentmesh_lifecycle.enabled = ' . ($on ? 'on' : 'off'));
}

sql(q{
CREATE EXTENSION agentmesh_lifecycle;
INSERT INTO agentmesh.policies (name, require_approval, orphan_threshold, heartbeat_interval)
	VALUES ('silent', false, '1 second', '1 hour'),
	       ('missing', false, '30 days', '1 second');
});

my $t = time();
sql("SELECT count(agentmesh.lm_activate((agentmesh.lm_request('s' || i, 'owner', policy => 'silent')).agent_id))
       FROM generate_series(1, $n_silent) i");
sql("SELECT count(agentmesh.lm_activate((agentmesh.lm_request('m' || i, 'owner', policy => 'missing')).agent_id))
       FROM generate_series(1, $n_missed) i");
sql('VACUUM ANALYZE agentmesh.agents');
note sprintf('created and activated %d agents in %.1f s', $n_silent + $n_missed, time() - $t);
sleep 2;    # every agent is now silent for longer than 1 s

my $count_orphan = q{SELECT count(*) FROM agentmesh.audit_events WHERE event_type = 'orphan_detected'};
my $count_missed = q{SELECT count(*) FROM agentmesh.audit_events WHERE event_type = 'heartbeat_missed'};

# Poll (every 20 ms) until 0 < count < $total, then stop immediately.
# Returns the count last seen before the stop.
sub crash_mid_phase
{
	my ($count_sql, $total, $what) = @_;
	my $deadline = time() + 120;
	my $seen = 0;
	while (time() < $deadline)
	{
		$seen = sql($count_sql);
		last if $seen > 0;
		usleep(20_000);
	}
	ok($seen > 0 && $seen < $total, "$what: the worker is mid-way ($seen of $total) when the server stops")
	  or diag 'the pass was not caught mid-way';
	$node->stop('immediate');
	return $seen;
}

# Per agent: state, heartbeat_missed_at, audit_seq, and its event counts.
my $per_agent = q{
	WITH ev AS (
		SELECT agent_id,
		       count(*) AS n,
		       count(*) FILTER (WHERE event_type = 'orphan_detected') AS orphan_ev,
		       count(*) FILTER (WHERE event_type = 'heartbeat_missed') AS missed_ev,
		       (array_agg(new_state ORDER BY seq DESC) FILTER (WHERE new_state IS NOT NULL))[1] AS last_state
		  FROM agentmesh.audit_events WHERE agent_id IS NOT NULL GROUP BY agent_id)
	SELECT a.agent_id, a.policy, a.state, a.heartbeat_missed_at, a.audit_seq,
	       COALESCE(ev.n, 0) AS n, COALESCE(ev.orphan_ev, 0) AS orphan_ev,
	       COALESCE(ev.missed_ev, 0) AS missed_ev, ev.last_state
	  FROM agentmesh.agents a LEFT JOIN ev USING (agent_id)};

# Coherence of what a crash left behind (also the end state).
sub check_coherent
{
	my ($when) = @_;
	is( sql(
			"SELECT count(*) FROM ($per_agent) x
			  WHERE (state = 'orphaned') <> (orphan_ev = 1) OR orphan_ev > 1"),
		'0', "$when: an agent is orphaned exactly when it has one orphan_detected event");
	is( sql(
			"SELECT count(*) FROM ($per_agent) x
			  WHERE (heartbeat_missed_at IS NOT NULL) <> (missed_ev = 1) OR missed_ev > 1"),
		'0', "$when: heartbeat_missed_at is set exactly when there is one heartbeat_missed event");
	is( sql(
			"SELECT count(*) FROM ($per_agent) x
			  WHERE audit_seq <> n OR state::text IS DISTINCT FROM last_state::text"),
		'0', "$when: every agent's state and audit_seq match its audit rows");
	is(sql('SELECT intact FROM agentmesh.lm_verify_audit()'), 't', "$when: chains and seals verify");
}

# --- crash 1: in the orphan phase --------------------------------------------------
set_worker(1);
$node->reload;
my $seen = crash_mid_phase($count_orphan, $n_silent, 'orphan phase');

set_worker(0);    # look at the remains before any pass runs
$node->start;
my $orphaned = sql($count_orphan);
note "orphan_detected events after recovery: $orphaned (seen before the stop: $seen)";
cmp_ok($orphaned, '>=', $seen, 'crash 1: every batch committed before the stop survived');
cmp_ok($orphaned, '<', $n_silent, 'crash 1: the pass was interrupted before the end of the phase');
is(sql($count_missed), '0', 'crash 1: the missed-heartbeat phase had not started');
check_coherent('after crash 1');

# --- crash 2: in the missed-heartbeat phase (the orphan phase restarts from the
# first agent and must not orphan anyone twice) ---------------------------------------
set_worker(1);
$node->reload;
$seen = crash_mid_phase($count_missed, $n_missed, 'missed-heartbeat phase');

set_worker(0);
$node->start;
my $missed = sql($count_missed);
note "heartbeat_missed events after recovery: $missed (seen before the stop: $seen)";
cmp_ok($missed, '>=', $seen, 'crash 2: every batch committed before the stop survived');
cmp_ok($missed, '<', $n_missed, 'crash 2: the pass was interrupted before the end of the phase');
is(sql($count_orphan), $n_silent, 'crash 2: the orphan phase had completed, without duplicates');
check_coherent('after crash 2');

# --- restart: the next passes complete the work ---------------------------------------
set_worker(1);
$node->reload;
$t = time();
ok( $node->poll_query_until(
		'postgres',
		"SELECT ($count_orphan) = $n_silent AND ($count_missed) = $n_missed
		    AND (SELECT passes >= 1 FROM agentmesh.worker_status WHERE datname = 'postgres')"),
	'the next pass completes the work');
note sprintf('completed %.1f s after the restart', time() - $t);
my $passes = sql("SELECT passes FROM agentmesh.worker_status WHERE datname = 'postgres'");
ok( $node->poll_query_until(
		'postgres',
		"SELECT passes >= $passes + 2 FROM agentmesh.worker_status WHERE datname = 'postgres'"),
	'and further passes run');

is( sql(
		q{SELECT count(*) FILTER (WHERE state = 'orphaned') || '/' || count(*)
		    FROM agentmesh.agents WHERE policy = 'silent'}),
	"$n_silent/$n_silent", 'every silent agent is orphaned');
is(sql("SELECT count(*) FROM ($per_agent) x WHERE policy = 'silent' AND orphan_ev <> 1"),
	'0', 'each with exactly one orphan_detected event');
is( sql(
		q{SELECT count(*) FILTER (WHERE state = 'active') || '/' || count(*)
		    FROM agentmesh.agents WHERE policy = 'missing'}),
	"$n_missed/$n_missed", 'the agents of the other group stay active');
is(sql("SELECT count(*) FROM ($per_agent) x WHERE policy = 'missing' AND missed_ev <> 1"),
	'0', 'each with exactly one heartbeat_missed event (one per silence)');
is(sql("SELECT count(*) FROM ($per_agent) x WHERE policy = 'silent' AND missed_ev <> 0"),
	'0', 'no missed heartbeat recorded for the orphaned agents');
is( sql(
		q{SELECT count(*) FROM (SELECT agent_id, event_type FROM agentmesh.audit_events
		   WHERE actor = 'agentmesh-maintenance' GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'no agent has any maintenance event twice');
is( sql(
		q{SELECT count(*) FROM agentmesh.audit_events e
		   WHERE NOT EXISTS (SELECT FROM agentmesh.audit_seals s
		                      WHERE e.xact_id >= s.xmin_from AND e.xact_id < s.xmin_to)
		     AND e.event_type IN ('orphan_detected', 'heartbeat_missed')}),
	'0', 'every maintenance event is sealed');
check_coherent('at the end');

$node->stop;
done_testing();
