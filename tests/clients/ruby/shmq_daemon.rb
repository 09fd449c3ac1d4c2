# A shmqd for Ruby client tests: its SQS bridge on a free port of 127.0.0.1,
# a namespace of its own, and AWS SDK for Ruby 1.x (Debian's ruby-aws-sdk)
# objects for it. Requiring this file first isolates the process from the
# user's AWS set-up.
#
# ctest passes the binary as SHMQD; by hand:
#   SHMQD=build/bin/shmqd ruby tests/clients/ruby/sqs_v1_test.rb

require 'digest'
require 'fileutils'
require 'tmpdir'

# Never the user's AWS set-up: no credentials, profiles or proxies from the
# environment (the tests pass dummy credentials explicitly).
ENV.keys.grep(/\A(AWS|AMAZON)_/).each { |name| ENV.delete(name) }
ENV.update(
  'AWS_CONFIG_FILE' => '/dev/null',
  'AWS_SHARED_CREDENTIALS_FILE' => '/dev/null',
  'AWS_EC2_METADATA_DISABLED' => 'true',
  'NO_PROXY' => '127.0.0.1,localhost',
  'no_proxy' => '127.0.0.1,localhost'
)

# 'aws-sdk-v1', not 'aws-sdk': the 1.x API whatever other aws-sdk is installed.
require 'aws-sdk-v1'

class ShmqDaemon
  REPO = File.expand_path('../../..', __dir__)
  SHMQD = ENV['SHMQD'].to_s.empty? ? File.join(REPO, 'build/bin/shmqd') : ENV['SHMQD']
  REGION = 'us-east-1'
  ACCOUNT = '000000000000'
  # util-linux's setpriv: the daemon gets SIGTERM when this process dies,
  # even by SIGKILL (a ctest timeout), so none outlives its tests.
  SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find { |path| File.executable?(path) }

  @started = 0
  class << self
    attr_accessor :started
  end

  attr_reader :ns, :port, :endpoint

  # Starts shmqd (with extra_args, e.g. ['--auth', 'KEY:SECRET']) and returns
  # once its bridge listens. The caller stops it (with minitest:
  # Minitest.after_run, not at_exit, whose handlers would run before
  # minitest/autorun's).
  def initialize(extra_args = [])
    self.class.started += 1
    @ns = "rbc#{Process.pid}x#{self.class.started}"
    @dir = Dir.mktmpdir("shmq-#{@ns}-")
    @log_path = File.join(@dir, 'shmqd.log')
    port_file = File.join(@dir, 'port')
    command = [SHMQD, '--namespace', @ns, '--bridge-listen', '127.0.0.1:0',
               '--bridge-port-file', port_file, '--log-level', 'warn', *extra_args]
    command = [SETPRIV, '--pdeathsig', 'TERM', *command] if SETPRIV
    @pid = Process.spawn(*command, in: File::NULL, %i[out err] => [@log_path, 'w'])
    wait_for_port(port_file)
    @endpoint = "http://127.0.0.1:#{@port}"
  end

  # An AWS::SQS for this bridge (Query protocol, Signature V4). It sends
  # "Host: 127.0.0.1", without the port: the bridge adds the port the
  # connection arrived on to the queue URLs it builds.
  def sqs(access_key_id: 'test', secret_access_key: 'test', **options)
    AWS::SQS.new(
      access_key_id: access_key_id,
      secret_access_key: secret_access_key,
      region: REGION,
      sqs_endpoint: '127.0.0.1',
      sqs_port: @port,
      use_ssl: false,
      max_retries: 0,             # an error is the test's, not hidden by retries
      sqs_verify_checksums: true, # MD5OfMessageBody checked by the SDK (its default, made explicit)
      http_read_timeout: 30,
      **options
    )
  end

  def queue_url(name)
    "#{@endpoint}/#{ACCOUNT}/#{name}"
  end

  def log
    File.read(@log_path)
  rescue SystemCallError
    ''
  end

  # SIGTERM (SIGKILL after 10 s), then the segments and the directory go.
  def stop
    return unless @pid

    begin
      Process.kill('TERM', @pid)
      Process.wait(@pid) if waited_out?(10)
    rescue Errno::ESRCH, Errno::ECHILD
      # already gone
    end
    @pid = nil
    cleanup
  end

  private

  def wait_for_port(port_file)
    deadline = now + 15
    loop do
      if Process.wait(@pid, Process::WNOHANG)
        @pid = nil
        text = log
        cleanup
        raise "shmqd exited with #{$?.exitstatus.inspect} at start:\n#{text}"
      end
      @port = File.read(port_file).strip.to_i if File.exist?(port_file)
      return if @port.to_i.positive?
      if now > deadline
        stop
        raise 'shmqd did not write its bridge port within 15 s'
      end
      sleep 0.02
    end
  end

  # Waits up to `seconds` for the daemon to exit; true (after a SIGKILL) if
  # it did not.
  def waited_out?(seconds)
    deadline = now + seconds
    until Process.wait(@pid, Process::WNOHANG)
      if now > deadline
        Process.kill('KILL', @pid)
        return true
      end
      sleep 0.02
    end
    false
  end

  def cleanup
    FileUtils.rm_f(Dir.glob("/dev/shm/shmq.#{@ns}.*"))
    FileUtils.rm_rf(@dir)
  end

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end

# MD5 digests as Amazon SQS computes them (SQS Developer Guide, "Calculating
# the MD5 message digest for message attributes"), to check the bridge's.
module SqsMd5
  module_function

  def of_body(body)
    Digest::MD5.hexdigest(body.b)
  end

  # attributes: {name => {data_type:, string_value: | binary_value:}}, the
  # SDK's shape. Names sorted; each encoded as length-prefixed name,
  # length-prefixed data type, one transport byte (1 for String and Number,
  # 2 for Binary), length-prefixed value.
  def of_attributes(attributes)
    encoded = attributes.sort_by { |name, _| name.b }.map do |name, value|
      data_type = value.fetch(:data_type)
      head = length_prefixed(name) + length_prefixed(data_type)
      if data_type.start_with?('Binary')
        head + "\x02".b + length_prefixed(value.fetch(:binary_value))
      else
        head + "\x01".b + length_prefixed(value.fetch(:string_value))
      end
    end
    Digest::MD5.hexdigest(encoded.join)
  end

  def length_prefixed(text)
    [text.bytesize].pack('N') + text.b
  end
end
