// A process's handle on a namespace's shmqd: queue administration goes
// through the daemon's control socket; open_queue maps a queue for the data
// path. Admin calls block on the daemon's reply and throw std::system_error
// whose code() is a shmq::Errc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmq/queue.hpp"
#include "shmq/types.hpp"

namespace shmq {

namespace detail {
class ControlConnection;
}

class Client {
 public:
  struct Options {
    std::string ns = "default";  // the daemon's --namespace
  };

  // Connects to the daemon. Throws daemon_unavailable if none runs.
  Client();
  explicit Client(const Options& options);
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  // Creates a queue, or does nothing if one exists with the same attributes
  // (queue_name_exists if they differ). `capacity` defaults to the daemon's.
  void create_queue(std::string_view name, const Attributes& attributes = {},
                    const std::optional<QueueCapacity>& capacity = std::nullopt);
  void delete_queue(std::string_view name);
  std::vector<std::string> list_queues(std::string_view prefix = {});
  // `names` as SQS takes them: {"All"} or attribute names.
  Attributes get_queue_attributes(std::string_view name, const std::vector<std::string>& names = {"All"});
  void set_queue_attributes(std::string_view name, const Attributes& attributes);
  // Deletes every message; returns how many.
  std::uint64_t purge_queue(std::string_view name);

  QueueStats stats(std::string_view name);

  // Maps the queue. Throws queue_does_not_exist.
  Queue open_queue(std::string_view name);

  const std::string& ns() const noexcept;

 private:
  std::shared_ptr<detail::ControlConnection> connection_;
};

}  // namespace shmq
