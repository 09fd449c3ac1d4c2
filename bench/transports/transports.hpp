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
};

// Each makes one transport for one run. A transport that needs a daemon or a
// library it cannot find throws std::runtime_error saying what to install or
// start; the harness then reports that transport as failed.
std::unique_ptr<Transport> make_shmq_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_spsc_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_boostmq_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_posixmq_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_zeromq_transport(const TransportSettings& settings);
std::unique_ptr<Transport> make_iceoryx_transport(const TransportSettings& settings);

}  // namespace shmq::bench
