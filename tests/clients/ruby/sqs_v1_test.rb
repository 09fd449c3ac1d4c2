# AWS SDK for Ruby 1.x (Debian's ruby-aws-sdk, AWS::SQS, Query protocol)
# against a real shmqd: what a user of that SDK does with a standard queue,
# a FIFO queue, a missing queue, and a bridge that checks signatures.
#
#   SHMQD=build/bin/shmqd ruby tests/clients/ruby/sqs_v1_test.rb

require_relative 'shmq_daemon'
require 'minitest/autorun'

# One daemon for the file; a second one, with --auth, for the signature tests.
AUTH_KEY = 'rubyv1-key'
AUTH_SECRET = 'rubyv1-secret'
DAEMON = ShmqDaemon.new
begin
  AUTH_DAEMON = ShmqDaemon.new(['--auth', "#{AUTH_KEY}:#{AUTH_SECRET}"])
rescue StandardError
  DAEMON.stop
  raise
end
Minitest.after_run do
  DAEMON.stop
  AUTH_DAEMON.stop
end

# The FIFO parameters (SQS added them in 2016) for an AWS::SQS::Client of
# SDK 1.x, whose 2012-11-05 model predates them: its option grammar rejects
# any option it does not know (ArgumentError "unexpected option"), low-level
# client included. Extending a client with this module takes
# :message_group_id out of send_message's options and of each of
# send_message_batch's entries before the grammar sees them, and adds them to
# the Query form after it, before the request is signed.
module FifoParameters
  private

  def build_request(name, options)
    options = options.dup
    extra = {}
    case name
    when :send_message
      extra['MessageGroupId'] = options.delete(:message_group_id)
    when :send_message_batch
      options[:entries] = options[:entries].each_with_index.map do |entry, i|
        entry = entry.dup
        extra["SendMessageBatchRequestEntry.#{i + 1}.MessageGroupId"] = entry.delete(:message_group_id)
        entry
      end
    end
    extra.compact!
    request = super(name, options)
    return request if extra.empty?

    extra.each { |param, value| request.add_param(param, value) }
    request.body = request.url_encoded_params
    request
  end
end

class SqsV1Test < Minitest::Test
  # String, Number and Binary, non-ASCII included.
  ATTRIBUTES = {
    'colour' => { data_type: 'String', string_value: 'Zoë ✓' },
    'count' => { data_type: 'Number', string_value: '42' },
    'blob' => { data_type: 'Binary', binary_value: (0..255).map(&:chr).join.b }
  }.freeze

  @@names = 0

  def setup
    @sqs = DAEMON.sqs
  end

  def unique(stem)
    "#{stem}-#{Process.pid}-#{@@names += 1}"
  end

  # Received message attributes in the shape they were sent (the SDK adds
  # empty list members).
  def plain(message_attributes)
    message_attributes.transform_values do |value|
      value.reject { |_, v| v.respond_to?(:empty?) && v.empty? }
    end
  end

  def test_standard_queue_send_receive_delete
    name = unique('std')
    queue = @sqs.queues.create(name)
    # The URL as the bridge builds it from "Host: 127.0.0.1" and the port the
    # connection arrived on. Every later call goes to this URL (SDK 1.x takes
    # its host and path; the port stays the configured one).
    assert_equal DAEMON.queue_url(name), queue.url
    assert_equal queue.url, @sqs.queues.named(name).url
    assert_includes @sqs.queues.with_prefix(name).map(&:url), queue.url

    body = 'Grüße ✓ <xml a="1"/> & = 100% + more'
    # The SDK checks MD5OfMessageBody (sqs_verify_checksums): a wrong one
    # raises AWS::SQS::Errors::ChecksumError here and on receive.
    sent = queue.send_message(body, message_attributes: ATTRIBUTES)
    assert_equal SqsMd5.of_body(body), sent.md5

    message = queue.receive_message(attributes: [:all], message_attribute_names: ['All'], wait_time_seconds: 5)
    refute_nil message, 'the message sent is received'
    assert_equal body, message.body
    assert_equal sent.message_id, message.id
    assert_equal 1, message.receive_count
    assert_equal ATTRIBUTES, plain(message.message_attributes)
    assert_equal 1, queue.approximate_number_of_messages_not_visible

    message.delete
    assert_nil queue.receive_message(wait_time_seconds: 1)
    # Also while it would still be invisible, had the delete not worked.
    assert_equal 0, queue.approximate_number_of_messages
    assert_equal 0, queue.approximate_number_of_messages_not_visible
  end

  # The high-level Queue drops MD5OfMessageAttributes; the client returns it.
  def test_message_attribute_digests_are_amazons
    url = @sqs.queues.create(unique('md5')).url
    sent = @sqs.client.send_message(queue_url: url, message_body: 'digests', message_attributes: ATTRIBUTES)
    assert_equal SqsMd5.of_attributes(ATTRIBUTES), sent[:md5_of_message_attributes]

    received = @sqs.client.receive_message(queue_url: url, message_attribute_names: ['All'], wait_time_seconds: 5)
    assert_equal 1, received[:messages].size
    assert_equal SqsMd5.of_attributes(ATTRIBUTES), received[:messages][0][:md5_of_message_attributes]
  end

  def test_fifo_queue_batch_send_keeps_the_group_order
    name = unique('fifo') + '.fifo'
    # Queue attributes are free-form strings in the 1.x model: a FIFO queue
    # can be created with the stock SDK.
    queue = @sqs.queues.create(name, fifo_queue: true, content_based_deduplication: true)
    assert_equal DAEMON.queue_url(name), queue.url
    attributes = @sqs.client.get_queue_attributes(queue_url: queue.url, attribute_names: ['All']).attributes
    assert_equal 'true', attributes['FifoQueue']
    assert_equal 'true', attributes['ContentBasedDeduplication']

    bodies = %w[first second third]
    entries = bodies.map { |body| { message_body: body, message_group_id: 'group-1' } }
    # The stock SDK cannot say MessageGroupId (see FifoParameters).
    error = assert_raises(ArgumentError) { queue.batch_send(entries) }
    assert_match(/message_group_id/, error.message)

    fifo_client = AWS::SQS::Client.new(config: @sqs.config).extend(FifoParameters)
    fifo_queue = AWS::SQS.new(config: @sqs.config.with(sqs_client: fifo_client)).queues[queue.url]
    # One SendMessageBatch of three entries; the SDK checks each body's MD5.
    sent = fifo_queue.batch_send(entries)
    assert_equal 3, sent.size
    assert_equal bodies.map { |body| SqsMd5.of_body(body) }, sent.map(&:md5)

    received = []
    while received.size < bodies.size
      batch = fifo_queue.receive_messages(limit: 10, wait_time_seconds: 5)
      break if batch.empty?

      received.concat(batch)
    end
    assert_equal bodies, received.map(&:body), 'received in the order sent'
    assert_equal sent.map(&:message_id), received.map(&:id)

    fifo_queue.batch_delete(received)
    assert_equal 0, fifo_queue.approximate_number_of_messages
    assert_equal 0, fifo_queue.approximate_number_of_messages_not_visible
  end

  def test_missing_queue_is_nonexistentqueue
    error = assert_raises(AWS::SQS::Errors::NonExistentQueue) { @sqs.queues.url_for(unique('missing')) }
    assert_equal 'AWS.SimpleQueueService.NonExistentQueue', error.code
    assert_equal 'The specified queue does not exist for this wsdl version.', error.message
    assert_equal 400, error.http_response.status
  end

  # Signature V4 over "Host: 127.0.0.1" (no port) verifies, and queue calls
  # signed for the queue URL's path too.
  def test_signed_requests_are_accepted_by_a_bridge_that_checks_them
    sqs = AUTH_DAEMON.sqs(access_key_id: AUTH_KEY, secret_access_key: AUTH_SECRET)
    name = unique('signed')
    queue = sqs.queues.create(name)
    assert_equal AUTH_DAEMON.queue_url(name), queue.url
    queue.send_message('signed')
    message = queue.receive_message(wait_time_seconds: 5)
    refute_nil message, 'the message sent is received'
    assert_equal 'signed', message.body
    message.delete
  end

  def test_a_wrong_secret_is_signaturedoesnotmatch
    sqs = AUTH_DAEMON.sqs(access_key_id: AUTH_KEY, secret_access_key: 'not-the-secret')
    error = assert_raises(AWS::SQS::Errors::SignatureDoesNotMatch) { sqs.queues.create(unique('unsigned')) }
    assert_equal 403, error.http_response.status
  end
end
