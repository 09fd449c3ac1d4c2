// The Client and Queue calls of a remote endpoint, as SQS actions
// (docs/remote-endpoints.md). Client and Queue forward to these when they
// were made for an Endpoint.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "remote/sqs_json_client.hpp"
#include "shmq/client.hpp"

namespace shmq::detail {

class RemoteClient {
 public:
  explicit RemoteClient(const Endpoint& endpoint) : sqs_(endpoint) {}

  const std::string& url() const noexcept { return sqs_.url(); }
  remote::SqsJsonClient& sqs() noexcept { return sqs_; }

  // The queue's URL, from a cache or GetQueueUrl; throws as admin calls do.
  std::string queue_url(std::string_view name);
  void forget(std::string_view name);

  void create_queue(std::string_view name, const Attributes& attributes, const Tags& tags);
  void delete_queue(std::string_view name);
  std::vector<std::string> list_queues(std::string_view prefix);
  Attributes get_queue_attributes(std::string_view name, const std::vector<std::string>& names);
  void set_queue_attributes(std::string_view name, const Attributes& attributes);
  std::uint64_t purge_queue(std::string_view name);
  void tag_queue(std::string_view name, const Tags& tags);
  void untag_queue(std::string_view name, const std::vector<std::string>& keys);
  Tags list_queue_tags(std::string_view name);
  void add_permission(std::string_view name, std::string_view label, const std::vector<std::string>& account_ids,
                      const std::vector<std::string>& actions);
  void remove_permission(std::string_view name, std::string_view label);
  std::vector<std::string> list_dead_letter_source_queues(std::string_view name);
  std::string start_message_move_task(std::string_view source_arn, std::string_view destination_arn,
                                      std::optional<std::uint32_t> max_messages_per_second);
  std::uint64_t cancel_message_move_task(std::string_view task_handle);
  std::vector<MessageMoveTask> list_message_move_tasks(std::string_view source_arn, std::uint32_t max_results);
  DaemonHealth health();
  std::shared_ptr<RemoteQueue> open_queue(const std::shared_ptr<RemoteClient>& self, std::string_view name);

 private:
  // Calls an action about a queue by name; a QueueDoesNotExist answer
  // drops the cached URL.
  nlohmann::json queue_call(std::string_view action, std::string_view name, nlohmann::json request);

  remote::SqsJsonClient sqs_;
  std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> urls_;
};

class RemoteQueue {
 public:
  RemoteQueue(std::shared_ptr<RemoteClient> client, std::string name, std::string url, const Attributes& attributes);

  const std::string& name() const noexcept { return name_; }

  std::error_code send(std::string_view body, SendResult& result, const SendOptions& options);
  std::error_code send_batch(std::span<const SendEntry> entries, std::vector<BatchEntryResult>& results);
  std::error_code receive_into(std::span<Message> messages, std::size_t& received, const ReceiveOptions& options);
  std::error_code delete_message(std::string_view receipt_handle);
  std::error_code change_visibility(std::string_view receipt_handle, std::uint32_t seconds);
  std::error_code delete_batch(std::span<const HandleEntry> entries, std::vector<BatchEntryResult>& results);
  std::error_code change_visibility_batch(std::span<const HandleEntry> entries, std::vector<BatchEntryResult>& results);
  QueueCounts counts() noexcept;

  std::chrono::seconds receive_wait_time() const noexcept { return receive_wait_; }
  bool content_based_deduplication() const noexcept { return content_based_; }
  std::uint32_t maximum_message_size() const noexcept { return maximum_message_size_; }

 private:
  // Calls an action on this queue; the error, if any, as the data path returns it.
  std::error_code call(std::string_view action, nlohmann::json request, nlohmann::json& reply,
                       std::chrono::milliseconds wait = std::chrono::milliseconds{0});
  std::error_code handle_batch(std::string_view action, std::span<const HandleEntry> entries,
                               std::vector<BatchEntryResult>& results);

  std::shared_ptr<RemoteClient> client_;
  std::string name_;
  std::string url_;
  bool fifo_ = false;
  std::chrono::seconds receive_wait_{0};
  bool content_based_ = false;
  std::uint32_t maximum_message_size_ = 262144;
};

}  // namespace shmq::detail
