#include "shmqctl.hpp"

#include <openssl/evp.h>

#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shmq/shmq.hpp"

namespace shmq::ctl {

namespace po = boost::program_options;
using nlohmann::json;

namespace {

constexpr const char* kUsage = R"(usage: shmqctl [--namespace NS] [--json] COMMAND [ARGS]
       shmqctl --version | --help

commands:
  create-queue NAME [-a KEY=VALUE]... [-t KEY=VALUE]...
                                           create a queue (attributes as SQS names them; tags)
  delete-queue NAME                        delete a queue and its messages
  list-queues [--prefix P]                 list queues
  health                                   is the daemon serving? (exit 0; 1 if it does not answer or is stopping)
  get-attributes NAME [--names N]...       show queue attributes (default: All)
  set-attributes NAME -a KEY=VALUE...      change queue attributes
  purge NAME                               delete every message of a queue
  send NAME [BODY] [--delay S] [--group G] [--dedup-id D] [--trace-header T]
       [--message-attribute NAME=TYPE:VALUE]...
                                           send BODY (or standard input); TYPE String, Number
                                           or Binary (VALUE in base64), with an optional .suffix
  receive NAME [--max N] [--wait S] [--visibility S] [--attempt-id ID] [--delete]
                                           receive up to N messages
  peek NAME [--max N]                      show up to N messages (default 10, at most 100) in send
                                           order, with their state, without receiving them; the
                                           start of each body (all of it with --json)
  delete NAME RECEIPT_HANDLE               delete a received message
  change-visibility NAME RECEIPT_HANDLE S  make a message visible again after S seconds
  stats [NAME]                             slots, memory, counters of a queue; without NAME, all
                                           queues in a table (depth, in flight, delayed, oldest)
  top [--interval S] [--count N]           that table every S seconds (2), with rates; N times
  tag-queue NAME -t KEY=VALUE...           add or replace tags
  untag-queue NAME -k KEY...               remove tags
  list-tags NAME                           show a queue's tags
  add-permission NAME LABEL --account ID... --action ACTION...
                                           add a statement to the queue's Policy
  remove-permission NAME LABEL             remove a statement from the queue's Policy
  list-dead-letter-source-queues NAME      queues whose RedrivePolicy names NAME
  start-move-task SOURCE [--destination NAME] [--rate N]
                                           move a dead-letter queue's messages back to their
                                           source queues (or to NAME), at most N per second
  cancel-move-task HANDLE                  stop a move task
  list-move-tasks SOURCE [--max N]         the N most recent move tasks of a queue (default 1)
)";

struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::map<std::string, std::string> parse_pairs(const std::vector<std::string>& pairs, const char* what) {
  std::map<std::string, std::string> out;
  for (const std::string& pair : pairs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) throw Usage(std::string(what) + " '" + pair + "': write KEY=VALUE");
    out[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

// Strict base64: a multiple of 4 characters of the alphabet, '=' padding only at the end.
std::optional<std::string> base64_decode(const std::string& text) {
  if (text.size() % 4 != 0) return std::nullopt;
  const std::size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.find_first_not_of(alphabet) < text.size() - padding) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int length =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(text.data()),
                      static_cast<int>(text.size()));
  if (length < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(length) - padding);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

// NAME=TYPE:VALUE, where TYPE is String, Number or Binary with an optional
// ".suffix"; Binary values in base64. The daemon side checks the rest.
MessageAttributes parse_message_attributes(const std::vector<std::string>& specs) {
  MessageAttributes out;
  for (const std::string& spec : specs) {
    const auto eq = spec.find('=');
    const auto colon = eq == std::string::npos ? std::string::npos : spec.find(':', eq);
    if (eq == 0 || colon == std::string::npos || colon == eq + 1) {
      throw Usage("message attribute '" + spec + "': write NAME=TYPE:VALUE");
    }
    MessageAttributeValue value;
    value.data_type = spec.substr(eq + 1, colon - eq - 1);
    const std::string text = spec.substr(colon + 1);
    if (value.data_type == "Binary" || value.data_type.starts_with("Binary.")) {
      const auto bytes = base64_decode(text);
      if (!bytes) throw Usage("message attribute '" + spec + "': a Binary value is written in base64");
      value.binary_value = *bytes;
    } else {
      value.string_value = text;
    }
    out[spec.substr(0, eq)] = std::move(value);
  }
  return out;
}

void check(const std::error_code& ec, const std::string& what) {
  if (ec) throw Failure(what + ": " + ec.message() + " (" + errc_name(ec) + ")");
}

// A number SQS bounds, refused before the daemon is asked, naming the SQS
// parameter and its range (the library would say only "out of range").
void check_range(const std::string& flag, std::optional<std::uint32_t> value, std::uint32_t low, std::uint32_t high,
                 const char* parameter) {
  if (!value || (*value >= low && *value <= high)) return;
  throw Failure(flag + " " + std::to_string(*value) + ": " + parameter + " must be between " + std::to_string(low) +
                " and " + std::to_string(high) + " (" + errc_name(make_error_code(Errc::invalid_parameter_value)) +
                ")");
}

json message_json(const Message& m) {
  json out{{"MessageId", m.message_id},
           {"ReceiptHandle", m.receipt_handle},
           {"Body", m.body},
           {"ApproximateReceiveCount", m.receive_count},
           {"SentTimestamp", m.sent_timestamp_ms},
           {"ApproximateFirstReceiveTimestamp", m.first_receive_timestamp_ms}};
  // The optional system attributes appear only when the message has them.
  const std::pair<const char*, const std::string*> optional[]{
      {"MessageGroupId", &m.group_id},
      {"MessageDeduplicationId", &m.deduplication_id},
      {"SequenceNumber", &m.sequence_number},
      {"AWSTraceHeader", &m.trace_header},
      {"DeadLetterQueueSourceArn", &m.dead_letter_source_arn},
  };
  for (const auto& [key, value] : optional) {
    if (!value->empty()) out[key] = *value;
  }
  if (!m.attributes.empty()) {
    json attributes = json::object();
    for (const auto& [name, value] : m.attributes) {
      json& a = attributes[name];
      a["DataType"] = value.data_type;
      if (value.data_type.starts_with("Binary")) {
        a["BinaryValue"] = base64_encode(value.binary_value);
      } else {
        a["StringValue"] = value.string_value;
      }
    }
    out["MessageAttributes"] = std::move(attributes);
  }
  return out;
}

// A peeked message: message_json without a receipt handle, with its state.
json peeked_json(const PeekedMessage& p) {
  json out = message_json(p.message);
  out.erase("ReceiptHandle");
  using State = PeekedMessage::State;
  const char* state = p.state == State::visible     ? "visible"
                      : p.state == State::in_flight ? "in_flight"
                      : p.state == State::delayed   ? "delayed"
                                                    : "to_dead_letter_queue";
  out["State"] = state;
  if (p.visible_at_ms != 0) out["VisibleAt"] = p.visible_at_ms;
  return out;
}

// The start of a body, for a look at a queue: at most 80 bytes, cut at a
// UTF-8 character, "..." after it when there is more.
std::string body_start(const std::string& body) {
  constexpr std::size_t kShown = 80;
  if (body.size() <= kShown) return body;
  std::size_t end = kShown;
  while (end > 0 && (static_cast<unsigned char>(body[end]) & 0xc0) == 0x80) --end;
  return body.substr(0, end) + "...";
}

std::string text_of(const json& item) { return item.is_string() ? item.get<std::string>() : item.dump(); }

void print(std::ostream& out, bool as_json, const json& value) {
  if (as_json) {
    out << value.dump() << "\n";
    return;
  }
  if (value.is_object()) {
    for (auto& [key, item] : value.items()) out << key << ": " << text_of(item) << "\n";
  } else if (value.is_array()) {
    for (auto& item : value) out << text_of(item) << "\n";
  }
}

// Objects one after another, each followed by a blank line; message
// attributes one per line, as they are given to send: NAME: TYPE:VALUE.
void print_records(std::ostream& out, const json& records) {
  for (const json& record : records) {
    for (auto& [key, item] : record.items()) {
      if (key != "MessageAttributes") {
        out << key << ": " << text_of(item) << "\n";
        continue;
      }
      for (auto& [name, a] : item.items()) {
        out << "MessageAttribute." << name << ": " << a.at("DataType").get<std::string>() << ":"
            << text_of(a.contains("BinaryValue") ? a.at("BinaryValue") : a.at("StringValue")) << "\n";
      }
    }
    out << "\n";
  }
}

json move_task_json(const MessageMoveTask& t) {
  json out{{"Status", t.status},
           {"SourceArn", t.source_arn},
           {"ApproximateNumberOfMessagesMoved", t.messages_moved},
           {"ApproximateNumberOfMessagesToMove", t.messages_to_move},
           {"StartedTimestamp", t.started_timestamp_ms}};
  if (!t.task_handle.empty()) out["TaskHandle"] = t.task_handle;
  if (!t.destination_arn.empty()) out["DestinationArn"] = t.destination_arn;
  if (t.max_messages_per_second) out["MaxNumberOfMessagesPerSecond"] = *t.max_messages_per_second;
  if (!t.failure_reason.empty()) out["FailureReason"] = t.failure_reason;
  return out;
}

std::string queue_arn(Client& client, const std::string& name) {
  return client.get_queue_attributes(name, {"QueueArn"}).at("QueueArn");
}

}  // namespace

json stats_json(const QueueStats& s) {
  return {{"segment_bytes", s.segment_bytes},
          {"max_messages", s.max_messages},
          {"slots_ever_used", s.slots_ever_used},
          {"arena_bytes", s.arena_bytes},
          {"arena_free_bytes", s.arena_free_bytes},
          {"memory_bytes", s.memory_bytes},
          {"memory_limit_bytes", s.memory_limit_bytes},
          {"trims", s.trims},
          {"visible", s.counts.visible},
          {"in_flight", s.counts.in_flight},
          {"delayed", s.counts.delayed},
          {"writing", s.counts.writing},
          {"sent_total", s.sent_total},
          {"received_total", s.received_total},
          {"deleted_total", s.deleted_total},
          {"recoveries", s.recoveries},
          {"sleeping_receivers", s.sleeping_receivers},
          {"oldest_sent_timestamp_ms", s.oldest_sent_timestamp_ms}};
}

// Every queue's stats, in name order; a queue deleted meanwhile is left out.
std::vector<std::pair<std::string, QueueStats>> all_stats(Client& client) {
  std::vector<std::pair<std::string, QueueStats>> rows;
  for (const std::string& name : client.list_queues()) {
    try {
      rows.emplace_back(name, client.stats(name));
    } catch (const std::system_error& e) {
      if (e.code() != Errc::queue_does_not_exist) throw;
    }
  }
  return rows;
}

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// An age for people: "-" for none, "42s", "5m03s", "2h04m", "3d02h".
std::string age_text(std::uint64_t since_ms, std::uint64_t now) {
  if (since_ms == 0) return "-";
  const std::uint64_t s = now > since_ms ? (now - since_ms) / 1000 : 0;
  std::ostringstream o;
  o << std::setfill('0');
  if (s < 60) {
    o << s << "s";
  } else if (s < 3600) {
    o << s / 60 << "m" << std::setw(2) << s % 60 << "s";
  } else if (s < 86400) {
    o << s / 3600 << "h" << std::setw(2) << s % 3600 / 60 << "m";
  } else {
    o << s / 86400 << "d" << std::setw(2) << s % 86400 / 3600 << "h";
  }
  return o.str();
}

std::string bytes_text(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream o;
  o << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << " " << units[u];
  return o.str();
}

// Messages a second between two samples of a counter.
double per_second(std::uint64_t now, std::uint64_t before, double seconds) {
  return seconds > 0 && now >= before ? static_cast<double>(now - before) / seconds : 0.0;
}

struct Rates {
  double sent = 0, received = 0, deleted = 0;
};

// All queues in one table; with rates (top), three more columns.
void print_queue_table(std::ostream& out, const std::vector<std::pair<std::string, QueueStats>>& rows,
                       const std::map<std::string, Rates>* rates) {
  std::size_t width = 5;
  for (const auto& [name, s] : rows) width = std::max(width, name.size());
  const std::uint64_t now = now_ms();
  out << std::left << std::setw(static_cast<int>(width)) << "QUEUE" << std::right << std::setw(10) << "VISIBLE"
      << std::setw(10) << "IN_FLIGHT" << std::setw(9) << "DELAYED" << std::setw(8) << "OLDEST" << std::setw(12)
      << "SENT" << std::setw(12) << "RECEIVED" << std::setw(12) << "DELETED" << std::setw(11) << "MEMORY";
  if (rates) out << std::setw(10) << "SENT/S" << std::setw(10) << "RECV/S" << std::setw(10) << "DEL/S";
  out << "\n";
  for (const auto& [name, s] : rows) {
    out << std::left << std::setw(static_cast<int>(width)) << name << std::right << std::setw(10) << s.counts.visible
        << std::setw(10) << s.counts.in_flight << std::setw(9) << s.counts.delayed << std::setw(8)
        << age_text(s.oldest_sent_timestamp_ms, now) << std::setw(12) << s.sent_total << std::setw(12)
        << s.received_total << std::setw(12) << s.deleted_total << std::setw(11) << bytes_text(s.memory_bytes);
    if (rates) {
      const auto it = rates->find(name);
      const Rates r = it == rates->end() ? Rates{} : it->second;
      out << std::fixed << std::setprecision(1) << std::setw(10) << r.sent << std::setw(10) << r.received
          << std::setw(10) << r.deleted;
    }
    out << "\n";
  }
}

// shmqctl top: the table every `interval`, with the rates since the one
// before; `count` tables (0: until interrupted). On a terminal each table
// replaces the last; piped or with --json, they follow each other.
void run_top(Client& client, const std::string& ns, std::ostream& out, bool as_json, double interval,
             std::uint32_t count) {
  const bool terminal = &out == &std::cout && ::isatty(STDOUT_FILENO);
  std::map<std::string, QueueStats> previous;
  auto previous_at = std::chrono::steady_clock::now();
  for (std::uint32_t shown = 0; count == 0 || shown < count; ++shown) {
    if (shown > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    const auto rows = all_stats(client);
    const auto at = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(at - previous_at).count();
    std::map<std::string, Rates> rates;
    for (const auto& [name, s] : rows) {
      const auto before = previous.find(name);
      if (before == previous.end()) continue;  // first seen now: no rate yet
      rates[name] = Rates{per_second(s.sent_total, before->second.sent_total, seconds),
                          per_second(s.received_total, before->second.received_total, seconds),
                          per_second(s.deleted_total, before->second.deleted_total, seconds)};
    }
    if (as_json) {
      json list = json::array();
      for (const auto& [name, s] : rows) {
        json row = stats_json(s);
        row["name"] = name;
        if (const auto r = rates.find(name); r != rates.end()) {
          row["sent_per_second"] = r->second.sent;
          row["received_per_second"] = r->second.received;
          row["deleted_per_second"] = r->second.deleted;
        }
        list.push_back(std::move(row));
      }
      out << json{{"Queues", list}}.dump() << "\n";
    } else {
      if (terminal) out << "\x1b[H\x1b[2J";
      const std::time_t t = std::time(nullptr);
      std::tm local{};
      ::localtime_r(&t, &local);
      out << "shmqd namespace " << ns << ", " << rows.size() << " queues, " << std::put_time(&local, "%H:%M:%S")
          << "\n";
      print_queue_table(out, rows, &rates);
      out << "\n";
    }
    out.flush();
    previous.clear();
    for (const auto& [name, s] : rows) previous.emplace(name, s);
    previous_at = at;
  }
}

int run(int argc, const char* const argv[], std::istream& in, std::ostream& out, std::ostream& err) {
  std::string ns = "default";
  std::string command;
  std::vector<std::string> args;
  std::vector<std::string> attribute_pairs;
  std::vector<std::string> tag_pairs;
  std::vector<std::string> tag_keys;
  std::vector<std::string> names;
  std::vector<std::string> accounts;
  std::vector<std::string> actions;
  std::vector<std::string> message_attribute_specs;
  std::string prefix;
  std::string group;
  std::string dedup_id;
  std::string trace_header;
  std::string attempt_id;
  std::string destination;
  std::uint32_t max_results = 1;
  std::optional<std::uint32_t> wait_s;
  std::optional<std::uint32_t> visibility;
  std::optional<std::uint32_t> delay;
  std::optional<std::uint32_t> rate;
  double interval = 2.0;
  std::uint32_t count = 0;

  po::options_description options("options");
  options.add_options()("help,h", "print this help")("version", "print the version")(
      "namespace,n", po::value(&ns), "the daemon's namespace (default: default)")("json", "print JSON for scripts")(
      "attribute,a", po::value(&attribute_pairs), "KEY=VALUE queue attribute")(
      "tag,t", po::value(&tag_pairs), "KEY=VALUE tag")("key,k", po::value(&tag_keys), "tag key to remove")(
      "names", po::value(&names), "attribute names to get")("prefix", po::value(&prefix), "queue name prefix")(
      "max", po::value(&max_results), "messages to receive (1..10) or move tasks to list (1..10)")(
      "wait", po::value<std::uint32_t>(), "seconds to wait for messages, 0..20")(
      "visibility", po::value<std::uint32_t>(), "visibility timeout in seconds")(
      "delay", po::value<std::uint32_t>(), "delay in seconds, 0..900")("delete", "delete received messages at once")(
      "group", po::value(&group), "MessageGroupId")("dedup-id", po::value(&dedup_id), "MessageDeduplicationId")(
      "trace-header", po::value(&trace_header), "AWSTraceHeader")(
      "message-attribute", po::value(&message_attribute_specs), "NAME=TYPE:VALUE message attribute")(
      "attempt-id", po::value(&attempt_id), "ReceiveRequestAttemptId (FIFO)")("account", po::value(&accounts),
                                                                              "account id a permission is for")(
      "action", po::value(&actions), "action a permission allows")("destination", po::value(&destination),
                                                                   "queue a move task moves to")(
      "rate", po::value<std::uint32_t>(), "messages a move task moves per second, 1..500")(
      "interval", po::value(&interval), "top: seconds between refreshes")(
      "count", po::value(&count), "top: refreshes before it ends (0: until interrupted)")(
      "command", po::value(&command), "")("args", po::value(&args), "");
  po::positional_options_description positional;
  positional.add("command", 1).add("args", -1);

  bool as_json = false;
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("version")) {
      out << "shmqctl " << kVersion << "\n";
      return 0;
    }
    if (vm.count("help") || command.empty()) {
      out << kUsage;
      return command.empty() && !vm.count("help") ? 2 : 0;
    }
    as_json = vm.count("json") > 0;
    if (vm.count("visibility")) visibility = vm["visibility"].as<std::uint32_t>();
    if (vm.count("delay")) delay = vm["delay"].as<std::uint32_t>();
    if (vm.count("wait")) wait_s = vm["wait"].as<std::uint32_t>();
    if (vm.count("rate")) rate = vm["rate"].as<std::uint32_t>();
    const bool delete_after = vm.count("delete") > 0;

    // Usage errors are found before the daemon is asked anything.
    static const std::map<std::string, std::pair<std::size_t, std::size_t>> kArity{
        {"create-queue", {1, 1}},
        {"delete-queue", {1, 1}},
        {"list-queues", {0, 0}},
        {"health", {0, 0}},
        {"get-attributes", {1, 1}},
        {"set-attributes", {1, 1}},
        {"purge", {1, 1}},
        {"stats", {0, 1}},
        {"top", {0, 0}},
        {"send", {1, 2}},
        {"receive", {1, 1}},
        {"peek", {1, 1}},
        {"delete", {2, 2}},
        {"change-visibility", {3, 3}},
        {"tag-queue", {1, 1}},
        {"untag-queue", {1, 1}},
        {"list-tags", {1, 1}},
        {"add-permission", {2, 2}},
        {"remove-permission", {2, 2}},
        {"list-dead-letter-source-queues", {1, 1}},
        {"start-move-task", {1, 1}},
        {"cancel-move-task", {1, 1}},
        {"list-move-tasks", {1, 1}},
    };
    const auto arity = kArity.find(command);
    if (arity == kArity.end()) throw Usage("unknown command '" + command + "'");
    if (args.size() < arity->second.first || args.size() > arity->second.second) {
      throw Usage("wrong number of arguments for " + command);
    }
    const Attributes attributes = parse_pairs(attribute_pairs, "attribute");
    const Tags tags = parse_pairs(tag_pairs, "tag");
    const MessageAttributes message_attributes = parse_message_attributes(message_attribute_specs);
    if (command == "set-attributes" && attributes.empty())
      throw Usage("set-attributes needs at least one -a KEY=VALUE");
    if (command == "tag-queue" && tags.empty()) throw Usage("tag-queue needs at least one -t KEY=VALUE");
    if (command == "untag-queue" && tag_keys.empty()) throw Usage("untag-queue needs at least one -k KEY");
    if (command == "add-permission" && (accounts.empty() || actions.empty())) {
      throw Usage("add-permission needs at least one --account and one --action");
    }
    std::uint32_t visibility_arg = 0;
    if (command == "change-visibility") {
      std::size_t used = 0;
      try {
        visibility_arg = static_cast<std::uint32_t>(std::stoul(args[2], &used));
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != args[2].size()) throw Usage("change-visibility: SECONDS must be a number");
      check_range("SECONDS", visibility_arg, 0, 43200, "VisibilityTimeout");
    }
    if (vm.count("max") && command == "peek") {
      if (max_results < 1 || max_results > 100)
        throw Failure("--max " + std::to_string(max_results) +
                      ": peek shows 1 to 100 messages (invalid_parameter_value)");
    } else if (vm.count("max")) {
      check_range("--max", max_results, 1, 10, command == "receive" ? "MaxNumberOfMessages" : "MaxResults");
    }
    check_range("--wait", wait_s, 0, 20, "WaitTimeSeconds");
    check_range("--visibility", visibility, 0, 43200, "VisibilityTimeout");
    check_range("--delay", delay, 0, 900, "DelaySeconds");
    check_range("--rate", rate, 1, 500, "MaxNumberOfMessagesPerSecond");
    Client client(Client::Options{ns});

    if (command == "health") {
      // Reached only when the daemon answers: else the Client above threw
      // daemon_unavailable, exit status 1.
      const DaemonHealth h = client.health();
      print(out, as_json,
            json{{"status", h.status},
                 {"version", h.version},
                 {"pid", h.pid},
                 {"uptime_seconds", h.uptime_seconds},
                 {"queues", h.queues},
                 {"refused_queues", h.refused_queues},
                 {"reaper_threads", h.reaper_threads}});
      if (h.status != "serving") return 1;  // draining before a stop (shmqd --stop-drain)
    } else if (command == "create-queue") {
      client.create_queue(args[0], attributes, std::nullopt, tags);
      print(out, as_json, json{{"created", args[0]}});
    } else if (command == "delete-queue") {
      client.delete_queue(args[0]);
      print(out, as_json, json{{"deleted", args[0]}});
    } else if (command == "list-queues") {
      const auto queues = client.list_queues(prefix);
      print(out, as_json, as_json ? json{{"queues", queues}} : json(queues));
    } else if (command == "get-attributes") {
      print(out, as_json,
            json(client.get_queue_attributes(args[0], names.empty() ? std::vector<std::string>{"All"} : names)));
    } else if (command == "set-attributes") {
      client.set_queue_attributes(args[0], attributes);
      print(out, as_json, json{{"updated", args[0]}});
    } else if (command == "purge") {
      print(out, as_json, json{{"purged", client.purge_queue(args[0])}});
    } else if (command == "stats" && !args.empty()) {
      print(out, as_json, stats_json(client.stats(args[0])));
    } else if (command == "stats") {
      const auto rows = all_stats(client);
      if (as_json) {
        json list = json::array();
        for (const auto& [name, s] : rows) {
          list.push_back(stats_json(s));
          list.back()["name"] = name;
        }
        out << json{{"Queues", list}}.dump() << "\n";
      } else {
        print_queue_table(out, rows, nullptr);
      }
    } else if (command == "top") {
      if (!(interval > 0 && interval <= 3600)) throw Usage("--interval: seconds, more than 0 and at most 3600");
      run_top(client, ns, out, as_json, interval, count);
    } else if (command == "tag-queue") {
      client.tag_queue(args[0], tags);
      print(out, as_json, json{{"tagged", args[0]}});
    } else if (command == "untag-queue") {
      client.untag_queue(args[0], tag_keys);
      print(out, as_json, json{{"untagged", args[0]}});
    } else if (command == "list-tags") {
      const Tags got = client.list_queue_tags(args[0]);
      print(out, as_json, as_json ? json{{"Tags", got}} : json(got));
    } else if (command == "add-permission") {
      client.add_permission(args[0], args[1], accounts, actions);
      print(out, as_json, json{{"added", args[1]}});
    } else if (command == "remove-permission") {
      client.remove_permission(args[0], args[1]);
      print(out, as_json, json{{"removed", args[1]}});
    } else if (command == "list-dead-letter-source-queues") {
      const auto queues = client.list_dead_letter_source_queues(args[0]);
      print(out, as_json, as_json ? json{{"queues", queues}} : json(queues));
    } else if (command == "start-move-task") {
      const std::string handle = client.start_message_move_task(
          queue_arn(client, args[0]), destination.empty() ? std::string{} : queue_arn(client, destination), rate);
      print(out, as_json, json{{"TaskHandle", handle}});
    } else if (command == "cancel-move-task") {
      print(out, as_json, json{{"ApproximateNumberOfMessagesMoved", client.cancel_message_move_task(args[0])}});
    } else if (command == "list-move-tasks") {
      json results = json::array();
      for (const MessageMoveTask& t : client.list_message_move_tasks(queue_arn(client, args[0]), max_results)) {
        results.push_back(move_task_json(t));
      }
      if (as_json) {
        out << json{{"Results", results}}.dump() << "\n";
      } else {
        print_records(out, results);
      }
    } else {
      Queue queue = client.open_queue(args[0]);
      if (command == "send") {
        std::string body = args.size() == 2 ? args[1] : std::string(std::istreambuf_iterator<char>(in), {});
        SendOptions send_options;
        send_options.delay_seconds = delay;
        send_options.group_id = group;
        send_options.deduplication_id = dedup_id;
        send_options.attributes = message_attributes;
        send_options.trace_header = trace_header;
        SendResult sent;
        check(queue.send(body, sent, send_options), "send");
        json result{{"MessageId", sent.message_id}};
        if (!sent.sequence_number.empty()) result["SequenceNumber"] = sent.sequence_number;
        print(out, as_json, result);
      } else if (command == "receive") {
        ReceiveOptions opts;
        opts.max_messages = max_results;
        opts.visibility_timeout = visibility;
        opts.receive_request_attempt_id = attempt_id;
        if (wait_s) opts.wait_time = std::chrono::seconds(*wait_s);  // else the queue's ReceiveMessageWaitTimeSeconds
        std::vector<Message> messages;
        check(queue.receive(messages, opts), "receive");
        json list = json::array();
        for (const Message& m : messages) {
          if (delete_after) check(queue.delete_message(m.receipt_handle), "delete");
          list.push_back(message_json(m));
        }
        if (as_json) {
          out << json{{"Messages", list}}.dump() << "\n";
        } else {
          print_records(out, list);
        }
      } else if (command == "peek") {
        std::vector<PeekedMessage> peeked;
        check(queue.peek(peeked, vm.count("max") ? max_results : 10), "peek");
        json list = json::array();
        for (const PeekedMessage& p : peeked) {
          list.push_back(peeked_json(p));
          if (!as_json) list.back()["Body"] = body_start(p.message.body);
        }
        if (as_json) {
          out << json{{"Messages", list}}.dump() << "\n";
        } else {
          print_records(out, list);
        }
      } else if (command == "delete") {
        check(queue.delete_message(args[1]), "delete");
        print(out, as_json, json{{"deleted", true}});
      } else {  // change-visibility
        check(queue.change_visibility(args[1], visibility_arg), "change-visibility");
        print(out, as_json, json{{"changed", true}});
      }
    }
    return 0;
  } catch (const Usage& e) {
    err << "shmqctl: " << e.what() << "\n\n" << kUsage;
    return 2;
  } catch (const po::error& e) {
    err << "shmqctl: " << e.what() << "\n\n" << kUsage;
    return 2;
  } catch (const std::system_error& e) {
    const std::string name = errc_name(e.code());
    err << "shmqctl: " << e.what() << (name.empty() ? "" : " (" + name + ")") << "\n";
    return 1;
  } catch (const Failure& e) {
    err << "shmqctl: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace shmq::ctl
