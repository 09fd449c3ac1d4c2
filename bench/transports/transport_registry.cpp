#include "transport_registry.hpp"

#include <algorithm>
#include <stdexcept>

namespace shmq::bench {
namespace {

using Factory = std::unique_ptr<Transport> (*)(const TransportSettings&);

struct Entry {
  std::string name;
  Factory factory;
  bool in_all;  // run by --transport all
};

const std::vector<Entry>& entries() {
  // shmq-remote goes over HTTP: orders of magnitude slower than the others,
  // and a run of the default sizes would take minutes. It is left out of
  // "all" and runs only when named.
  static const std::vector<Entry> kEntries{
      {"shmq", &make_shmq_transport, true},
      {"boostmq", &make_boostmq_transport, true},
      {"posixmq", &make_posixmq_transport, true},
      {"zeromq", &make_zeromq_transport, true},
      {"iceoryx", &make_iceoryx_transport, true},
      {"spsc", &make_spsc_transport, true},
      {"shmq-remote", &make_shmq_remote_transport, false},
  };
  return kEntries;
}

}  // namespace

const std::vector<std::string>& transport_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const Entry& e : entries()) names.push_back(e.name);
    return names;
  }();
  return kNames;
}

const std::vector<std::string>& all_transport_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const Entry& e : entries()) {
      if (e.in_all) names.push_back(e.name);
    }
    return names;
  }();
  return kNames;
}

bool known_transport(std::string_view name) {
  const auto& names = transport_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::unique_ptr<Transport> make_transport(std::string_view name, const TransportSettings& settings) {
  for (const Entry& e : entries()) {
    if (e.name == name) return e.factory(settings);
  }
  throw std::invalid_argument("unknown transport: " + std::string(name));
}

}  // namespace shmq::bench
