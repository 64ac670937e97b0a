# The C files' layers point one way: no file calls a function defined in a
# file that (directly or through others) calls back into it.  A function
# counts as defined where its name starts a line followed by "(" (PostgreSQL
# style puts the return type on the line before), and as used wherever the
# name appears in another file.  Only the extension's own am_* functions are
# considered; SQL-callable entry points are called by the server, not by
# other files.
use strict;
use warnings;
use File::Basename qw(basename dirname);
use Test::More;

my $src = dirname(__FILE__) . '/../../src';
my @files = sort glob("$src/*.c");
ok(@files >= 10, 'the C sources are found');

my (%text, %defined_in);
for my $f (@files)
{
	my $name = basename($f);
	open(my $fh, '<', $f) or die "cannot open $f: $!";
	local $/;
	$text{$name} = <$fh>;
	close $fh;
	$defined_in{$1} = $name while $text{$name} =~ /^(am_\w+)\(/mg;
}
ok(scalar(keys %defined_in) > 20, 'the shared functions are found');

my %calls;
for my $fn (keys %defined_in)
{
	for my $user (keys %text)
	{
		next if $user eq $defined_in{$fn};
		$calls{$user}{ $defined_in{$fn} }{$fn} = 1 if $text{$user} =~ /\b\Q$fn\E\b/;
	}
}

# A file is on a cycle when it can reach itself.
for my $start (sort keys %text)
{
	my (%seen, %via);
	my @todo = ($start);
	while (my $f = shift @todo)
	{
		for my $g (sort keys %{ $calls{$f} })
		{
			next if $seen{$g}++;
			$via{$g} = $f;
			push @todo, $g;
		}
	}
	my $path = '';
	if ($seen{$start})
	{
		my @p = ($start);
		my $x = $via{$start};
		while ($x ne $start && @p < 20) { unshift @p, $x; $x = $via{$x}; }
		$path = join(' -> ', $start, @p);
	}
	is($path, '', "$start is on no call cycle");
}

done_testing();
