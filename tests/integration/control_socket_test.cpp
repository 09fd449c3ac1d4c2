// The control socket under misuse: requests too large for a packet, clients
// that reconnect, do not read their replies, hold connections the daemon
// refused, or open too many; and a daemon out of file descriptors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control_connection.hpp"
#include "control_protocol.hpp"
#include "queue_core.hpp"
#include "segment.hpp"
#include "sqs_http.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using ControlSocket = DaemonTest;
using nlohmann::json;

constexpr uid_t kNobody = 65534;

// A raw connection to a namespace's control socket, as any local program can
// open one: -1 if connect failed.
int connect_raw(const std::string& ns) {
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  socklen_t length = 0;
  const sockaddr_un addr = detail::control_address(ns, length);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool daemon_alive(const DaemonProcess& daemon) {
  return daemon.running() && ::waitpid(daemon.pid(), nullptr, WNOHANG) == 0;
}

// A slot of `queue` reserved by this process through the library's internals,
// as a send of a large message holds it while it copies the payload. Usable
// in forked children (no test assertions): check ok().
struct HeldReservation {
  HeldReservation(const std::string& ns, const std::string& queue) {
    if (detail::Segment::open(detail::Segment::shm_name(ns, queue), segment)) return;
    core.emplace(segment.base());
    const std::uint32_t size = 100;
    std::error_code error;
    (void)core->reserve(std::span(&size, 1), static_cast<std::uint32_t>(::getpid()), std::span(&slot, 1),
                        std::span(&error, 1));
  }
  bool ok() const { return core && slot.index != detail::kNil; }
  // Fills and commits it; the entry's error.
  std::error_code commit() {
    std::memset(slot.payload, 'r', 100);
    const std::uint32_t body = 100;
    detail::CommitRequest request;
    detail::CommitResult result;
    core->commit(std::span(&slot, 1), std::span(&body, 1), std::span(&request, 1), std::span(&result, 1),
                 detail::now());
    return result.error;
  }
  detail::Segment segment;
  std::optional<detail::QueueCore> core;
  detail::Reservation slot;
};

TEST_F(ControlSocket, ARequestTooLargeForAPacketIsRefusedAndTheConnectionServesOn) {
  const std::string prefix(300'000, 'a');
  EXPECT_EQ(thrown_by([&] { client_.list_queues(prefix); }), "invalid_parameter_value");
  client_.create_queue("q", {}, kSmallQueue);
  EXPECT_EQ(client_.list_queues(), std::vector<std::string>{"q"});
}

// The op is looked up first: an op the daemon does not know is answered so,
// whether or not the queue it names exists (and whatever "name" holds).
TEST_F(ControlSocket, AnUnknownOpIsAnsweredAsUnknownWhateverQueueItNames) {
  client_.create_queue("q", {}, kSmallQueue);
  detail::ControlConnection connection(ns());
  for (const json& request : {json{{"op", "frobnicate"}}, json{{"op", "frobnicate"}, {"name", "missing"}},
                              json{{"op", "frobnicate"}, {"name", "q"}}, json{{"op", "frobnicate"}, {"name", 5}}}) {
    try {
      connection.call(request);
      ADD_FAILURE() << "answered ok: " << request.dump();
    } catch (const std::system_error& e) {
      EXPECT_EQ(name_of(e.code()), "invalid_parameter_value") << request.dump() << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("unknown op 'frobnicate'"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(client_.list_queues(), std::vector<std::string>{"q"});
}

// In a child with one control connection, as the bridge has: holds a
// reservation across what made the library reconnect (a request too large
// for a packet) and an explicit reconnect. 0 if the daemon left the
// reservation alone and the commit succeeded; 1 setup failed; 2 the large
// request did not fail as it should; 3 the slot was reclaimed; 4 the commit
// failed.
int reconnect_while_holding(const std::string& ns) {
  detail::ControlConnection connection(ns);
  HeldReservation held(ns, "q");
  if (!held.ok()) return 1;
  const std::string big = thrown_by([&] {
    connection.call({{"op", "list_queues"}, {"prefix", std::string(300'000, 'a')}});
  });
  if (big != "invalid_parameter_value") return 2;
  // What the library does after an error on its connection: close it and
  // open another. The process has no connection for a moment, and is alive.
  connection.reconnect();
  // Two round trips: the daemon has handled the close by the second reply.
  json stats;
  for (int i = 0; i < 2; ++i) stats = connection.call({{"op", "stats"}, {"name", "q"}});
  if (stats.at("stats").at("writing").get<std::uint32_t>() != 1) return 3;
  return held.commit() ? 4 : 0;
}

TEST_F(ControlSocket, AProcessThatReconnectsWhileSendingKeepsItsReservation) {
  Queue q = make_queue("q");
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] { return reconnect_while_holding(queue_ns); });
  EXPECT_EQ(wait_child(child), 0) << "2 = the large request did not fail, 3 = reclaimed, 4 = commit failed";
  const auto got = receive_now(q);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, std::string(100, 'r'));
}

// In a child: reserves a slot, then closes its only control connection and
// lives on holding the slot until `go` (a pipe) says to die.
int disconnect_then_die(const std::string& ns, int ready, int go) {
  auto connection = std::make_unique<detail::ControlConnection>(ns);
  HeldReservation held(ns, "q");
  if (!held.ok()) return 1;
  connection.reset();
  if (::write(ready, "x", 1) != 1) return 2;
  char c;
  (void)::read(go, &c, 1);
  ::raise(SIGKILL);
  return 3;
}

TEST_F(ControlSocket, AProcessWithoutAConnectionKeepsItsSlotsUntilItExits) {
  Queue q = make_queue("q");
  int ready[2], go[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] { return disconnect_then_die(queue_ns, ready[1], go[0]); });
  ::close(ready[1]);
  ::close(go[0]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the child failed before disconnecting";
  // Two round trips: the daemon has handled the child's close by the second.
  for (int i = 0; i < 2; ++i) (void)client_.list_queues();
  EXPECT_EQ(client_.stats("q").counts.writing, 1u) << "reclaimed while the process was alive";
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  EXPECT_EQ(wait_child(child), 128 + SIGKILL);
  EXPECT_TRUE(eventually([&] { return client_.stats("q").counts.writing == 0; }, 10s))
      << "not reclaimed after the process exited";
  ::close(ready[0]);
  ::close(go[1]);
}

// --- The SQS bridge: it is a client inside shmqd ---------------------------

class BridgeControlSocket : public BridgeTest {
 protected:
  BridgeControlSocket() : BridgeTest({"--bridge-threads", "4"}) {}
};

// Big control requests made the bridge's connection fail and reconnect, and
// the daemon took its own process for dead and freed the slots of sends the
// bridge was copying: messages whose send had succeeded were lost, and the
// commits that followed wrote into freed memory.
TEST_F(BridgeControlSocket, OversizedRequestsGet400WhileSendsInFlightLoseNothing) {
  const int http = port();
  ASSERT_GT(http, 0);
  Client client(Client::Options{daemon_.ns()});
  client.create_queue("big", {{"MaximumMessageSize", "262144"}}, QueueCapacity{1024, 128ull << 20});
  const std::string url = "http://127.0.0.1:" + std::to_string(http) + "/000000000000/big";

  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::set<std::string> sent;  // bodies whose SendMessage returned 200
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t) {
    senders.emplace_back([&, t] {
      // Large bodies: copied outside the queue's lock, between a reserve and
      // a commit, which is the window a wrong reclaim hits.
      for (int i = 0; !stop.load() && i < 250; ++i) {
        const std::string head = "s" + std::to_string(t) + "-" + std::to_string(i) + ":";
        const std::string body = head + std::string(100'000 - head.size(), 'x');
        if (sqs_call(http, "SendMessage", {{"QueueUrl", url}, {"MessageBody", body}}).status == 200) {
          std::lock_guard lock(mutex);
          sent.insert(body);
        }
      }
    });
  }
  std::map<std::string, int> wrong;  // "<action> <status>" -> count
  const std::string big(300'000, 'p');
  for (int i = 0; i < 30 && daemon_alive(daemon_); ++i) {
    const HttpReply list = sqs_call(http, "ListQueues", {{"QueueNamePrefix", big}});
    if (list.status != 400 || list.body.find("InvalidParameterValue") == std::string::npos) {
      ++wrong["ListQueues " + std::to_string(list.status)];
    }
    // A KMS key id, which has no limit of its own before the control
    // request's (a Policy has: it never reaches the control socket).
    const HttpReply set =
        sqs_call(http, "SetQueueAttributes", {{"QueueUrl", url}, {"Attributes", {{"KmsMasterKeyId", big}}}});
    if (set.status != 400 || (set.body.find("InvalidParameterValue") == std::string::npos &&
                              set.body.find("InvalidAttributeValue") == std::string::npos)) {
      ++wrong["SetQueueAttributes " + std::to_string(set.status)];
    }
  }
  stop = true;
  for (std::thread& t : senders) t.join();
  EXPECT_TRUE(wrong.empty()) << "not a 400: " << json(wrong).dump();
  ASSERT_TRUE(daemon_alive(daemon_)) << "shmqd died";
  EXPECT_FALSE(sent.empty());

  Queue q = client.open_queue("big");
  std::set<std::string> received;
  std::vector<Message> got;
  while (!q.receive(got, {.max_messages = 10, .wait_time = 0ms}) && !got.empty()) {
    for (const Message& m : got) {
      received.insert(m.body);
      (void)q.delete_message(m.receipt_handle);
    }
  }
  std::size_t lost = 0;
  for (const std::string& body : sent) lost += received.count(body) == 0;
  EXPECT_EQ(lost, 0u) << "of " << sent.size() << " messages whose send returned 200";
  for (const std::string& body : received) {
    const auto colon = body.find(':');
    EXPECT_TRUE(body.size() == 100'000 && colon != std::string::npos &&
                body.find_first_not_of('x', colon + 1) == std::string::npos)
        << "a corrupt message: " << body.substr(0, 40);
  }
  EXPECT_EQ(client.stats("big").counts.writing, 0u);
}

// --- Clients that misbehave --------------------------------------------------

TEST_F(ControlSocket, AClientThatDoesNotReadItsRepliesIsDroppedAndOthersAreServed) {
  Queue q = make_queue("q", {}, QueueCapacity{16, 2ull << 20});
  // The flooder asks for the queue's attributes over and over and never reads.
  const int flooder = connect_raw(ns());
  ASSERT_GE(flooder, 0);
  std::atomic<bool> dropped{false};
  std::thread flood([&] {
    const std::string request = json{{"op", "get_queue_attributes"}, {"name", "q"}}.dump();
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::send(flooder, request.data(), request.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        if (errno == EAGAIN) {
          std::this_thread::sleep_for(1ms);
          continue;
        }
        dropped = true;  // EPIPE or ECONNRESET: the daemon closed it
        return;
      }
    }
  });
  // Meanwhile: shmqctl, this client, and dead-client reclaim all work.
  auto others = std::async(std::launch::async, [&] {
    std::string problems;
    const ProcessResult listed = shmqctl(ns(), {"list-queues"});
    if (listed.exit_code != 0 || listed.out.find('q') == std::string::npos) problems += "shmqctl failed; ";
    if (client_.list_queues() != std::vector<std::string>{"q"}) problems += "list_queues failed; ";
    const std::string queue_ns = ns();
    const pid_t child = fork_child([&] {
      detail::ControlConnection connection(queue_ns);  // the daemon now watches this pid
      HeldReservation held(queue_ns, "q");
      if (!held.ok()) return 1;
      ::raise(SIGKILL);
      return 0;
    });
    if (wait_child(child) != 128 + SIGKILL) problems += "the child did not die as planned; ";
    if (!eventually([&] { return client_.stats("q").counts.writing == 0; }, 10s)) {
      problems += "the killed sender's slot was not reclaimed; ";
    }
    return problems;
  });
  if (others.wait_for(30s) != std::future_status::ready) {
    ADD_FAILURE() << "the daemon stopped answering other clients";
    daemon_.kill_hard();  // unblocks the calls above
  } else {
    EXPECT_EQ(others.get(), "");
  }
  flood.join();
  ::close(flooder);
  if (daemon_alive(daemon_)) {
    EXPECT_TRUE(dropped) << "the flooder was never disconnected";
  }
}

// What a child running as another user saw of the daemon's refusal: 0 the
// reply and then the end of the connection, without sending anything, on
// each of `count` connections held open; 1 no reply within 10 s; 2 a reply
// but the connection stayed open; 3 another reply; 4 setuid failed.
int hold_refused_connections(const std::string& ns, int count) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 4;
  std::vector<int> held;
  for (int i = 0; i < count; ++i) {
    const int fd = connect_raw(ns);
    if (fd < 0) return 1;
    held.push_back(fd);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) return 1;
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0 || std::string(buffer, static_cast<std::size_t>(n)).find("permission_denied") == std::string::npos) {
      return 3;
    }
    p.revents = 0;
    if (::poll(&p, 1, 10'000) != 1 || ::recv(fd, buffer, sizeof(buffer), 0) != 0) return 2;
  }
  return 0;
}

TEST_F(ControlSocket, ARefusedConnectionIsClosedAtOnce) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  const std::string queue_ns = ns();
  const pid_t child = fork_child([&] { return hold_refused_connections(queue_ns, 300); });
  EXPECT_EQ(wait_child(child), 0) << "1 = no reply, 2 = left open, 3 = other reply, 4 = setuid failed";
  EXPECT_EQ(client_.list_queues(), std::vector<std::string>{});
}

TEST(ControlSocketLimits, ConnectionsAboveTheLimitOfAUserAreRefused) {
  DaemonProcess daemon(unique_namespace(), {"--control-max-connections-per-uid", "4"});
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<Client>(Client::Options{daemon.ns()}));
  EXPECT_EQ(thrown_by([&] { Client extra(Client::Options{daemon.ns()}); }), "over_limit");
  clients.pop_back();
  // A closed connection makes room, once the daemon has seen it close.
  EXPECT_TRUE(eventually([&] { return thrown_by([&] { Client again(Client::Options{daemon.ns()}); }) == "ok"; }));
  EXPECT_EQ(clients.front()->list_queues(), std::vector<std::string>{});
}

// CPU seconds a process has used (user + system).
double cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST(ControlSocketLimits, OutOfDescriptorsTheDaemonWaitsInsteadOfSpinning) {
  const std::string ns = unique_namespace();
  // A daemon with 32 descriptors: soft and hard, so that raising the soft
  // limit at start-up changes nothing.
  const pid_t daemon = ::fork();
  if (daemon == 0) {
    const rlimit limit{32, 32};
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::execl(shmqd_path().c_str(), shmqd_path().c_str(), "--namespace", ns.c_str(), "--log-level", "error",
            "--bridge-listen", "off", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::unique_ptr<Client> client;
  ASSERT_TRUE(eventually([&] {
    try {
      client = std::make_unique<Client>(Client::Options{ns});
      return true;
    } catch (const std::system_error&) {
      return false;
    }
  })) << "shmqd did not start";
  // More connections than the daemon has descriptors for: the rest wait in
  // the listen backlog, and the listen socket stays readable.
  std::vector<int> raw;
  for (int i = 0; i < 60; ++i) {
    const int fd = connect_raw(ns);
    if (fd >= 0) raw.push_back(fd);
  }
  std::this_thread::sleep_for(500ms);
  const double before = cpu_seconds(daemon);
  std::this_thread::sleep_for(3s);
  const double used = cpu_seconds(daemon) - before;
  // A spinning loop takes a whole core (about 3 s here); a waiting one next to nothing.
  EXPECT_LT(used, 1.5) << "CPU seconds in 3 s";
  // The connected client is still served.
  EXPECT_EQ(thrown_by([&] { client->list_queues(); }), "ok");
  for (int fd : raw) ::close(fd);
  client.reset();
  ::kill(daemon, SIGTERM);
  EXPECT_EQ(wait_child(daemon), 0);
  DaemonProcess::remove_segments(ns);
}

}  // namespace
}  // namespace shmq::test
