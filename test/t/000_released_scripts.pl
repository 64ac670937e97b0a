# Released SQL scripts are frozen: a user who installed 1.0 has exactly the
# objects its script made, and the upgrade scripts start from that.  Editing a
# released install or upgrade script by accident would make fresh installs of
# that version differ from the ones in the field, so the test command fails
# when a script listed in test/released_scripts.sha256 changes, or when the
# copy that "make install" put into the server's share directory differs.
use strict;
use warnings;
use Digest::SHA;
use File::Basename qw(dirname);
use PostgreSQL::Test::Utils;
use Test::More;

my $root = dirname(__FILE__) . '/../..';
my $list = "$root/test/released_scripts.sha256";
open(my $fh, '<', $list) or die "cannot open $list: $!";
my @entries;
while (my $line = <$fh>)
{
	next if $line =~ /^\s*(#|$)/;
	$line =~ /^([0-9a-f]{64})  (\S+)$/ or die "bad line in $list: $line";
	push @entries, [ $1, $2 ];
}
close $fh;
ok(scalar(grep { $_->[1] eq 'sql/agentmesh_lifecycle--1.0.sql' } @entries),
	'the 1.0 install script is listed as released');

my ($sharedir) = run_command([ $ENV{PG_CONFIG} // 'pg_config', '--sharedir' ]);

for my $e (@entries)
{
	my ($sum, $path) = @$e;
	my $file = "$root/$path";
	ok(-f $file, "$path exists");
	is(Digest::SHA->new(256)->addfile($file)->hexdigest, $sum,
		"$path is unchanged since its release");
	my $installed = "$sharedir/extension/" . (split m{/}, $path)[-1];
	is(Digest::SHA->new(256)->addfile($installed)->hexdigest, $sum,
		"installed copy of $path is the released one");
}

done_testing();
