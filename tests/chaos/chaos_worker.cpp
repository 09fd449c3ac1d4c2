// One process of the chaos test: sends or receives in a loop until killed,
// appending what it did to a log with one write(2) per step:
//   "S <key>\n"  a send that returned success,
//   "R <key>\n"  a message received (written before it is deleted).
// Bodies are "<key>|<filler>" where the filler is derived from the key, so a
// receiver detects a torn or foreign payload (exit code 4).
//
// usage: shmq-chaos-worker send|receive NAMESPACE QUEUE LOG SEED
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shmq/shmq.hpp"

namespace {

std::string filler(const std::string& key, std::size_t n) {
  std::string out(n, ' ');
  const std::size_t h = std::hash<std::string>{}(key);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (h + i * 7) % 26);
  return out;
}

bool intact(const std::string& body, std::string& key) {
  const auto bar = body.find('|');
  if (bar == std::string::npos) return false;
  key = body.substr(0, bar);
  return body.compare(bar + 1, std::string::npos, filler(key, body.size() - bar - 1)) == 0;
}

void append(int fd, const std::string& lines) {
  if (!lines.empty() && ::write(fd, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) std::_Exit(5);
}

struct Connected {
  shmq::Client client;
  shmq::Queue queue;
};

Connected connect(const std::string& ns, const std::string& queue) {
  // The daemon may be down, or go down between the two calls (the test
  // restarts it): keep trying for up to 30 s.
  for (int attempt = 0;; ++attempt) {
    try {
      shmq::Client client(shmq::Client::Options{ns});
      shmq::Queue q = client.open_queue(queue);
      return Connected{std::move(client), std::move(q)};
    } catch (const std::system_error& e) {
      if (e.code() != shmq::Errc::daemon_unavailable || attempt > 3000) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

int send_loop(shmq::Queue& queue, int log, std::mt19937_64& rng) {
  const bool fifo = queue.name().ends_with(".fifo");
  const std::string prefix = "p" + std::to_string(::getpid()) + "n";
  std::uint64_t seq = 0;
  std::vector<shmq::BatchEntryResult> results;
  for (;;) {
    const std::size_t batch = rng() % 3 == 0 ? 1 + rng() % 10 : 1;
    std::vector<shmq::SendEntry> entries;
    for (std::size_t i = 0; i < batch; ++i) {
      const std::string key = prefix + std::to_string(seq++);
      // Mostly small; sometimes large, so kills land inside long copies.
      const std::size_t size = rng() % 50 == 0 ? 16384 + rng() % 49152 : rng() % 512;
      shmq::SendOptions options;
      if (fifo) {
        options.group_id = "g" + std::to_string(seq % 8);
        options.deduplication_id = key;
      }
      entries.push_back({std::to_string(i), key + "|" + filler(key, size), options});
    }
    if (auto ec = queue.send_batch(entries, results)) {
      std::fprintf(stderr, "send_batch: %s\n", ec.message().c_str());
      return 3;
    }
    std::string lines;
    for (std::size_t i = 0; i < batch; ++i) {
      if (!results[i].error) {
        lines += "S " + entries[i].body.substr(0, entries[i].body.find('|')) + "\n";
      } else if (results[i].error != shmq::Errc::queue_full) {
        std::fprintf(stderr, "send: %s\n", results[i].error.message().c_str());
        return 3;
      }
    }
    append(log, lines);
    if (lines.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // full: let receivers drain
  }
}

int receive_loop(shmq::Queue& queue, int log, std::mt19937_64& rng) {
  std::vector<shmq::Message> messages;
  shmq::ReceiveOptions options;
  options.max_messages = 10;
  options.wait_time = std::chrono::milliseconds(200);
  for (;;) {
    if (auto ec = queue.receive(messages, options)) {
      std::fprintf(stderr, "receive: %s\n", ec.message().c_str());
      return 3;
    }
    std::string lines;
    for (const auto& m : messages) {
      std::string key;
      if (!intact(m.body, key)) {
        std::fprintf(stderr, "corrupt body of %zu bytes\n", m.body.size());
        return 4;
      }
      lines += "R " + key + "\n";
    }
    append(log, lines);
    for (const auto& m : messages) {
      if (rng() % 10 == 0) continue;  // leave it: it comes back after the visibility timeout
      const auto ec = queue.delete_message(m.receipt_handle);
      if (ec && ec != shmq::Errc::stale_receipt_handle) {
        std::fprintf(stderr, "delete: %s\n", ec.message().c_str());
        return 3;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: shmq-chaos-worker send|receive NAMESPACE QUEUE LOG SEED\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int log = ::open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return 5;
  std::mt19937_64 rng(std::stoull(argv[5]));
  try {
    Connected c = connect(argv[2], argv[3]);
    return mode == "send" ? send_loop(c.queue, log, rng) : receive_loop(c.queue, log, rng);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chaos worker: %s\n", e.what());
    return 3;
  }
}
