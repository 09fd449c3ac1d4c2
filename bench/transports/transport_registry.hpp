// The transports shmq-bench knows, by the names the command line uses.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transports.hpp"

namespace shmq::bench {

// Every transport's name, shmq first, in the order --transport all runs them.
const std::vector<std::string>& transport_names();

// What --transport all runs: transport_names() without shmq-remote (over
// HTTP, far slower than the shared-memory comparison it would be part of).
const std::vector<std::string>& all_transport_names();

// True if `name` is one of transport_names().
bool known_transport(std::string_view name);

// Makes the transport called `name`. Throws std::invalid_argument for an
// unknown name, and whatever the factory throws when the transport cannot
// start (e.g. its daemon is missing).
std::unique_ptr<Transport> make_transport(std::string_view name, const TransportSettings& settings);

}  // namespace shmq::bench
