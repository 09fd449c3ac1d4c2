// The transports shmq-bench compares, one factory each.
#pragma once

#include <memory>
#include <string>

#include "transport.hpp"

namespace shmq::bench {

// Settings some transports need from the command line.
struct TransportSettings {
  std::string shmqd_path;                // shmq: the daemon to start (next to shmq-bench by default)
  std::string shmq_namespace;            // shmq: use this running daemon's namespace instead of starting one
  std::string roudi_path = "iox-roudi";  // iceoryx: started if no RouDi runs
  std::string run_id;                    // unique per run: names of queues, files and endpoints include it
  // shmq-remote: an SQS endpoint to use (credentials from the AWS chain)
  // instead of a shmqd it starts with its bridge on 127.0.0.1; and the
  // region to sign for (empty: the library's choice).
  std::string endpoint;
  std::string region;
  // shmq-remote: senders hand each message to a shmq::BufferedSender, which
  // sends them in batches of up to 10 (send() then returns before its
  // message is in the channel; flush() waits for every answer).
  bool buffered_sender = false;
};

// Each makes one transport for one run. A transport that needs a daemon or a
// library it cannot find throws std::runtime_error saying what to install or
// start; the harness then reports that transport as failed.
std::unique_ptr<Transport> make_shmq_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_shmq_remote_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_spsc_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_boostmq_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_posixmq_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_zeromq_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_iceoryx_transport(const TransportSettings& settings);

}  // namespace shmq::bench
