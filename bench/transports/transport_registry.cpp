#include "transport_registry.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace shmq::bench {
namespace {

using Factory = std::unique_ptr<Transport> (*)(const TransportSettings&);

const std::vector<std::pair<std::string, Factory>>& factories() {
  static const std::vector<std::pair<std::string, Factory>> kFactories{
      {"shmq", &make_shmq_transport},     {"boostmq", &make_boostmq_transport}, {"posixmq", &make_posixmq_transport},
      {"zeromq", &make_zeromq_transport}, {"iceoryx", &make_iceoryx_transport}, {"spsc", &make_spsc_transport},
  };
  return kFactories;
}

}  // namespace

const std::vector<std::string>& transport_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& [name, factory] : factories()) names.push_back(name);
    return names;
  }();
  return kNames;
}

bool known_transport(std::string_view name) {
  const auto& names = transport_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::unique_ptr<Transport> make_transport(std::string_view name, const TransportSettings& settings) {
  for (const auto& [known, factory] : factories()) {
    if (known == name) return factory(settings);
  }
  throw std::invalid_argument("unknown transport: " + std::string(name));
}

}  // namespace shmq::bench
