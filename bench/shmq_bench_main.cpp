// shmq-bench: shmq beside the transports it is compared with, between real
// processes. Parse the flags, run the benchmark library, print.
//
//   build/bin/shmq-bench --transport all --workload pingpong --size 64 --pin 0,1
#include <unistd.h>

#include <exception>
#include <iostream>

#include "bench_app.hpp"
#include "bench_options.hpp"

int main(int argc, char** argv) {
  try {
    const auto options = shmq::bench::parse_options(argc, argv, std::cout);
    if (!options) return 0;
    return shmq::bench::run_bench(*options, std::cout, std::cerr, ::isatty(STDERR_FILENO) != 0);
  } catch (const shmq::bench::UsageError& e) {
    std::cerr << "shmq-bench: " << e.what() << "\nTry 'shmq-bench --help'.\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "shmq-bench: " << e.what() << "\n";
    return 1;
  }
}
