// The machine a report was measured on, for its header.
#pragma once

#include <string>

namespace shmq::bench {

struct MachineInfo {
  std::string cpu_model;  // /proc/cpuinfo's first "model name"
  unsigned cores = 0;     // online logical CPUs
  std::string kernel;     // uname: "Linux 6.1.0-18-amd64 x86_64"
};

// Reads /proc/cpuinfo and uname(). Does not fail: unknown parts read "unknown".
MachineInfo probe_machine();

// One line: "Intel(R) Xeon(R) Processor, 2 cores, Linux 6.1.0 x86_64".
std::string describe(const MachineInfo& machine);

}  // namespace shmq::bench
