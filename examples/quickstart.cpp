// The README's library quick start. Needs a running daemon: `make run`.
#include <iostream>
#include <shmq/shmq.hpp>

int main() {
  shmq::Client client;  // connects to shmqd (namespace "default")
  client.create_queue("jobs", {{"VisibilityTimeout", "30"}});
  shmq::Queue jobs = client.open_queue("jobs");

  shmq::SendResult sent;
  if (auto ec = jobs.send("resize image 42", sent)) {
    std::cerr << "send: " << ec.message() << "\n";  // e.g. queue_full: nothing was enqueued
    return 1;
  }

  std::vector<shmq::Message> messages;
  if (auto ec = jobs.receive(messages, {.max_messages = 10, .wait_time = std::chrono::seconds(20)})) {
    std::cerr << "receive: " << ec.message() << "\n";
    return 1;
  }
  for (const shmq::Message& m : messages) {
    std::cout << m.message_id << ": " << m.body << "\n";
    if (auto ec = jobs.delete_message(m.receipt_handle)) std::cerr << "delete: " << ec.message() << "\n";
  }

  // FIFO: strict order per group, deduplication over 5 minutes.
  client.create_queue("orders.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
  shmq::Queue orders = client.open_queue("orders.fifo");
  if (auto ec = orders.send("order 17 paid", sent, {.group_id = "customer-9"})) {
    std::cerr << "send: " << ec.message() << "\n";
    return 1;
  }
  std::cout << "order sent as number " << sent.sequence_number << "\n";
}
