// The chaos test: sender and receiver processes on one queue, killed with
// SIGKILL at random moments and restarted, and the daemon killed with SIGKILL
// and restarted under that load. Then everything left is drained and every
// message whose send returned success must have been received (at least once).
// Also checked: no body was torn, no worker failed, the drain finished (no
// deadlock), and the daemon reclaimed every slot that killed senders held.
//
// Short form (make test): shmq-chaos --seconds 8. Long form: --seconds 600.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon_process.hpp"
#include "shmq/shmq.hpp"

namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

struct Options {
  double seconds = 8;
  int senders = 2;
  int receivers = 2;
  int kill_min_ms = 5;
  int kill_max_ms = 60;
  int daemon_kills = 2;
  std::uint64_t seed = 0;
  std::string worker;
  bool keep_logs = false;
  bool fifo = false;
};

struct Worker {
  std::string mode;
  pid_t pid = -1;
  int incarnation = 0;
};

class Chaos {
 public:
  explicit Chaos(Options options)
      : o_(std::move(options)),
        ns_("chaos" + std::to_string(::getpid())),
        rng_(o_.seed ? o_.seed : std::random_device{}()) {
    dir_ = std::filesystem::temp_directory_path() / ("shmq-chaos-" + ns_);
    std::filesystem::create_directories(dir_);
  }

  int run() {
    shmq::test::DaemonProcess daemon(ns_);
    {
      shmq::Client admin(shmq::Client::Options{ns_});
      shmq::Attributes attributes{{"VisibilityTimeout", "1"}};
      if (o_.fifo) attributes["FifoQueue"] = "true";
      admin.create_queue(queue_, attributes, shmq::QueueCapacity{4096, 64ull << 20});
    }
    for (int i = 0; i < o_.senders; ++i) workers_.push_back({"send"});
    for (int i = 0; i < o_.receivers; ++i) workers_.push_back({"receive"});
    for (std::size_t i = 0; i < workers_.size(); ++i) spawn(i);

    const auto start = Clock::now();
    const auto end = start + std::chrono::milliseconds(static_cast<long>(o_.seconds * 1000));
    std::vector<Clock::time_point> daemon_kill_at;
    for (int k = 1; k <= o_.daemon_kills; ++k)
      daemon_kill_at.push_back(start + (end - start) * k / (o_.daemon_kills + 1));

    while (Clock::now() < end && failures_.empty()) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(o_.kill_min_ms + rng_() % (o_.kill_max_ms - o_.kill_min_ms + 1)));
      check_exits();
      const std::size_t victim = rng_() % workers_.size();
      ::kill(workers_[victim].pid, SIGKILL);
      ::waitpid(workers_[victim].pid, nullptr, 0);
      ++kills_;
      spawn(victim);
      if (!daemon_kill_at.empty() && Clock::now() >= daemon_kill_at.front()) {
        daemon_kill_at.erase(daemon_kill_at.begin());
        daemon.kill_hard();
        ++daemon_kills_;
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng_() % 200));  // load goes on meanwhile
        daemon.start();
      }
    }
    check_exits();
    for (Worker& w : workers_) {
      ::kill(w.pid, SIGKILL);
      ::waitpid(w.pid, nullptr, 0);
    }
    const double ran = std::chrono::duration<double>(Clock::now() - start).count();

    std::unordered_map<std::string, int> delivered;
    drain(delivered);
    wait_reclaimed();
    round_trip();
    return report(ran, delivered);
  }

 private:
  void spawn(std::size_t i) {
    Worker& w = workers_[i];
    const std::string log =
        (dir_ / (w.mode + "-" + std::to_string(i) + "-" + std::to_string(w.incarnation++) + ".log")).string();
    const std::string seed = std::to_string(rng_());
    w.pid = ::fork();
    if (w.pid == 0) {
      ::execl(o_.worker.c_str(), o_.worker.c_str(), w.mode.c_str(), ns_.c_str(), queue_.c_str(), log.c_str(),
              seed.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }

  // A worker that exits by itself failed: they only stop when killed.
  void check_exits() {
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      int status = 0;
      if (::waitpid(workers_[i].pid, &status, WNOHANG) == workers_[i].pid) {
        failures_.push_back(workers_[i].mode + " worker exited with " +
                            (WIFEXITED(status) ? "code " + std::to_string(WEXITSTATUS(status))
                                               : "signal " + std::to_string(WTERMSIG(status))));
        spawn(i);
      }
    }
  }

  void drain(std::unordered_map<std::string, int>& delivered) {
    shmq::Client client(shmq::Client::Options{ns_});
    shmq::Queue queue = client.open_queue(queue_);
    shmq::ReceiveOptions options;
    options.max_messages = 10;
    options.visibility_timeout = 60;
    options.wait_time = std::chrono::milliseconds(1500);  // longer than the 1 s visibility timeout
    std::vector<shmq::Message> messages;
    const auto give_up = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < give_up) {
      if (auto ec = queue.receive(messages, options)) {
        failures_.push_back("drain receive: " + ec.message());
        return;
      }
      for (const auto& m : messages) {
        const std::string key = m.body.substr(0, m.body.find('|'));
        ++delivered[key];
        ++drained_;
        if (auto ec = queue.delete_message(m.receipt_handle)) failures_.push_back("drain delete: " + ec.message());
      }
      const auto c = queue.counts();
      if (messages.empty() && c.visible + c.in_flight + c.delayed == 0) return;
    }
    failures_.push_back("drain did not finish within 60 s");
  }

  // After all that, the queue must still work as new.
  void round_trip() {
    shmq::Client client(shmq::Client::Options{ns_});
    shmq::Queue queue = client.open_queue(queue_);
    shmq::SendResult sent;
    std::vector<shmq::Message> got;
    shmq::SendOptions options;
    if (o_.fifo) {
      options.group_id = "after";
      options.deduplication_id = "after";
    }
    if (auto ec = queue.send("after the storm", sent, options)) {
      failures_.push_back("send after chaos: " + ec.message());
    } else if (auto ec2 = queue.receive(got, {.wait_time = std::chrono::seconds(5)});
               ec2 || got.size() != 1 || got[0].body != "after the storm") {
      failures_.push_back("receive after chaos did not return the message just sent");
    } else if (auto ec3 = queue.delete_message(got[0].receipt_handle)) {
      failures_.push_back("delete after chaos: " + ec3.message());
    }
  }

  void wait_reclaimed() {
    shmq::Client client(shmq::Client::Options{ns_});
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < give_up) {
      stats_ = client.stats(queue_);
      if (stats_.counts.writing == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    failures_.push_back(std::to_string(stats_.counts.writing) + " slots still reserved by dead senders");
  }

  int report(double ran, std::unordered_map<std::string, int>& delivered) {
    std::unordered_set<std::string> sent;
    std::uint64_t deliveries = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      std::ifstream in(entry.path());
      std::string line;
      while (std::getline(in, line)) {
        if (in.eof()) break;  // a line cut short by SIGKILL has no newline
        if (line.size() < 3) continue;
        if (line[0] == 'S') sent.insert(line.substr(2));
        if (line[0] == 'R') {
          ++delivered[line.substr(2)];
          ++deliveries;
        }
      }
    }
    deliveries += drained_;
    std::uint64_t lost = 0, duplicates = 0, unlogged = 0;
    for (const std::string& key : sent) {
      if (!delivered.count(key)) ++lost;
    }
    for (const auto& [key, n] : delivered) {
      duplicates += static_cast<std::uint64_t>(n - 1);
      if (!sent.count(key)) ++unlogged;  // sent, but the sender was killed before logging it
    }
    std::printf(
        "chaos: %.1f s, %llu worker kills, %llu daemon kills, %zu sends confirmed, %llu deliveries "
        "(%llu in the final drain), %zu distinct received, %llu duplicates, %llu sent but killed before logging, "
        "%llu lock-owner recoveries, lost %llu\n",
        ran, static_cast<unsigned long long>(kills_), static_cast<unsigned long long>(daemon_kills_), sent.size(),
        static_cast<unsigned long long>(deliveries), static_cast<unsigned long long>(drained_), delivered.size(),
        static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(unlogged),
        static_cast<unsigned long long>(stats_.recoveries), static_cast<unsigned long long>(lost));
    if (lost > 0) failures_.push_back(std::to_string(lost) + " messages lost");
    if (sent.size() < 100)
      failures_.push_back("too little traffic to mean anything (" + std::to_string(sent.size()) + " sends)");
    for (const auto& f : failures_) std::printf("FAIL: %s\n", f.c_str());
    if (failures_.empty() && !o_.keep_logs) std::filesystem::remove_all(dir_);
    if (!failures_.empty()) std::printf("logs kept in %s\n", dir_.c_str());
    return failures_.empty() ? 0 : 1;
  }

  Options o_;
  std::string ns_;
  std::string queue_ = o_.fifo ? "chaos.fifo" : "chaos";
  std::mt19937_64 rng_;
  std::filesystem::path dir_;
  std::vector<Worker> workers_;
  std::vector<std::string> failures_;
  std::uint64_t kills_ = 0;
  std::uint64_t daemon_kills_ = 0;
  std::uint64_t drained_ = 0;
  shmq::QueueStats stats_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  po::options_description desc("shmq-chaos: kill -9 senders, receivers and the daemon; lose nothing");
  desc.add_options()("help,h", "print this help")("seconds", po::value(&o.seconds)->default_value(o.seconds),
                                                  "how long to keep killing")(
      "senders", po::value(&o.senders)->default_value(o.senders), "sender processes")(
      "receivers", po::value(&o.receivers)->default_value(o.receivers), "receiver processes")(
      "kill-min-ms", po::value(&o.kill_min_ms)->default_value(o.kill_min_ms), "shortest pause between kills")(
      "kill-max-ms", po::value(&o.kill_max_ms)->default_value(o.kill_max_ms), "longest pause between kills")(
      "daemon-kills", po::value(&o.daemon_kills)->default_value(o.daemon_kills), "SIGKILLs of shmqd, evenly spread")(
      "seed", po::value(&o.seed), "random seed (default: random)")(
      "worker", po::value(&o.worker)->default_value(SHMQ_CHAOS_WORKER), "path of shmq-chaos-worker")(
      "keep-logs", "keep the workers' logs")(
      "fifo", "use a FIFO queue: messages in 8 groups, each with its own deduplication id");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shmq-chaos: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  o.keep_logs = vm.count("keep-logs") > 0;
  o.fifo = vm.count("fifo") > 0;
  if (o.senders < 1 || o.receivers < 1 || o.kill_min_ms < 1 || o.kill_max_ms < o.kill_min_ms) {
    std::cerr << "shmq-chaos: need a sender, a receiver, and 1 <= kill-min-ms <= kill-max-ms\n";
    return 2;
  }
  try {
    return Chaos(o).run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-chaos: %s\n", e.what());
    return 1;
  }
}
