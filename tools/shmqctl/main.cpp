// shmqctl: queue administration and debugging CLI for shmqd.
#include <iostream>

#include "shmqctl.hpp"

int main(int argc, char** argv) { return shmq::ctl::run(argc, argv, std::cin, std::cout, std::cerr); }
