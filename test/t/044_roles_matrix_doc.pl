# The role matrix in docs/roles.md is the one sql/authz_matrix.sql produces
# (its expected output): every row, every cell.  No server is needed.
use strict;
use warnings;
use File::Basename qw(dirname);
use Test::More;

my $top = dirname(__FILE__) . '/../..';

sub slurp
{
	my ($f) = @_;
	open(my $fh, '<', $f) or die "cannot open $f: $!";
	local $/;
	my $t = <$fh>;
	close $fh;
	return $t;
}

# psql's aligned output: the header line, a rule, the rows, "(N rows)"
my $out = slurp("$top/expected/authz_matrix.out");
$out =~ /^( +function or table +\|.*?)\n-[-+]+\n(.*?)\n\(\d+ rows\)/ms
  or die 'the matrix is missing from expected/authz_matrix.out';
my @test = map { join ' | ', map { s/^\s+|\s+$//gr } split /\|/ } ($1, split /\n/, $2);

# the Markdown table that starts with the same header
my $doc = slurp("$top/docs/roles.md");
my @doc;
for my $line (split /\n/, $doc)
{
	if ($line =~ /^\| function or table \|/ || (@doc && $line =~ /^\|/))
	{
		next if $line =~ /^\|(?:---\|)+$/;
		push @doc, join ' | ', map { s/^\s+|\s+$//gr } grep { $_ ne '' } split /\|/, $line;
	}
	elsif (@doc)
	{
		last;
	}
}
ok(@test > 20, 'the test produces the matrix');
is_deeply(\@doc, \@test, 'docs/roles.md shows the matrix sql/authz_matrix.sql produces');
done_testing();
