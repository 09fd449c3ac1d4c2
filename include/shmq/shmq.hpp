// libshmq: SQS-style message queues in POSIX shared memory.
//
//   shmq::Client client;                       // connects to shmqd
//   client.create_queue("jobs");
//   shmq::Queue jobs = client.open_queue("jobs");
//   shmq::SendResult sent;
//   if (auto ec = jobs.send("hello", sent)) { /* ec.message() */ }
//   std::vector<shmq::Message> got;
//   if (!jobs.receive(got, {.max_messages = 10}) && !got.empty())
//     (void)jobs.delete_message(got[0].receipt_handle);
#pragma once

#include "shmq/buffered_sender.hpp"
#include "shmq/client.hpp"
#include "shmq/error.hpp"
#include "shmq/queue.hpp"
#include "shmq/types.hpp"
#include "shmq/version.hpp"
