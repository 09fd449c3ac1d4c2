// shmq-bench as a user runs it: the real program, short runs of the shmq and
// spsc transports, both workloads, spin and block, checked for what the user
// reads (exit status, JSON figures, the chart, the messages on bad flags).
// No timing is asserted: only that the figures are there and consistent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon_process.hpp"

namespace {

using nlohmann::json;
using shmq::test::ProcessResult;
using shmq::test::run_process;

ProcessResult run_bench(std::vector<std::string> args) {
  args.insert(args.begin(), SHMQ_TEST_BENCH);
  return run_process(args);
}

// Runs with --json; expects exit status 0 and one JSON object on stdout.
json run_json(std::vector<std::string> args) {
  args.push_back("--json");
  const ProcessResult r = run_bench(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

const json& result_of(const json& report, const std::string& transport) {
  for (const json& r : report.at("results")) {
    if (r.at("transport") == transport) return r;
  }
  throw std::runtime_error("no result for " + transport);
}

void expect_latency(const json& r) {
  ASSERT_EQ(r.at("status"), "ok") << r.at("reason");
  const double p50 = r.at("p50_ns"), p90 = r.at("p90_ns"), p99 = r.at("p99_ns"), p999 = r.at("p999_ns"),
               max = r.at("max_ns");
  EXPECT_GT(p50, 0);
  EXPECT_LE(p50, p90);
  EXPECT_LE(p90, p99);
  EXPECT_LE(p99, p999);
  EXPECT_LE(p999, max);
  EXPECT_GT(r.at("mean_ns").get<double>(), 0);
  EXPECT_GT(r.at("round_trips_per_s").get<double>(), 0);
}

void expect_stream(const json& r, std::uint64_t messages) {
  ASSERT_EQ(r.at("status"), "ok") << r.at("reason");
  EXPECT_EQ(r.at("messages").get<std::uint64_t>(), messages);
  EXPECT_GT(r.at("messages_per_s").get<double>(), 0);
  EXPECT_GT(r.at("mb_per_s").get<double>(), 0);
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("shmq-bench-test-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ShmqBench, PingpongSpinOverShmqAndSpsc) {
  // Few round trips: on a busy machine a spinning pair may wait a time slice for each.
  const json report = run_json({"--transport", "shmq,spsc", "--iterations", "200", "--warmup", "20"});
  EXPECT_EQ(report.at("workload"), "pingpong");
  EXPECT_EQ(report.at("size"), 64);
  EXPECT_EQ(report.at("wait"), "spin");
  EXPECT_FALSE(report.at("machine").at("cpu").get<std::string>().empty());
  EXPECT_GT(report.at("machine").at("cores").get<int>(), 0);
  ASSERT_EQ(report.at("results").size(), 2u);
  EXPECT_EQ(report.at("results")[0].at("transport"), "shmq");
  expect_latency(result_of(report, "shmq"));
  expect_latency(result_of(report, "spsc"));
  EXPECT_EQ(result_of(report, "shmq").at("samples"), 200);
  EXPECT_DOUBLE_EQ(result_of(report, "shmq").at("x_shmq").get<double>(), 1.0);
}

TEST(ShmqBench, PingpongBlockSkipsSpscWithAReason) {
  const json report = run_json({"--transport", "shmq,spsc", "--wait", "block", "--iterations", "500"});
  EXPECT_EQ(report.at("wait"), "block");
  expect_latency(result_of(report, "shmq"));
  const json& spsc = result_of(report, "spsc");
  EXPECT_EQ(spsc.at("status"), "skipped");
  EXPECT_FALSE(spsc.at("reason").get<std::string>().empty());
  EXPECT_FALSE(spsc.contains("p50_ns"));
}

TEST(ShmqBench, PingpongBlockAfterPollingWithLargeMessages) {
  const json report = run_json({"--wait", "block", "--block-spin-us", "20", "--size", "64KiB", "--iterations", "200"});
  EXPECT_EQ(report.at("size"), 65536);
  EXPECT_EQ(report.at("block_spin_us"), 20);
  expect_latency(result_of(report, "shmq"));
}

TEST(ShmqBench, StreamOverShmqAndSpscDeliversEveryMessage) {
  const json report = run_json({"--workload", "stream", "--transport", "shmq,spsc", "--messages", "20000"});
  EXPECT_EQ(report.at("workload"), "stream");
  expect_stream(result_of(report, "shmq"), 20000);
  expect_stream(result_of(report, "spsc"), 20000);
}

TEST(ShmqBench, StreamBlockWithSeveralProducersAndConsumers) {
  const json report = run_json({"--workload", "stream", "--wait", "block", "--messages", "10000", "--producers", "2",
                                "--consumers", "3", "--batch", "4", "--capacity", "64"});
  expect_stream(result_of(report, "shmq"), 10000);
}

TEST(ShmqBench, StreamOfLargestMessages) {
  const json report =
      run_json({"--workload", "stream", "--transport", "shmq,spsc", "--size", "1MiB", "--messages", "64"});
  expect_stream(result_of(report, "shmq"), 64);
  expect_stream(result_of(report, "spsc"), 64);
}

// The consumers stop after the producers' messages, the backlog's stay in
// the queue while timed and are drained afterwards: every number is checked,
// and a transport that cannot hold the backlog says so.
TEST(ShmqBench, StreamWithABacklogDeliversEveryMessageAndReportsIt) {
  const json report =
      run_json({"--workload", "stream", "--transport", "shmq,spsc", "--messages", "5000", "--backlog", "3000"});
  EXPECT_EQ(report.at("backlog"), 3000);
  const json& shmq = result_of(report, "shmq");
  ASSERT_EQ(shmq.at("status"), "ok") << shmq.at("reason");
  // Consumers take a batch at a time: the timed count is the producers' or up to a batch more.
  EXPECT_GE(shmq.at("messages").get<std::uint64_t>(), 5000u);
  EXPECT_LT(shmq.at("messages").get<std::uint64_t>(), 5000u + 10u);
  EXPECT_GT(shmq.at("messages_per_s").get<double>(), 0);
  const json& spsc = result_of(report, "spsc");
  EXPECT_EQ(spsc.at("status"), "skipped");
  EXPECT_NE(spsc.at("reason").get<std::string>().find("--backlog"), std::string::npos) << spsc.at("reason");
}

TEST(ShmqBench, StreamWithABacklogFourByFourSpinAndBlock) {
  for (const char* wait : {"spin", "block"}) {
    SCOPED_TRACE(wait);
    const json report = run_json({"--workload", "stream", "--wait", wait, "--messages", "4000", "--producers", "4",
                                  "--consumers", "4", "--backlog", "1000"});
    const json& shmq = result_of(report, "shmq");
    ASSERT_EQ(shmq.at("status"), "ok") << shmq.at("reason");
    EXPECT_GE(shmq.at("messages").get<std::uint64_t>(), 4000u);
    EXPECT_EQ(report.at("producers"), 4);
    EXPECT_EQ(report.at("consumers"), 4);
  }
}

// A FIFO queue over message groups; more messages than the capacity's
// deduplication window would take if it were not sized for the run.
TEST(ShmqBench, StreamOverFifoGroupsDeliversEveryMessage) {
  const json report = run_json({"--workload", "stream", "--transport", "shmq,boostmq", "--fifo-groups", "7",
                                "--messages", "20000", "--capacity", "64"});
  EXPECT_EQ(report.at("fifo_groups"), 7);
  expect_stream(result_of(report, "shmq"), 20000);
  const json& boostmq = result_of(report, "boostmq");
  EXPECT_EQ(boostmq.at("status"), "skipped");
  EXPECT_NE(boostmq.at("reason").get<std::string>().find("--fifo-groups"), std::string::npos) << boostmq.at("reason");
}

TEST(ShmqBench, PingpongAndBacklogStreamOverFifoGroups) {
  const json pingpong = run_json({"--fifo-groups", "3", "--iterations", "300"});
  EXPECT_EQ(pingpong.at("fifo_groups"), 3);
  expect_latency(result_of(pingpong, "shmq"));
  const json stream =
      run_json({"--workload", "stream", "--fifo-groups", "100", "--messages", "3000", "--backlog", "2000"});
  ASSERT_EQ(result_of(stream, "shmq").at("status"), "ok") << result_of(stream, "shmq").at("reason");
}

TEST(ShmqBench, TableNamesBacklogAndFifoGroups) {
  const ProcessResult r =
      run_bench({"--workload", "stream", "--messages", "2000", "--backlog", "1000", "--fifo-groups", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("FIFO over 5 groups"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("backlog 1,000"), std::string::npos) << r.out;
}

TEST(ShmqBench, TableNamesTheRunTheMachineAndEachTransport) {
  const ProcessResult r = run_bench({"--transport", "shmq,spsc", "--wait", "block", "--iterations", "200"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pingpong, 64 B messages, wait block"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("machine: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("p99.9"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("spsc       skipped: "), std::string::npos) << r.out;
}

TEST(ShmqBench, PlotWritesAnSvgNamingEachTransport) {
  for (const char* workload : {"pingpong", "stream"}) {
    const std::string path = temp_path(std::string(workload) + ".svg");
    std::vector<std::string> args{"--workload", workload, "--transport", "shmq,spsc", "--plot", path};
    if (std::string(workload) == "pingpong") {
      args.insert(args.end(), {"--wait", "block", "--iterations", "300"});
    } else {
      args.insert(args.end(), {"--messages", "5000"});
    }
    run_json(args);
    const std::string svg = read_file(path);
    std::filesystem::remove(path);
    EXPECT_NE(svg.find("<svg"), std::string::npos) << workload;
    EXPECT_NE(svg.find("</svg>"), std::string::npos) << workload;
    EXPECT_NE(svg.find(">shmq<"), std::string::npos) << workload;
    // spsc has no block mode: named in the legend when it ran, else below the chart with the reason.
    const bool ran = std::string(workload) == "stream";
    EXPECT_NE(svg.find(ran ? ">spsc<" : ">spsc skipped: "), std::string::npos) << workload;
  }
}

TEST(ShmqBench, BadFlagsExitTwoWithAMessage) {
  const std::vector<std::vector<std::string>> bad{
      {"--size", "8"},
      {"--size", "2MiB"},
      {"--size", "12parsecs"},
      {"--transport", "carrier-pigeon"},
      {"--workload", "marathon"},
      {"--wait", "nap"},
      {"--iterations", "-5"},
      {"--iterations", "0"},
      {"--workload", "stream", "--batch", "11"},
      {"--messages", "10"},                        // a stream flag with pingpong
      {"--block-spin-us", "5"},                    // block mode only
      {"--backlog", "1000"},                       // a stream flag with pingpong
      {"--workload", "stream", "--backlog", "9"},  // fewer than consumers x batch
      {"--workload", "stream", "--consumers", "2", "--batch", "5", "--backlog", "9"},
      {"--workload", "stream", "--backlog", "many"},
      {"--workload", "stream", "--backlog", "-1"},
      {"--workload", "stream", "--backlog", "99999999999"},
      {"--fifo-groups", "0"},
      {"--fifo-groups", "-3"},
      {"--fifo-groups", "1000001"},
      {"--pin", "0,x"},
      {"--no-such-flag"},
      {"stray"},
  };
  for (const auto& args : bad) {
    const ProcessResult r = run_bench(args);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_NE(r.err.find("shmq-bench: "), std::string::npos) << args[0];
    EXPECT_TRUE(r.out.empty()) << args[0] << ": " << r.out;
  }
}

// Every transport the comparison names, side by side, as the README's run
// does: each runs (iceoryx starts its own RouDi) or says why it cannot.
TEST(ShmqBench, AllTransportsRunSideBySide) {
  const std::vector<std::string> names{"shmq", "boostmq", "posixmq", "zeromq", "iceoryx", "spsc"};
  const json pingpong = run_json({"--transport", "all", "--iterations", "200", "--warmup", "20"});
  ASSERT_EQ(pingpong.at("results").size(), names.size());
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    expect_latency(result_of(pingpong, name));
    EXPECT_GT(result_of(pingpong, name).at("x_shmq").get<double>(), 0);
  }
  const json stream = run_json({"--workload", "stream", "--wait", "block", "--transport", "all", "--messages", "2000"});
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const json& r = result_of(stream, name);
    if (name == "spsc") {
      EXPECT_EQ(r.at("status"), "skipped");
      EXPECT_FALSE(r.at("reason").get<std::string>().empty());
    } else {
      expect_stream(r, 2000);
    }
  }
}

TEST(ShmqBench, HelpExitsZero) {
  const ProcessResult r = run_bench({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--transport"), std::string::npos);
}

}  // namespace
