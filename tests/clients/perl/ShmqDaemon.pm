package ShmqDaemon;

# A shmqd for Perl client tests: its SQS bridge on a free port of 127.0.0.1,
# a namespace of its own, and Amazon::SQS::Simple objects for it. Loading
# this module first isolates the process from the user's AWS set-up.
#
# ctest passes the binary as SHMQD; by hand:
#   SHMQD=build/bin/shmqd perl tests/clients/perl/sqs_simple.t

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::MD5 qw(md5_hex);
use Encode qw(encode);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG _exit);
use Time::HiRes qw(sleep clock_gettime CLOCK_MONOTONIC);

# Never the user's AWS set-up: no credentials (AWS::Signature4 falls back to
# EC2_ACCESS_KEY / EC2_SECRET_KEY), profiles or proxies (LWP's env_proxy).
BEGIN {
    delete @ENV{ grep { /^(?:AWS|AMAZON|EC2)_/ } keys %ENV };
    $ENV{AWS_CONFIG_FILE}             = '/dev/null';
    $ENV{AWS_SHARED_CREDENTIALS_FILE} = '/dev/null';
    $ENV{AWS_EC2_METADATA_DISABLED}   = 'true';
    $ENV{NO_PROXY} = $ENV{no_proxy} = '127.0.0.1,localhost';
}

use Amazon::SQS::Simple;

our $REPO    = abs_path(dirname(__FILE__) . '/../../..');
our $SHMQD   = $ENV{SHMQD} || "$REPO/build/bin/shmqd";
our $REGION  = 'us-east-1';
our $ACCOUNT = '000000000000';

# util-linux's setpriv: the daemon gets SIGTERM when this process dies, even
# by SIGKILL (a ctest timeout), so none outlives its tests.
our ($SETPRIV) = grep { -x } qw(/usr/bin/setpriv /bin/setpriv);

my $started = 0;
my %running;    # pid => daemon, for END

sub _now { clock_gettime(CLOCK_MONOTONIC) }

# Starts shmqd (with extra arguments, e.g. '--auth', 'KEY:SECRET') and
# returns once its bridge listens.
sub start {
    my ($class, @extra) = @_;
    my $self = bless {}, $class;
    $self->{ns}  = sprintf 'plc%dx%d', $$, ++$started;
    $self->{dir} = tempdir("shmq-$self->{ns}-XXXXXX", TMPDIR => 1);
    $self->{log} = "$self->{dir}/shmqd.log";
    my $port_file = "$self->{dir}/port";
    my @command = ($SHMQD, '--namespace', $self->{ns}, '--bridge-listen', '127.0.0.1:0',
                   '--bridge-port-file', $port_file, '--log-level', 'warn', @extra);
    unshift @command, $SETPRIV, '--pdeathsig', 'TERM' if $SETPRIV;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $self->{log};
        open STDERR, '>&', \*STDOUT;
        exec { $command[0] } @command
            or print STDERR "cannot run $command[0]: $!\n";
        _exit(127);
    }
    $self->{pid} = $pid;
    $running{$pid} = $self;

    my $deadline = _now() + 15;
    until ($self->{port}) {
        if (waitpid($pid, WNOHANG) == $pid) {
            my $status = $? >> 8;
            delete $self->{pid};
            delete $running{$pid};
            my $log = $self->log_text;
            $self->_cleanup;
            die "shmqd exited with $status at start:\n$log";
        }
        if (open my $fh, '<', $port_file) {
            my $port = <$fh>;
            $self->{port} = $1 if defined $port && $port =~ /^(\d+)/ && $1 > 0;
        }
        if (!$self->{port} && _now() > $deadline) {
            $self->stop;
            die "shmqd did not write its bridge port within 15 s\n";
        }
        sleep 0.02 unless $self->{port};
    }
    $self->{endpoint} = "http://127.0.0.1:$self->{port}";
    return $self;
}

sub ns       { $_[0]{ns} }
sub port     { $_[0]{port} }
sub endpoint { $_[0]{endpoint} }

sub queue_url {
    my ($self, $name) = @_;
    return "$self->{endpoint}/$ACCOUNT/$name";
}

# An Amazon::SQS::Simple for this bridge. It sends "Host: 127.0.0.1",
# without the port: the bridge adds the port the connection arrived on to
# the queue URLs it builds.
sub sqs {
    my ($self, $access_key, $secret_key) = @_;
    return Amazon::SQS::Simple->new($access_key // 'test', $secret_key // 'test',
                                    Endpoint => $self->{endpoint}, Timeout => 30);
}

sub log_text {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return '';
    local $/;
    return <$fh>;
}

# SIGTERM (SIGKILL after 10 s), then the segments and the directory go.
sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    delete $running{$pid};
    kill 'TERM', $pid;
    my $deadline = _now() + 10;
    while (waitpid($pid, WNOHANG) == 0) {
        if (_now() > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.02;
    }
    $self->_cleanup;
}

sub _cleanup {
    my ($self) = @_;
    unlink glob("/dev/shm/shmq.$self->{ns}.*");
    remove_tree($self->{dir});
}

# Should the test end without stop(): no daemon and no segment stays. The
# test's exit status is kept ($? is what the script exits with).
END {
    local $?;
    $_->stop for values %running;
}

# MD5 digests as Amazon SQS computes them (SQS Developer Guide, "Calculating
# the MD5 message digest for message attributes"), to check the bridge's.

sub md5_of_body {
    my ($body) = @_;
    return md5_hex(encode('UTF-8', $body));
}

# {name => {DataType => ..., StringValue | BinaryValue => ...}}: names
# sorted; each encoded as length-prefixed name, length-prefixed data type,
# one transport byte (1 for String and Number, 2 for Binary), length-prefixed
# value.
sub md5_of_attributes {
    my ($attributes) = @_;
    my $prefixed = sub { my $bytes = shift; pack('N', length $bytes) . $bytes };
    my $encoded = '';
    for my $name (sort { encode('UTF-8', $a) cmp encode('UTF-8', $b) } keys %$attributes) {
        my $value = $attributes->{$name};
        my $type  = $value->{DataType};
        $encoded .= $prefixed->(encode('UTF-8', $name)) . $prefixed->(encode('UTF-8', $type));
        $encoded .= $type =~ /^Binary/
            ? "\x02" . $prefixed->($value->{BinaryValue})
            : "\x01" . $prefixed->(encode('UTF-8', $value->{StringValue}));
    }
    return md5_hex($encoded);
}

1;
