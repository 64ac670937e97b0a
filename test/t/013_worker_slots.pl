# Few background worker slots: more databases than free slots.  The launcher
# says once that it could not start a worker, then backs off per database
# (5 s, doubling up to 5 min) instead of logging every 5 s; the databases
# that only needed a probe do not keep the log busy.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('slots');
$node->init;
# the launcher and the logical replication launcher take two of the three
# slots: one left for six databases
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'agentmesh_lifecycle'
agentmesh_lifecycle.naptime = 1
max_worker_processes = 3
max_parallel_workers = 0
});
$node->start;
# a long-lived worker holds the only free slot; the other databases need probes
$node->safe_psql('postgres', 'CREATE EXTENSION agentmesh_lifecycle');
$node->safe_psql('postgres', "CREATE DATABASE db$_") for 1 .. 5;
sleep 16;
$node->stop;
my $log = slurp_file($node->logfile);
my $n = () = $log =~ /could not start an agentmesh_lifecycle worker/g;
is($n, 1, 'one message about the missing slots in 16 s, not one every 5 s');
like($log, qr/HINT:  Raise max_worker_processes/, 'with its hint');
unlike($log, qr/FATAL/, 'no FATAL, shutdown included');
like($log, qr/LOG:  agentmesh_lifecycle launcher stopping on request/, 'the launcher stops at LOG');
done_testing();
