#include "machine_info.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>

namespace shmq::bench {

MachineInfo probe_machine() {
  MachineInfo m{"unknown CPU", 0, "unknown kernel"};
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos && colon + 2 <= line.size()) m.cpu_model = line.substr(colon + 2);
    break;
  }
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  m.cores = online > 0 ? static_cast<unsigned>(online) : 0;
  utsname u{};
  if (::uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  return m;
}

std::string describe(const MachineInfo& machine) {
  return machine.cpu_model + ", " + std::to_string(machine.cores) + (machine.cores == 1 ? " core, " : " cores, ") +
         machine.kernel;
}

}  // namespace shmq::bench
