#include "shmqctl.hpp"

#include <boost/program_options.hpp>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shmq/shmq.hpp"

namespace shmq::ctl {

namespace po = boost::program_options;
using nlohmann::json;

namespace {

constexpr const char* kUsage = R"(usage: shmqctl [--namespace NS] [--json] COMMAND [ARGS]

commands:
  create-queue NAME [-a KEY=VALUE]...      create a queue (attributes as SQS names them)
  delete-queue NAME                        delete a queue and its messages
  list-queues [--prefix P]                 list queues
  get-attributes NAME [--names N]...       show queue attributes (default: All)
  set-attributes NAME -a KEY=VALUE...      change queue attributes
  purge NAME                               delete every message of a queue
  send NAME [BODY] [--delay S]             send BODY (or standard input)
  receive NAME [--max N] [--wait S] [--visibility S] [--delete]
                                           receive up to N messages
  delete NAME RECEIPT_HANDLE               delete a received message
  change-visibility NAME RECEIPT_HANDLE S  make a message visible again after S seconds
  stats NAME                               slots, memory, counters of a queue
)";

struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Attributes parse_attributes(const std::vector<std::string>& pairs) {
  Attributes out;
  for (const std::string& pair : pairs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) throw Usage("attribute '" + pair + "': write KEY=VALUE");
    out[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return out;
}

void check(const std::error_code& ec, const std::string& what) {
  if (ec) throw Failure(what + ": " + ec.message() + " (" + errc_name(ec) + ")");
}

json message_json(const Message& m) {
  return {{"MessageId", m.message_id},
          {"ReceiptHandle", m.receipt_handle},
          {"Body", m.body},
          {"ApproximateReceiveCount", m.receive_count},
          {"SentTimestamp", m.sent_timestamp_ms},
          {"ApproximateFirstReceiveTimestamp", m.first_receive_timestamp_ms}};
}

void print(std::ostream& out, bool as_json, const json& value) {
  if (as_json) {
    out << value.dump() << "\n";
    return;
  }
  if (value.is_object()) {
    for (auto& [key, item] : value.items())
      out << key << ": " << (item.is_string() ? item.get<std::string>() : item.dump()) << "\n";
  } else if (value.is_array()) {
    for (auto& item : value) out << (item.is_string() ? item.get<std::string>() : item.dump()) << "\n";
  }
}

}  // namespace

int run(int argc, const char* const argv[], std::istream& in, std::ostream& out, std::ostream& err) {
  std::string ns = "default";
  std::string command;
  std::vector<std::string> args;
  std::vector<std::string> attribute_pairs;
  std::vector<std::string> names;
  std::string prefix;
  std::uint32_t max_messages = 1;
  std::optional<std::uint32_t> wait_s;
  std::optional<std::uint32_t> visibility;
  std::optional<std::uint32_t> delay;

  po::options_description options("options");
  options.add_options()("help,h", "print this help")(
      "namespace,n", po::value(&ns), "the daemon's namespace (default: default)")("json", "print JSON for scripts")(
      "attribute,a", po::value(&attribute_pairs), "KEY=VALUE queue attribute")(
      "names", po::value(&names), "attribute names to get")("prefix", po::value(&prefix), "queue name prefix")(
      "max", po::value(&max_messages), "messages to receive, 1..10")("wait", po::value<std::uint32_t>(),
                                                                     "seconds to wait for messages, 0..20")(
      "visibility", po::value<std::uint32_t>(), "visibility timeout in seconds")(
      "delay", po::value<std::uint32_t>(), "delay in seconds, 0..900")("delete", "delete received messages at once")(
      "command", po::value(&command), "")("args", po::value(&args), "");
  po::positional_options_description positional;
  positional.add("command", 1).add("args", -1);

  bool as_json = false;
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help") || command.empty()) {
      out << kUsage;
      return command.empty() && !vm.count("help") ? 2 : 0;
    }
    as_json = vm.count("json") > 0;
    if (vm.count("visibility")) visibility = vm["visibility"].as<std::uint32_t>();
    if (vm.count("delay")) delay = vm["delay"].as<std::uint32_t>();
    if (vm.count("wait")) wait_s = vm["wait"].as<std::uint32_t>();
    const bool delete_after = vm.count("delete") > 0;

    // Usage errors are found before the daemon is asked anything.
    static const std::map<std::string, std::pair<std::size_t, std::size_t>> kArity{
        {"create-queue", {1, 1}},
        {"delete-queue", {1, 1}},
        {"list-queues", {0, 0}},
        {"get-attributes", {1, 1}},
        {"set-attributes", {1, 1}},
        {"purge", {1, 1}},
        {"stats", {1, 1}},
        {"send", {1, 2}},
        {"receive", {1, 1}},
        {"delete", {2, 2}},
        {"change-visibility", {3, 3}},
    };
    const auto arity = kArity.find(command);
    if (arity == kArity.end()) throw Usage("unknown command '" + command + "'");
    if (args.size() < arity->second.first || args.size() > arity->second.second) {
      throw Usage("wrong number of arguments for " + command);
    }
    const Attributes attributes = parse_attributes(attribute_pairs);
    if (command == "set-attributes" && attributes.empty())
      throw Usage("set-attributes needs at least one -a KEY=VALUE");
    std::uint32_t visibility_arg = 0;
    if (command == "change-visibility") {
      std::size_t used = 0;
      try {
        visibility_arg = static_cast<std::uint32_t>(std::stoul(args[2], &used));
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != args[2].size()) throw Usage("change-visibility: SECONDS must be a number");
    }
    Client client(Client::Options{ns});

    if (command == "create-queue") {
      client.create_queue(args[0], attributes);
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
    } else if (command == "stats") {
      const QueueStats s = client.stats(args[0]);
      print(out, as_json,
            json{{"segment_bytes", s.segment_bytes},
                 {"max_messages", s.max_messages},
                 {"slots_ever_used", s.slots_ever_used},
                 {"arena_bytes", s.arena_bytes},
                 {"arena_free_bytes", s.arena_free_bytes},
                 {"visible", s.counts.visible},
                 {"in_flight", s.counts.in_flight},
                 {"delayed", s.counts.delayed},
                 {"writing", s.counts.writing},
                 {"sent_total", s.sent_total},
                 {"received_total", s.received_total},
                 {"deleted_total", s.deleted_total},
                 {"recoveries", s.recoveries}});
    } else {
      Queue queue = client.open_queue(args[0]);
      if (command == "send") {
        std::string body = args.size() == 2 ? args[1] : std::string(std::istreambuf_iterator<char>(in), {});
        SendResult sent;
        check(queue.send(body, sent, SendOptions{delay}), "send");
        print(out, as_json, json{{"MessageId", sent.message_id}});
      } else if (command == "receive") {
        ReceiveOptions opts;
        opts.max_messages = max_messages;
        opts.visibility_timeout = visibility;
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
          for (auto& m : list) {
            print(out, false, m);
            out << "\n";
          }
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
