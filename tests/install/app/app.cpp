// A program of a libshmq user, built against the installed library: sends a
// message to a queue of the daemon in namespace argv[1], receives it and
// prints the library's version and the body.
#include <iostream>
#include <shmq/shmq.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: app NAMESPACE\n";
    return 2;
  }
  try {
    shmq::Client client(shmq::Client::Options{argv[1]});
    client.create_queue("installed");
    shmq::Queue queue = client.open_queue("installed");
    shmq::SendResult sent;
    if (auto ec = queue.send("hello from an installed libshmq", sent)) {
      std::cerr << "send: " << ec.message() << "\n";
      return 1;
    }
    std::vector<shmq::Message> got;
    if (auto ec = queue.receive(got, {.max_messages = 1}); ec || got.empty()) {
      std::cerr << "receive: " << (ec ? ec.message() : "nothing") << "\n";
      return 1;
    }
    if (auto ec = queue.delete_message(got[0].receipt_handle)) {
      std::cerr << "delete: " << ec.message() << "\n";
      return 1;
    }
    std::cout << "shmq " << shmq::kVersion << ": " << got[0].body << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
