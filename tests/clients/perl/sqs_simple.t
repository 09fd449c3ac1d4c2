#!/usr/bin/perl
# Amazon::SQS::Simple 2.07 (Debian's libamazon-sqs-simple-perl; a
# form-encoded Query body, with an X-Amz-Target header, signed with
# Signature V4) against a real shmqd: what a user of that module does with a
# standard queue, a FIFO queue and a missing queue.
#
#   SHMQD=build/bin/shmqd perl tests/clients/perl/sqs_simple.t
#
# What the module offers and what it leaves to its caller:
# - Every method passes named parameters it does not know into the Query
#   form as they are: message attributes, queue attributes and FIFO's
#   MessageGroupId are sent that way. It URL-escapes only MessageBody,
#   ReceiptHandle and Signature, so such values must be URL-safe.
# - Its Message objects have accessors for the body, MD5OfBody, MessageId and
#   ReceiptHandle only: message attributes and attributes such as
#   ApproximateReceiveCount are read from the parsed XML the object is.
# - SendResponse::VerifyReceipt checks MD5OfMessageBody (on request; against
#   the body's bytes only when it is ASCII: it hashes Perl characters).
# - It has no GetQueueUrl; GetQueue makes a queue object from a URL.
# - An error is an exception whose text is the whole HTTP response.

use strict;
use warnings;
use utf8;

use FindBin;
use lib $FindBin::Bin;
use ShmqDaemon;    # first: isolates the process from the user's AWS set-up

use Test::More;
use XML::Simple qw(XMLin);

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $daemon = ShmqDaemon->start;
my $sqs    = $daemon->sqs;

my $names = 0;
sub unique { my ($stem) = @_; return "$stem-$$-" . ++$names }

# A subtest whose exception (any failed call dies) fails it alone, saying
# why, and lets the others run.
sub case {
    my ($name, $code) = @_;
    subtest $name => sub {
        eval { $code->(); 1 } or fail("died: $@");
    };
}

# {Name => Value} of a message's <Attribute> or <MessageAttribute> elements
# (XML::Simple makes one element a hash, several a list).
sub by_name {
    my ($elements) = @_;
    my @list = ref $elements eq 'ARRAY' ? @$elements : $elements ? ($elements) : ();
    return { map { $_->{Name} => $_->{Value} } @list };
}

# The error a call died with, as the Query protocol's XML says it:
# (HTTP status, {Type, Code, Message}).
sub query_error {
    my ($exception) = @_;
    my ($status) = $exception =~ m{^Got an error: HTTP/1\.[01] (\d{3})};
    my ($xml)    = $exception =~ m{\r?\n\r?\n(<\?xml.*)\z}s;
    return ($status, $xml ? XMLin($xml)->{Error} : undef);
}

# String and Number, URL-safe as the module needs (see above).
my %attributes = (
    colour => { DataType => 'String', StringValue => 'blue' },
    count  => { DataType => 'Number', StringValue => '42' },
);
my $n = 0;
my %attribute_params = map {
    ++$n;
    ("MessageAttribute.$n.Name"             => $_,
     "MessageAttribute.$n.Value.DataType"    => $attributes{$_}{DataType},
     "MessageAttribute.$n.Value.StringValue" => $attributes{$_}{StringValue})
} sort keys %attributes;

case 'standard queue: create, send with attributes, receive, delete' => sub {
    my $name  = unique('std');
    my $queue = $sqs->CreateQueue($name);
    # The URL as the bridge builds it from "Host: 127.0.0.1" and the port
    # the connection arrived on; the queue object sends every later call to
    # this URL.
    is($queue->Endpoint, $daemon->queue_url($name), 'CreateQueue answers the queue URL');
    my $listed = $sqs->ListQueues(QueueNamePrefix => $name) || [];
    is_deeply([map { $_->Endpoint } @$listed], [$queue->Endpoint], 'ListQueues lists it');

    my $body = 'hello & goodbye = 100% + more <xml a="1"/>';
    my $sent = $queue->SendMessage($body, %attribute_params);
    ok($sent->VerifyReceipt, 'MD5OfMessageBody verifies');
    is($sent->MD5OfMessageBody, ShmqDaemon::md5_of_body($body), 'MD5OfMessageBody');
    is($sent->{MD5OfMessageAttributes}, ShmqDaemon::md5_of_attributes(\%attributes), 'MD5OfMessageAttributes');

    my $message = $queue->ReceiveMessage(
        'AttributeName.1' => 'All', 'MessageAttributeName.1' => 'All', WaitTimeSeconds => 5);
    ok($message, 'the message sent is received') or return;
    is($message->MessageBody, $body, 'body');
    is($message->MessageId, $sent->MessageId, 'message id');
    is($message->MD5OfBody, ShmqDaemon::md5_of_body($body), 'MD5OfBody');
    is(by_name($message->{Attribute})->{ApproximateReceiveCount}, 1, 'ApproximateReceiveCount');
    is_deeply(by_name($message->{MessageAttribute}), \%attributes, 'message attributes');
    is($message->{MD5OfMessageAttributes}, ShmqDaemon::md5_of_attributes(\%attributes),
       'MD5OfMessageAttributes on receive');
    is($queue->GetAttributes->{ApproximateNumberOfMessagesNotVisible}, 1, 'in flight');

    $queue->DeleteMessage($message);
    is($queue->ReceiveMessage(WaitTimeSeconds => 1), undef, 'nothing to receive after the delete');
    # Also while it would still be invisible, had the delete not worked.
    my $counts = $queue->GetAttributes;
    is($counts->{ApproximateNumberOfMessages},           0, 'none visible');
    is($counts->{ApproximateNumberOfMessagesNotVisible}, 0, 'none in flight');
};

case 'a non-ASCII body round-trips' => sub {
    my $queue = $sqs->CreateQueue(unique('utf8'));
    my $body  = "Grüße ✓ 𝄞";
    my $sent  = $queue->SendMessage($body);
    is($sent->MD5OfMessageBody, ShmqDaemon::md5_of_body($body), 'MD5 of the UTF-8 bytes');
    my $message = $queue->ReceiveMessage(WaitTimeSeconds => 5);
    ok($message, 'received') or return;
    is($message->MessageBody, $body, 'body');
    is($message->MD5OfBody, ShmqDaemon::md5_of_body($body), 'MD5OfBody');
};

case 'FIFO queue: a batch of three in one group is received in order' => sub {
    my $name  = unique('fifo') . '.fifo';
    my $queue = $sqs->CreateQueue($name,
        'Attribute.1.Name' => 'FifoQueue',                 'Attribute.1.Value' => 'true',
        'Attribute.2.Name' => 'ContentBasedDeduplication', 'Attribute.2.Value' => 'true');
    is($queue->Endpoint, $daemon->queue_url($name), 'queue URL');
    my $attributes = $queue->GetAttributes;
    is($attributes->{FifoQueue},                 'true', 'FifoQueue');
    is($attributes->{ContentBasedDeduplication}, 'true', 'ContentBasedDeduplication');

    # SendMessageBatch numbers the entries in the order `each` walks its
    # hash (given an array, a hash it builds): Perl's hash order, which the
    # caller cannot choose. `keys` walks an unchanged hash in the same
    # order, so it tells the order of the entries sent.
    my %batch = (m1 => 'first', m2 => 'second', m3 => 'third');
    my @order = map { $batch{$_} } keys %batch;
    my @sent = $queue->SendMessageBatch(\%batch,
        map { ("SendMessageBatchRequestEntry.$_.MessageGroupId" => 'group-1') } 1 .. 3);
    is(scalar @sent, 3, 'three sent');
    ok($_->VerifyReceipt, "MD5OfMessageBody of $_->{Id}") for @sent;

    my @received;
    while (@received < 3) {
        my @messages = $queue->ReceiveMessage(MaxNumberOfMessages => 10, WaitTimeSeconds => 5);
        last unless @messages;
        push @received, @messages;
    }
    is_deeply([map { $_->MessageBody } @received], \@order, 'received in the order sent');

    $queue->DeleteMessageBatch(\@received);
    my $counts = $queue->GetAttributes;
    is($counts->{ApproximateNumberOfMessages},           0, 'none visible');
    is($counts->{ApproximateNumberOfMessagesNotVisible}, 0, 'none in flight');
};

case 'a call on a missing queue is AWS.SimpleQueueService.NonExistentQueue' => sub {
    my $missing = $sqs->GetQueue($daemon->queue_url(unique('missing')));
    ok(!eval { $missing->GetAttributes; 1 }, 'GetQueueAttributes fails');
    my ($status, $error) = query_error($@);
    is($status, 400, 'HTTP 400');
    is($error->{Type}, 'Sender', 'Type');
    is($error->{Code}, 'AWS.SimpleQueueService.NonExistentQueue', 'Code');
    is($error->{Message}, 'The specified queue does not exist for this wsdl version.', 'Message');
};

# AWS::Signature4, which the module signs with, takes the service of the
# credential scope from the host name (sqs.REGION.amazonaws.com) and, for
# any other host, says "s3": against a bridge that checks signatures
# (--auth) the module is refused, as Amazon SQS refuses such a scope.
case 'with --auth, a signature scoped to s3 is refused' => sub {
    my $secured = ShmqDaemon->start('--auth', 'perl-key:perl-secret');
    my $signed  = $secured->sqs('perl-key', 'perl-secret');
    ok(!eval { $signed->CreateQueue(unique('signed')); 1 }, 'CreateQueue fails');
    my ($status, $error) = query_error($@);
    is($status, 403, 'HTTP 403');
    is($error->{Code}, 'SignatureDoesNotMatch', 'Code');
    like($error->{Message}, qr/^Credential should be scoped to correct service: 'sqs'\./, 'Message');
    $secured->stop;
};

$daemon->stop;
done_testing;
