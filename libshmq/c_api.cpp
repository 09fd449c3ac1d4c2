// The C API (include/shmq/shmq.h) over the C++ one: handles own a
// shmq::Client or a shmq::Queue; exceptions end at this file's boundary and
// become status codes; memory handed to the caller is freed by the matching
// *_free call. Design: docs/c-api.md.
#include "shmq/shmq.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "shmq/client.hpp"
#include "shmq/error.hpp"
#include "shmq/version.hpp"

struct shmq_client {
  shmq::Client client;
};

struct shmq_queue {
  shmq::Queue queue;
};

namespace {

using shmq::Errc;

thread_local std::string last_error;

int status_of(const std::error_code& ec) noexcept {
  if (!ec) return SHMQ_OK;
  if (ec.category() == shmq::error_category()) return ec.value();
  if (ec == std::errc::not_enough_memory) return SHMQ_OUT_OF_MEMORY;
  return SHMQ_INTERNAL;
}

// Runs `body`, which may throw; what it throws becomes a status and the
// thread's last error message.
template <class Body>
int guarded(Body&& body) noexcept {
  try {
    last_error.clear();
  } catch (...) {
  }
  try {
    return body();
  } catch (const std::system_error& e) {
    try {
      last_error = e.what();
    } catch (...) {
    }
    return status_of(e.code());
  } catch (const std::bad_alloc&) {
    return SHMQ_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    try {
      last_error = e.what();
    } catch (...) {
    }
    return SHMQ_INTERNAL;
  } catch (...) {
    return SHMQ_INTERNAL;
  }
}

// Copies `text` and its NUL into a fixed field, cut to fit.
template <std::size_t N>
void copy_field(char (&field)[N], const std::string& text) noexcept {
  const std::size_t n = std::min(text.size(), N - 1);
  std::memcpy(field, text.data(), n);
  field[n] = '\0';
}

std::string str(const char* text) { return text ? std::string(text) : std::string(); }

shmq::Attributes attributes_of(const shmq_attribute* items, std::size_t count) {
  shmq::Attributes out;
  for (std::size_t i = 0; i < count; ++i) {
    if (!items[i].name || !items[i].value) throw std::system_error(SHMQ_INVALID_ARGUMENT, shmq::error_category());
    out[items[i].name] = items[i].value;
  }
  return out;
}

// A send's options; a status other than SHMQ_OK if they cannot be.
int options_of(const shmq_send_options* in, shmq::SendOptions& out) {
  out = shmq::SendOptions{};
  if (!in) return SHMQ_OK;
  out.group_id = str(in->group_id);
  out.deduplication_id = str(in->deduplication_id);
  if (in->delay_seconds >= 0) {
    out.delay_seconds = static_cast<std::uint32_t>(in->delay_seconds);
  } else if (in->delay_seconds != -1) {
    return SHMQ_INVALID_PARAMETER_VALUE;
  }
  if (in->attribute_count > 0 && !in->attributes) return SHMQ_INVALID_ARGUMENT;
  for (std::size_t i = 0; i < in->attribute_count; ++i) {
    const shmq_message_attribute& a = in->attributes[i];
    if (!a.name || !a.data_type || (a.value_len > 0 && !a.value)) return SHMQ_INVALID_ARGUMENT;
    shmq::MessageAttributeValue v;
    v.data_type = a.data_type;
    const std::string value(static_cast<const char*>(a.value), a.value_len);
    if (v.data_type.starts_with("Binary")) {
      v.binary_value = value;
    } else {
      v.string_value = value;
    }
    // A map: a second attribute of the same name is a caller's mistake, not
    // a value to drop silently.
    if (!out.attributes.emplace(a.name, std::move(v)).second) return SHMQ_INVALID_MESSAGE_ATTRIBUTE;
  }
  return SHMQ_OK;
}

int receive_options_of(const shmq_receive_options* in, shmq::ReceiveOptions& out) {
  out = shmq::ReceiveOptions{};
  if (!in) return SHMQ_OK;
  out.max_messages = in->max_messages;
  if (in->visibility_timeout >= 0) {
    out.visibility_timeout = static_cast<std::uint32_t>(in->visibility_timeout);
  } else if (in->visibility_timeout != -1) {
    return SHMQ_INVALID_PARAMETER_VALUE;
  }
  if (in->wait_time_ms >= 0) {
    if (in->wait_time_ms > 20000) return SHMQ_INVALID_PARAMETER_VALUE;
    out.wait_time = std::chrono::milliseconds(in->wait_time_ms);
  } else if (in->wait_time_ms != -1) {
    return SHMQ_INVALID_PARAMETER_VALUE;
  }
  return SHMQ_OK;
}

// What shmq_list's `reserved` points at: the storage of its items.
struct ListStorage {
  shmq_list list{};
  std::vector<std::string> strings;
  std::vector<shmq_attribute> items;
};

shmq_list* make_list(const std::vector<std::pair<std::string, std::string>>& pairs, bool names_only) {
  auto storage = std::make_unique<ListStorage>();
  storage->strings.reserve(pairs.size() * 2);
  storage->items.reserve(pairs.size());
  for (const auto& [name, value] : pairs) {
    const char* n = storage->strings.emplace_back(name).c_str();
    const char* v = names_only ? nullptr : storage->strings.emplace_back(value).c_str();
    storage->items.push_back({n, v});
  }
  storage->list.count = storage->items.size();
  storage->list.items = storage->items.data();
  storage->list.reserved = storage.get();
  return &storage.release()->list;
}

// What shmq_messages' `reserved` points at.
struct MessagesStorage {
  shmq_messages messages{};
  std::vector<shmq::Message> held;
  std::vector<shmq_message> views;
  std::vector<std::vector<shmq_message_attribute>> attributes;
};

void view_of(const shmq::Message& m, std::vector<shmq_message_attribute>& attributes, shmq_message& v) {
  attributes.clear();
  for (const auto& [name, value] : m.attributes) {
    const std::string& bytes = value.data_type.starts_with("Binary") ? value.binary_value : value.string_value;
    attributes.push_back({name.c_str(), value.data_type.c_str(), bytes.data(), bytes.size()});
  }
  v.body = m.body.data();
  v.body_len = m.body.size();
  v.message_id = m.message_id.c_str();
  v.receipt_handle = m.receipt_handle.c_str();
  v.group_id = m.group_id.c_str();
  v.deduplication_id = m.deduplication_id.c_str();
  v.sequence_number = m.sequence_number.c_str();
  v.receive_count = m.receive_count;
  v.sent_timestamp_ms = m.sent_timestamp_ms;
  v.first_receive_timestamp_ms = m.first_receive_timestamp_ms;
  v.attributes = attributes.empty() ? nullptr : attributes.data();
  v.attribute_count = attributes.size();
}

std::vector<shmq::HandleEntry> handle_entries(const char* const* handles, const std::uint32_t* seconds,
                                              std::size_t count) {
  std::vector<shmq::HandleEntry> entries(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (!handles[i]) throw std::system_error(SHMQ_INVALID_ARGUMENT, shmq::error_category());
    entries[i].id = std::to_string(i);
    entries[i].receipt_handle = handles[i];
    if (seconds) entries[i].visibility_timeout = seconds[i];
  }
  return entries;
}

// ---- The codes' names and texts ----

struct CodeText {
  const char* name;
  const char* message;
};

constexpr int kLastErrc = static_cast<int>(Errc::throttled);

// SHMQ_OK and the C API's own codes; nullptr for shmq::Errc's.
const CodeText* own_code(int code) noexcept {
  static constexpr CodeText kOk{"ok", "success"};
  static constexpr std::array<CodeText, 3> kOwn{{
      {"invalid_argument", "a required handle or pointer is NULL"},
      {"buffer_too_small", "the buffer is too small for the answer (a message body or a receipt handle)"},
      {"out_of_memory", "out of memory"},
  }};
  if (code == SHMQ_OK) return &kOk;
  if (code >= SHMQ_C_CODES && code < SHMQ_C_CODES + static_cast<int>(kOwn.size())) {
    return &kOwn[static_cast<std::size_t>(code - SHMQ_C_CODES)];
  }
  return nullptr;
}

// shmq::Errc's names and messages, made once: the C API hands out pointers
// into them, valid for the life of the process.
struct ErrcTexts {
  std::array<std::string, kLastErrc + 1> names;
  std::array<std::string, kLastErrc + 1> messages;
};

const ErrcTexts& errc_texts() {
  static const ErrcTexts* texts = [] {
    auto* t = new ErrcTexts;
    for (int i = 1; i <= kLastErrc; ++i) {
      const std::error_code ec(i, shmq::error_category());
      t->names[static_cast<std::size_t>(i)] = shmq::errc_name(ec);
      t->messages[static_cast<std::size_t>(i)] = ec.message();
    }
    return t;
  }();
  return *texts;
}

}  // namespace

extern "C" {

// ---- Errors ----

const char* shmq_strerror(int code) {
  if (const CodeText* own = own_code(code)) return own->message;
  if (code < 1 || code > kLastErrc) return "unknown shmq status code";
  return errc_texts().messages[static_cast<std::size_t>(code)].c_str();
}

const char* shmq_errname(int code) {
  if (const CodeText* own = own_code(code)) return own->name;
  if (code < 1 || code > kLastErrc) return "unknown";
  return errc_texts().names[static_cast<std::size_t>(code)].c_str();
}

const char* shmq_version(void) { return SHMQ_VERSION; }

const char* shmq_client_last_error(void) { return last_error.c_str(); }

// ---- Clients and administration ----

int shmq_client_open(const char* ns, shmq_client** client) {
  if (!client) return SHMQ_INVALID_ARGUMENT;
  *client = nullptr;
  return guarded([&]() -> int {
    shmq::Client::Options options;
    if (ns) options.ns = ns;
    *client = new shmq_client{shmq::Client(options)};
    return SHMQ_OK;
  });
}

int shmq_client_open_default(shmq_client** client) {
  if (!client) return SHMQ_INVALID_ARGUMENT;
  *client = nullptr;
  return guarded([&]() -> int {
    *client = new shmq_client{shmq::Client()};
    return SHMQ_OK;
  });
}

void shmq_endpoint_init(shmq_endpoint* endpoint) {
  if (!endpoint) return;
  // The C++ struct's defaults, so that the two cannot differ.
  const shmq::Endpoint defaults;
  *endpoint = shmq_endpoint{};
  endpoint->verify_tls = defaults.verify_tls ? 1 : 0;
  endpoint->connect_timeout_ms = static_cast<unsigned>(defaults.connect_timeout.count());
  endpoint->request_timeout_ms = static_cast<unsigned>(defaults.request_timeout.count());
  endpoint->max_attempts = defaults.max_attempts;
  endpoint->retry_base_ms = static_cast<unsigned>(defaults.retry_base.count());
}

int shmq_client_open_endpoint(const shmq_endpoint* endpoint, shmq_client** client) {
  if (!client) return SHMQ_INVALID_ARGUMENT;
  *client = nullptr;
  if (!endpoint || !endpoint->url) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    const shmq::Endpoint defaults;
    shmq::Endpoint e;
    e.url = endpoint->url;
    e.region = str(endpoint->region);
    e.profile = str(endpoint->profile);
    e.access_key_id = str(endpoint->access_key_id);
    e.secret_access_key = str(endpoint->secret_access_key);
    e.session_token = str(endpoint->session_token);
    e.ca_file = str(endpoint->ca_file);
    e.verify_tls = endpoint->verify_tls != 0;
    // A timeout of 0 would fail every call: 0 is the default instead.
    e.connect_timeout = endpoint->connect_timeout_ms != 0 ? std::chrono::milliseconds(endpoint->connect_timeout_ms)
                                                          : defaults.connect_timeout;
    e.request_timeout = endpoint->request_timeout_ms != 0 ? std::chrono::milliseconds(endpoint->request_timeout_ms)
                                                          : defaults.request_timeout;
    e.max_attempts = endpoint->max_attempts;
    e.retry_base = std::chrono::milliseconds(endpoint->retry_base_ms);
    *client = new shmq_client{shmq::Client(e)};
    return SHMQ_OK;
  });
}

const char* shmq_client_endpoint_url(const shmq_client* client) {
  return client ? client->client.endpoint_url().c_str() : "";
}

void shmq_client_close(shmq_client* client) { delete client; }

int shmq_create_queue(shmq_client* client, const char* name, const shmq_attribute* attributes, size_t count) {
  if (!client || !name || (count > 0 && !attributes)) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    client->client.create_queue(name, attributes_of(attributes, count));
    return SHMQ_OK;
  });
}

int shmq_delete_queue(shmq_client* client, const char* name) {
  if (!client || !name) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    client->client.delete_queue(name);
    return SHMQ_OK;
  });
}

int shmq_list_queues(shmq_client* client, const char* prefix, shmq_list** names) {
  if (!client || !names) return SHMQ_INVALID_ARGUMENT;
  *names = nullptr;
  return guarded([&]() -> int {
    std::vector<std::pair<std::string, std::string>> pairs;
    for (std::string& name : client->client.list_queues(prefix ? prefix : "")) pairs.emplace_back(std::move(name), "");
    *names = make_list(pairs, true);
    return SHMQ_OK;
  });
}

int shmq_get_queue_attributes(shmq_client* client, const char* name, shmq_list** attributes) {
  if (!client || !name || !attributes) return SHMQ_INVALID_ARGUMENT;
  *attributes = nullptr;
  return guarded([&]() -> int {
    const shmq::Attributes got = client->client.get_queue_attributes(name);
    *attributes = make_list({got.begin(), got.end()}, false);
    return SHMQ_OK;
  });
}

int shmq_set_queue_attributes(shmq_client* client, const char* name, const shmq_attribute* attributes, size_t count) {
  if (!client || !name || (count > 0 && !attributes)) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    client->client.set_queue_attributes(name, attributes_of(attributes, count));
    return SHMQ_OK;
  });
}

int shmq_purge_queue(shmq_client* client, const char* name, uint64_t* purged) {
  if (!client || !name) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    const std::uint64_t n = client->client.purge_queue(name);
    if (purged) *purged = n;
    return SHMQ_OK;
  });
}

void shmq_list_free(shmq_list* list) {
  if (list) delete static_cast<ListStorage*>(list->reserved);
}

// ---- Queues ----

int shmq_queue_open(shmq_client* client, const char* name, shmq_queue** queue) {
  if (!client || !name || !queue) return SHMQ_INVALID_ARGUMENT;
  *queue = nullptr;
  return guarded([&]() -> int {
    *queue = new shmq_queue{client->client.open_queue(name)};
    return SHMQ_OK;
  });
}

void shmq_queue_close(shmq_queue* queue) { delete queue; }

const char* shmq_queue_name(const shmq_queue* queue) { return queue ? queue->queue.name().c_str() : ""; }

void shmq_queue_counts(const shmq_queue* queue, uint64_t* visible, uint64_t* in_flight, uint64_t* delayed) {
  const shmq::QueueCounts c = queue ? queue->queue.counts() : shmq::QueueCounts{};
  if (visible) *visible = c.visible;
  if (in_flight) *in_flight = c.in_flight;
  if (delayed) *delayed = c.delayed;
}

void shmq_queue_set_lock_wait(shmq_queue* queue, uint64_t microseconds) {
  if (!queue) return;
  // 0 is "as long as it takes", the C++ API's default.
  queue->queue.set_lock_wait(microseconds == 0 ? std::chrono::microseconds::max()
                                               : std::chrono::microseconds(static_cast<std::int64_t>(
                                                     std::min<uint64_t>(microseconds, INT64_MAX))));
}

// ---- Messages ----

shmq_send_options shmq_send_options_default(void) { return shmq_send_options{nullptr, nullptr, -1, nullptr, 0}; }

shmq_receive_options shmq_receive_options_default(void) { return shmq_receive_options{1, -1, -1}; }

int shmq_send(shmq_queue* queue, const void* body, size_t body_len, const shmq_send_options* options,
              shmq_send_result* result) {
  if (!queue || (body_len > 0 && !body)) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    // Kept by each thread: a send of a message without options or attributes
    // allocates nothing once the thread has sent one.
    thread_local shmq::SendOptions send_options;
    thread_local shmq::SendResult sent;
    if (const int status = options_of(options, send_options)) return status;
    const std::error_code ec =
        queue->queue.send(std::string_view(static_cast<const char*>(body), body_len), sent, send_options);
    if (ec) return status_of(ec);
    if (result) {
      copy_field(result->message_id, sent.message_id);
      copy_field(result->sequence_number, sent.sequence_number);
      result->duplicate = sent.duplicate ? 1 : 0;
    }
    return SHMQ_OK;
  });
}

int shmq_send_batch(shmq_queue* queue, const shmq_send_entry* entries, size_t count, shmq_batch_result* results) {
  if (!queue || (count > 0 && (!entries || !results))) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    std::vector<shmq::SendEntry> batch(count);
    for (std::size_t i = 0; i < count; ++i) {
      const shmq_send_entry& e = entries[i];
      if (e.body_len > 0 && !e.body) return SHMQ_INVALID_ARGUMENT;
      batch[i].id = e.id ? std::string(e.id) : std::to_string(i);
      batch[i].body.assign(static_cast<const char*>(e.body), e.body_len);
      if (const int status = options_of(&e.options, batch[i].options)) return status;
    }
    std::vector<shmq::BatchEntryResult> out;
    if (const std::error_code ec = queue->queue.send_batch(batch, out)) return status_of(ec);
    for (std::size_t i = 0; i < count && i < out.size(); ++i) {
      results[i].status = status_of(out[i].error);
      copy_field(results[i].message_id, out[i].message_id);
      copy_field(results[i].sequence_number, out[i].sequence_number);
      results[i].duplicate = out[i].duplicate ? 1 : 0;
    }
    return SHMQ_OK;
  });
}

int shmq_receive(shmq_queue* queue, const shmq_receive_options* options, shmq_messages** messages) {
  if (!queue || !messages) return SHMQ_INVALID_ARGUMENT;
  *messages = nullptr;
  return guarded([&]() -> int {
    shmq::ReceiveOptions receive_options;
    if (const int status = receive_options_of(options, receive_options)) return status;
    auto storage = std::make_unique<MessagesStorage>();
    if (const std::error_code ec = queue->queue.receive(storage->held, receive_options)) return status_of(ec);
    storage->views.resize(storage->held.size());
    storage->attributes.resize(storage->held.size());
    for (std::size_t i = 0; i < storage->held.size(); ++i) {
      view_of(storage->held[i], storage->attributes[i], storage->views[i]);
    }
    storage->messages.count = storage->views.size();
    storage->messages.messages = storage->views.empty() ? nullptr : storage->views.data();
    storage->messages.reserved = storage.get();
    *messages = &storage.release()->messages;
    return SHMQ_OK;
  });
}

void shmq_messages_free(shmq_messages* messages) {
  if (messages) delete static_cast<MessagesStorage*>(messages->reserved);
}

int shmq_receive_into(shmq_queue* queue, const shmq_receive_options* options, void* body, size_t body_cap,
                      size_t* body_len, char* receipt_handle, char* message_id, int* received) {
  if (!queue || !body_len || !receipt_handle || !received || (body_cap > 0 && !body)) return SHMQ_INVALID_ARGUMENT;
  *received = 0;
  *body_len = 0;
  receipt_handle[0] = '\0';
  return guarded([&]() -> int {
    shmq::ReceiveOptions receive_options;
    if (const int status = receive_options_of(options, receive_options)) return status;
    receive_options.max_messages = 1;
    // Each thread keeps its Message: its storage is reused by the next receive.
    thread_local std::array<shmq::Message, 1> slot;
    std::size_t got = 0;
    if (const std::error_code ec = queue->queue.receive_into(slot, got, receive_options)) return status_of(ec);
    if (got == 0) return SHMQ_OK;
    const shmq::Message& m = slot[0];
    if (m.receipt_handle.size() >= SHMQ_RECEIPT_HANDLE_SIZE) {
      // Longer than SQS allows (an endpoint that is not quite SQS): a cut
      // handle would name nothing, and the message would stay in flight
      // with no way to delete it. Give it back instead.
      (void)queue->queue.change_visibility(m.receipt_handle, 0);
      return SHMQ_BUFFER_TOO_SMALL;
    }
    *received = 1;
    *body_len = m.body.size();
    std::memcpy(receipt_handle, m.receipt_handle.data(), m.receipt_handle.size());
    receipt_handle[m.receipt_handle.size()] = '\0';
    if (message_id) {
      const std::size_t id_len = std::min<std::size_t>(m.message_id.size(), SHMQ_MESSAGE_ID_SIZE - 1);
      std::memcpy(message_id, m.message_id.data(), id_len);
      message_id[id_len] = '\0';
    }
    if (m.body.size() > body_cap) return SHMQ_BUFFER_TOO_SMALL;
    if (!m.body.empty()) std::memcpy(body, m.body.data(), m.body.size());
    return SHMQ_OK;
  });
}

int shmq_delete(shmq_queue* queue, const char* receipt_handle) {
  if (!queue || !receipt_handle) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int { return status_of(queue->queue.delete_message(receipt_handle)); });
}

int shmq_change_visibility(shmq_queue* queue, const char* receipt_handle, uint32_t seconds) {
  if (!queue || !receipt_handle) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int { return status_of(queue->queue.change_visibility(receipt_handle, seconds)); });
}

int shmq_delete_batch(shmq_queue* queue, const char* const* receipt_handles, size_t count, int* statuses) {
  if (!queue || (count > 0 && (!receipt_handles || !statuses))) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    const std::vector<shmq::HandleEntry> entries = handle_entries(receipt_handles, nullptr, count);
    std::vector<shmq::BatchEntryResult> out;
    if (const std::error_code ec = queue->queue.delete_batch(entries, out)) return status_of(ec);
    for (std::size_t i = 0; i < count && i < out.size(); ++i) statuses[i] = status_of(out[i].error);
    return SHMQ_OK;
  });
}

int shmq_change_visibility_batch(shmq_queue* queue, const char* const* receipt_handles, const uint32_t* seconds,
                                 size_t count, int* statuses) {
  if (!queue || (count > 0 && (!receipt_handles || !seconds || !statuses))) return SHMQ_INVALID_ARGUMENT;
  return guarded([&]() -> int {
    const std::vector<shmq::HandleEntry> entries = handle_entries(receipt_handles, seconds, count);
    std::vector<shmq::BatchEntryResult> out;
    if (const std::error_code ec = queue->queue.change_visibility_batch(entries, out)) return status_of(ec);
    for (std::size_t i = 0; i < count && i < out.size(); ++i) statuses[i] = status_of(out[i].error);
    return SHMQ_OK;
  });
}

}  // extern "C"
