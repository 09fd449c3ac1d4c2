// shmqctl: administer and inspect a namespace's queues from the shell.
#pragma once

#include <iosfwd>

namespace shmq::ctl {

// Runs one shmqctl command line. Returns the exit code: 0 done, 1 the
// operation failed (message on err), 2 bad usage.
int run(int argc, const char* const argv[], std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace shmq::ctl
