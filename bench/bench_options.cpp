#include "bench_options.hpp"

#include <sched.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <ostream>

#include "payload.hpp"
#include "transport_registry.hpp"

namespace shmq::bench {
namespace {

namespace po = boost::program_options;

constexpr std::size_t kMaxMessageBytes = 1048576;  // the largest message shmq (and SQS) takes
constexpr std::size_t kMaxCapacity = 1u << 24;
constexpr std::size_t kMaxProcesses = 64;  // producers, and consumers
constexpr std::size_t kMaxFifoGroups = 1000000;
constexpr std::size_t kSpinIterations = 100000;
constexpr std::size_t kBlockIterations = 20000;  // each round trip sleeps twice
// Stream defaults: a million messages, fewer for large ones, so that a run
// moves about 1 GiB and lasts a few seconds at most.
constexpr std::size_t kStreamBytes = 1ull << 30;
constexpr std::size_t kMaxStreamMessages = 1000000;
constexpr std::size_t kMinStreamMessages = 1000;
// Capacity default: 1024 messages, fewer for large ones, at most 256 MiB a channel.
constexpr std::size_t kChannelBytes = 256ull << 20;
constexpr std::size_t kMaxDefaultCapacity = 1024;
constexpr std::size_t kMinDefaultCapacity = 16;

std::size_t parse_count(const std::string& flag, const std::string& text, std::size_t min, std::size_t max) {
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError(flag + ": '" + text + "' is not a whole number");
  }
  if (value < min || value > max) {
    throw UsageError(flag + ": " + text + " is outside " + std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) return parts;
    start = comma + 1;
  }
}

std::vector<std::string> parse_transports(const std::string& text) {
  std::vector<std::string> chosen;
  auto add = [&](const std::string& name) {
    if (std::find(chosen.begin(), chosen.end(), name) == chosen.end()) chosen.push_back(name);
  };
  for (const std::string& name : split(text)) {
    if (name == "all") {
      for (const std::string& known : all_transport_names()) add(known);
    } else if (known_transport(name)) {
      add(name);
    } else {
      std::string names;
      for (const std::string& known : transport_names()) names += known + ", ";
      throw UsageError("--transport: unknown '" + name + "'; choose from " + names +
                       "all (every one but shmq-remote; comma-separated)");
    }
  }
  return chosen;
}

std::vector<int> parse_pin(const std::string& text) {
  std::vector<int> cpus;
  for (const std::string& part : split(text)) {
    cpus.push_back(static_cast<int>(parse_count("--pin", part, 0, CPU_SETSIZE - 1)));
  }
  return cpus;
}

po::options_description describe_options() {
  po::options_description d(
      "Usage: shmq-bench [options]\n"
      "Passes messages between processes over shmq and the transports it is compared with,\n"
      "and prints round-trip latency (pingpong) or throughput (stream) side by side.\n"
      "Exit status: 0 if every transport ran or was skipped, 1 if one failed, 2 on bad flags.\n\n"
      "Options",
      100, 50);
  // Every value is taken as text and checked here: Boost would read "-5" as a huge unsigned number.
  auto text = [] { return po::value<std::string>(); };
  d.add_options()("help,h", "print this help")                                  //
      ("workload", text()->value_name("NAME"), "pingpong (default) or stream")  //
      ("transport", text()->value_name("LIST"),
       "shmq (default), boostmq, posixmq, zeromq, iceoryx, spsc, shmq-remote (shmq's SQS client over HTTP) or "
       "all (every one but shmq-remote); comma-separated")                                                      //
      ("size", text()->value_name("BYTES"), "message size, 16 B to 1 MiB: 64 (default), 1KiB, 64KiB, 1MiB")     //
      ("wait", text()->value_name("MODE"), "spin (default: receivers poll) or block (receivers sleep)")         //
      ("block-spin-us", text()->value_name("N"), "--wait block: poll this long before sleeping (default 0)")    //
      ("iterations", text()->value_name("N"), "pingpong: round trips measured (default 100000; block: 20000)")  //
      ("warmup", text()->value_name("N"), "pingpong: round trips before those (default a tenth)")               //
      ("messages", text()->value_name("N"),
       "stream: messages in all (default 1000000, fewer above 1 KiB: about 1 GiB)")                //
      ("producers", text()->value_name("N"), "stream: sending processes (default 1)")              //
      ("consumers", text()->value_name("N"), "stream: receiving processes (default 1)")            //
      ("batch", text()->value_name("N"), "stream: most messages per receive, 1..10 (default 10)")  //
      ("backlog", text()->value_name("N"),
       "stream: fill the channel with N messages first and keep about N in it while timed (default 0; "
       "at least consumers x batch; shmq only)")  //
      ("send-batch", text()->value_name("N"),
       "stream: producers send N messages a call, 1..10 (default 1; shmq-remote: SendMessageBatch)")  //
      ("sequential",
       "stream: producers send all messages before consumers start; sends/s and receives/s timed apart")  //
      ("buffered-sender",
       "stream: producers' single sends go through shmq::BufferedSender, which batches them (shmq-remote only)")  //
      ("fifo-groups", text()->value_name("N"),
       "a FIFO queue, messages sent round-robin over N message groups (shmq only)")  //
      ("capacity", text()->value_name("N"),
       "messages a channel holds before senders wait (default 1024, fewer above 256 KiB; a backlog adds to it)")  //
      ("pin", text()->value_name("CPU,CPU"),
       "pin the worker processes to these CPUs in turn (pingpong: ping, pong; stream: producers, consumers)")  //
      ("json", "print one JSON object instead of the table")                                                   //
      ("plot", text()->value_name("FILE.svg"), "also draw the results as an SVG chart")                        //
      ("shmqd", text()->value_name("PATH"), "shmq: the daemon to start (default: shmqd beside shmq-bench)")    //
      ("namespace", text()->value_name("NS"), "shmq: use the shmqd running in this namespace instead")         //
      ("roudi", text()->value_name("PATH"), "iceoryx: RouDi to start if none runs (default iox-roudi)")        //
      ("endpoint", text()->value_name("URL"),
       "shmq-remote: this SQS endpoint (credentials from the AWS chain: AWS_ACCESS_KEY_ID, ~/.aws) instead of "
       "a shmqd it starts with its bridge on 127.0.0.1")  //
      ("region", text()->value_name("REGION"),
       "shmq-remote: the region to sign for (default: the endpoint's host name, AWS_REGION, the profile's)");
  return d;
}

}  // namespace

std::size_t parse_size(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string suffix = text.substr(digits);
  std::size_t unit = 0;
  if (suffix.empty() || suffix == "B") {
    unit = 1;
  } else if (suffix == "K" || suffix == "k" || suffix == "KiB") {
    unit = 1024;
  } else if (suffix == "M" || suffix == "MiB") {
    unit = 1024 * 1024;
  } else {
    throw UsageError("--size: '" + text + "': give bytes, optionally with KiB or MiB (64, 1KiB, 1MiB)");
  }
  const std::size_t count = parse_count("--size", text.substr(0, digits), 0, kMaxMessageBytes);
  const std::size_t bytes = count * unit;
  if (bytes < kSequenceDigits) {
    throw UsageError("--size: at least 16 bytes (each message starts with a 16-digit sequence number)");
  }
  if (bytes > kMaxMessageBytes) throw UsageError("--size: at most 1 MiB (shmq's largest message)");
  return bytes;
}

std::optional<BenchOptions> parse_options(int argc, const char* const argv[], std::ostream& help_out) {
  const po::options_description description = describe_options();
  po::variables_map vm;
  try {
    const po::positional_options_description none;  // a stray word is an error, not ignored
    po::store(po::command_line_parser(argc, argv).options(description).positional(none).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  if (vm.count("help") != 0) {
    help_out << description << "\n";
    return std::nullopt;
  }
  auto given = [&](const char* flag) { return vm.count(flag) != 0; };
  auto value = [&](const char* flag) { return vm[flag].as<std::string>(); };

  BenchOptions o;
  if (given("workload")) {
    const std::string w = value("workload");
    if (w == "pingpong") {
      o.workload = Workload::pingpong;
    } else if (w == "stream") {
      o.workload = Workload::stream;
    } else {
      throw UsageError("--workload: '" + w + "'; choose pingpong or stream");
    }
  }
  if (given("transport")) o.transports = parse_transports(value("transport"));
  if (given("size")) o.channel.message_bytes = parse_size(value("size"));
  if (given("wait")) {
    const std::string w = value("wait");
    if (w == "spin") {
      o.channel.wait = WaitMode::spin;
    } else if (w == "block") {
      o.channel.wait = WaitMode::block;
    } else {
      throw UsageError("--wait: '" + w + "'; choose spin or block");
    }
  }
  if (given("block-spin-us")) {
    if (o.channel.wait != WaitMode::block) throw UsageError("--block-spin-us: only with --wait block");
    o.channel.block_spin =
        std::chrono::microseconds(parse_count("--block-spin-us", value("block-spin-us"), 0, 1000000));
  }

  const bool pingpong = o.workload == Workload::pingpong;
  for (const char* flag : {"iterations", "warmup"}) {
    if (given(flag) && !pingpong) throw UsageError(std::string("--") + flag + ": only with --workload pingpong");
  }
  for (const char* flag :
       {"messages", "producers", "consumers", "batch", "backlog", "send-batch", "sequential", "buffered-sender"}) {
    if (given(flag) && pingpong) throw UsageError(std::string("--") + flag + ": only with --workload stream");
  }
  o.iterations = given("iterations")                ? parse_count("--iterations", value("iterations"), 1, 100000000)
                 : o.channel.wait == WaitMode::spin ? kSpinIterations
                                                    : kBlockIterations;
  o.warmup = given("warmup") ? parse_count("--warmup", value("warmup"), 0, 100000000) : o.iterations / 10;
  o.messages = given("messages")
                   ? parse_count("--messages", value("messages"), 1, 1000000000)
                   : std::clamp(kStreamBytes / o.channel.message_bytes, kMinStreamMessages, kMaxStreamMessages);
  if (given("producers")) o.producers = parse_count("--producers", value("producers"), 1, kMaxProcesses);
  if (given("consumers")) o.consumers = parse_count("--consumers", value("consumers"), 1, kMaxProcesses);
  if (given("batch")) o.batch = parse_count("--batch", value("batch"), 1, kMaxBatch);
  o.channel.capacity =
      given("capacity") ? parse_count("--capacity", value("capacity"), 1, kMaxCapacity)
                        : std::clamp(kChannelBytes / o.channel.message_bytes, kMinDefaultCapacity, kMaxDefaultCapacity);
  if (given("backlog")) {
    o.backlog = parse_count("--backlog", value("backlog"), 0, kMaxCapacity - o.channel.capacity);
    // A consumer that finds the channel empty waits for a send; with fewer
    // than a batch per consumer left in it, the last sends might all be taken.
    if (o.backlog > 0 && o.backlog < o.consumers * o.batch) {
      throw UsageError("--backlog: 0 or at least consumers x batch (" + std::to_string(o.consumers * o.batch) + ")");
    }
  }
  if (given("send-batch")) o.send_batch = parse_count("--send-batch", value("send-batch"), 1, kMaxBatch);
  o.sequential = given("sequential");
  if (o.sequential && o.backlog > 0) throw UsageError("--sequential: not with --backlog");
  o.settings.buffered_sender = given("buffered-sender");
  if (o.settings.buffered_sender && o.send_batch > 1) {
    throw UsageError("--buffered-sender: not with --send-batch (the buffered sender makes the batches)");
  }
  if (given("fifo-groups")) {
    o.channel.fifo_groups = parse_count("--fifo-groups", value("fifo-groups"), 1, kMaxFifoGroups);
  }
  if (given("pin")) o.pin = parse_pin(value("pin"));
  o.json = given("json");
  if (given("plot")) {
    o.plot_path = value("plot");
    if (o.plot_path.empty()) throw UsageError("--plot: give a file name");
  }
  if (given("shmqd")) o.settings.shmqd_path = value("shmqd");
  if (given("namespace")) o.settings.shmq_namespace = value("namespace");
  if (given("roudi")) o.settings.roudi_path = value("roudi");
  if (given("endpoint")) {
    o.settings.endpoint = value("endpoint");
    if (o.settings.endpoint.empty()) throw UsageError("--endpoint: give a URL (http://host:port, https://...)");
  }
  if (given("region")) o.settings.region = value("region");
  return o;
}

}  // namespace shmq::bench
