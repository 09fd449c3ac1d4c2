// The remote backend as a program chooses and meets it: SHMQ_ENDPOINT, the
// credential chain, refused credentials, an endpoint that does not answer,
// and calls of one client that run at once. The library's behaviours through
// it are the integration suites' remote runs (CMakeLists.txt).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <string>
#include <vector>

#include "sqs_http.hpp"
#include "test_util.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

// Sets an environment variable for the test's life, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The bridge's count of requests for this action and status code, from
// its Prometheus /metrics.
std::uint64_t requests_counted(int port, const std::string& action, int code) {
  const HttpReply reply = http_get(port, "/metrics");
  const std::regex line("shmq_bridge_requests_total\\{action=\"" + action + "\",code=\"" + std::to_string(code) +
                        "\"\\} ([0-9]+)");
  std::smatch m;
  return std::regex_search(reply.body, m, line) ? std::stoull(m[1].str()) : 0;
}

class RemoteEndpoint : public BridgeTest {
 protected:
  RemoteEndpoint() : BridgeTest({"--auth", std::string(kTestAccessKey) + ":" + kTestSecretKey}) {}

  Endpoint endpoint(const std::string& secret = kTestSecretKey) {
    Endpoint e;
    e.url = "http://127.0.0.1:" + std::to_string(port());
    e.access_key_id = kTestAccessKey;
    e.secret_access_key = secret;
    return e;
  }
  Client local() { return Client(Client::Options{daemon_.ns()}); }
};

TEST_F(RemoteEndpoint, ShmqEndpointAndTheCredentialChainChooseTheBackend) {
  const ScopedEnv endpoint("SHMQ_ENDPOINT", "http://127.0.0.1:" + std::to_string(port()));
  const ScopedEnv key("AWS_ACCESS_KEY_ID", kTestAccessKey);
  const ScopedEnv secret("AWS_SECRET_ACCESS_KEY", kTestSecretKey);
  Client configured;  // as a program that is not told where its queues are
  ASSERT_TRUE(configured.remote());
  EXPECT_EQ(configured.endpoint_url(), "http://127.0.0.1:" + std::to_string(port()));
  EXPECT_EQ(configured.ns(), "");
  configured.create_queue("jobs");
  Queue remote = configured.open_queue("jobs");
  EXPECT_TRUE(remote.remote());
  SendResult sent;
  ASSERT_EQ(name_of(remote.send("over http", sent)), "ok");

  // The same queue through shared memory: one queue, two ways in.
  Client shm = local();
  EXPECT_FALSE(shm.remote());
  Queue mapped = shm.open_queue("jobs");
  std::vector<Message> got;
  ASSERT_EQ(name_of(mapped.receive(got, {.max_messages = 10, .wait_time = 0ms})), "ok");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "over http");
  EXPECT_EQ(got[0].message_id, sent.message_id);
  EXPECT_EQ(got[0].sender_id, kTestAccessKey);
}

TEST_F(RemoteEndpoint, TheQuickstartProgramRunsUnchangedAgainstAnEndpoint) {
  // The README's library quick start, built as it is: shared memory of
  // namespace "default" unless SHMQ_ENDPOINT says otherwise.
  const std::string quickstart = std::filesystem::path(shmqd_path()).parent_path() / "shmq-quickstart";
  const ScopedEnv endpoint("SHMQ_ENDPOINT", "http://127.0.0.1:" + std::to_string(port()));
  const ScopedEnv key("AWS_ACCESS_KEY_ID", kTestAccessKey);
  const ScopedEnv secret("AWS_SECRET_ACCESS_KEY", kTestSecretKey);
  const ProcessResult run = run_process({quickstart});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find(": resize image 42"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("order sent as number 0"), std::string::npos) << run.out;
  // Its queues are this daemon's: it went over HTTP to the bridge.
  Client shm = local();
  std::vector<std::string> queues = shm.list_queues();
  std::sort(queues.begin(), queues.end());
  EXPECT_EQ(queues, (std::vector<std::string>{"jobs", "orders.fifo"}));
  EXPECT_EQ(shm.get_queue_attributes("orders.fifo", {"ApproximateNumberOfMessages"}).at("ApproximateNumberOfMessages"),
            "1");
}

TEST_F(RemoteEndpoint, AProfileInTheSharedCredentialsFileSignsTheRequests) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("shmq-creds-" + daemon_.ns());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "credentials") << "[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n"
                                     << "[ci]\naws_access_key_id = " << kTestAccessKey
                                     << "\naws_secret_access_key = " << kTestSecretKey << "\n";
  const ScopedEnv file("AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").string());
  const ScopedEnv config("AWS_CONFIG_FILE", (dir / "config").string());
  const ScopedEnv no_key("AWS_ACCESS_KEY_ID", "");
  Endpoint e;
  e.url = "http://127.0.0.1:" + std::to_string(port());
  e.profile = "ci";
  Client client(e);
  EXPECT_NO_THROW(client.create_queue("q"));
  e.profile = "default";
  Client wrong(e);
  EXPECT_EQ(thrown_by([&] { wrong.list_queues(); }), "permission_denied");
  std::filesystem::remove_all(dir);
}

TEST_F(RemoteEndpoint, AWrongSecretIsRefusedOnceWithSqsWordsAndNotRetried) {
  Client client(endpoint("not-the-secret"));
  std::string what;
  try {
    client.create_queue("q");
  } catch (const std::system_error& e) {
    EXPECT_EQ(name_of(e.code()), "permission_denied");
    what = e.what();
  }
  EXPECT_NE(what.find("SignatureDoesNotMatch"), std::string::npos) << what;
  EXPECT_EQ(requests_counted(port(), "CreateQueue", 403), 1u) << "a refused signature is not worth another try";
  EXPECT_TRUE(local().list_queues().empty());
}

TEST_F(RemoteEndpoint, AnEndpointThatDoesNotAnswerIsDaemonUnavailableAfterItsAttempts) {
  // A port nobody listens on: the daemon's, once it is stopped.
  Endpoint e = endpoint();
  daemon_.stop();
  e.max_attempts = 3;
  e.retry_base = 20ms;
  Client client(e);
  const auto start = std::chrono::steady_clock::now();
  std::string what;
  try {
    client.list_queues();
  } catch (const std::system_error& error) {
    EXPECT_EQ(name_of(error.code()), "daemon_unavailable");
    what = error.what();
  }
  EXPECT_NE(what.find("connect"), std::string::npos) << what;
  EXPECT_NE(what.find(e.url.substr(7)), std::string::npos) << what << " names no endpoint";
  EXPECT_LT(seconds_since(start), 5.0);
}

TEST_F(RemoteEndpoint, ABadUrlIsRefusedWhenTheClientIsMade) {
  for (const char* url :
       {"ftp://host/", "http://", "http://host:99999", "http://user@host/", "http://host/?q", "http://host/a%20b"}) {
    Endpoint e;
    e.url = url;
    EXPECT_EQ(thrown_by([&] { Client client(e); }), "invalid_parameter_value") << url;
  }
}

TEST_F(RemoteEndpoint, ALongPollDoesNotHoldUpTheClientsOtherCalls) {
  Client client(endpoint());
  client.create_queue("q");
  Queue q = client.open_queue("q");
  auto poll = std::async(std::launch::async, [&q] {
    std::vector<Message> got;
    const auto ec = q.receive(got, {.max_messages = 1, .wait_time = 5s});
    return std::make_pair(name_of(ec), got.size());
  });
  std::this_thread::sleep_for(200ms);  // the poll is waiting on its connection
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(client.list_queues(), std::vector<std::string>{"q"});
  SendResult sent;
  EXPECT_EQ(name_of(q.send("ends the poll", sent)), "ok");
  EXPECT_LT(seconds_since(start), 1.0) << "calls waited for the long poll's connection";
  const auto [code, received] = poll.get();
  EXPECT_EQ(code, "ok");
  EXPECT_EQ(received, 1u);
  EXPECT_LT(seconds_since(start), 3.0) << "the send did not end the long poll";
}

TEST_F(RemoteEndpoint, WhatOnlySharedMemoryHasIsAClearErrorRemotely) {
  Client client(endpoint());
  client.create_queue("q");
  Queue q = client.open_queue("q");
  std::vector<PeekedMessage> peeked;
  EXPECT_EQ(name_of(q.peek(peeked)), "unsupported_operation");
  EXPECT_EQ(thrown_by([&] { client.stats("q"); }), "unsupported_operation");
  EXPECT_TRUE(q.might_have_messages());
  const DaemonHealth health = client.health();
  EXPECT_EQ(health.status, "serving");
}

}  // namespace
}  // namespace shmq::test
