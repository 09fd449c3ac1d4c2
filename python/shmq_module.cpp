// shmq._shmq: shmq::Client and shmq::Queue as Python classes. The package
// shmq (python/shmq/__init__.py) re-exports them and defines the exception
// classes raised here (one table, code name to class).
//
// The GIL is released around every call that can block: admin calls (a
// round trip to shmqd) and the wait of a receive (a long poll). Calls that
// do not block (send, delete, change visibility, their batches, a receive
// that finds messages at once) keep it: releasing it for a few hundred
// nanoseconds of work would hand it to any busy Python thread, which keeps
// it for its switch interval (5 ms), once per call. A remote client's
// calls (an endpoint over HTTP) all block, so each releases it. Arguments
// become C++ values before a release and results Python objects after it.
// Objects shared with a call without the GIL (the Client, the Queue) are
// copied first, so that a close() from another thread never frees what it
// uses.
#include <pybind11/operators.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "shmq/shmq.hpp"

namespace py = pybind11;
using namespace std::chrono_literals;

namespace {

// SQS's longest WaitTimeSeconds.
constexpr double kMaxWaitSeconds = 20.0;
// A long poll is cut into waits this long, between which Ctrl-C (a pending
// signal) is looked at: one wait blocks with the GIL released, where the
// interpreter cannot run signal handlers.
constexpr auto kSignalCheckInterval = 200ms;

// The exception classes the package registers (_set_error_classes): its base
// class and a dict from code name ("queue_does_not_exist") to subclass.
// Strong references kept for the life of the process: the interpreter never
// unloads an extension module.
struct ErrorClasses {
  PyObject* base = nullptr;
  PyObject* by_code = nullptr;  // dict
};

ErrorClasses& error_classes() {
  static ErrorClasses classes;
  return classes;
}

// The exception object for a shmq error code: the registered class for its
// name (else the base class) called with (message, code name).
py::object make_error(const std::error_code& ec, const std::string& message) {
  const ErrorClasses& classes = error_classes();
  const std::string name = shmq::errc_name(ec);
  if (classes.base == nullptr) return py::reinterpret_borrow<py::object>(PyExc_RuntimeError)(message);
  PyObject* cls = PyDict_GetItemString(classes.by_code, name.c_str());  // borrowed
  if (cls == nullptr) cls = classes.base;
  return py::reinterpret_borrow<py::object>(cls)(message, name);
}

// Throws the error ec stands for; the translator below raises it in Python.
[[noreturn]] void throw_error(const std::error_code& ec, const std::string& context) {
  throw std::system_error(ec, context);
}

void check(const std::error_code& ec, const char* what, const std::string& queue) {
  if (ec) throw_error(ec, std::string(what) + " (queue " + queue + ")");
}

// std::system_error of shmq's category (admin calls, and the data path's
// codes thrown above) as the package's exception classes; other
// categories (errno) as OSError.
void translate_exception(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const std::system_error& e) {
    if (e.code().category() != shmq::error_category()) {
      PyErr_SetString(PyExc_OSError, e.what());
      return;
    }
    try {
      py::object error = make_error(e.code(), e.what());
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    } catch (py::error_already_set& failed) {  // the class itself failed: raise what it raised
      failed.restore();
    }
  }
}

// The bytes of a body or binary value given as bytes, str (UTF-8),
// bytearray or memoryview: bytes and str read in place (they are immutable
// and the caller holds them), the others copied into `storage`.
std::string_view bytes_of(py::handle value, std::string& storage, const char* what) {
  if (PyBytes_Check(value.ptr())) {
    char* data = nullptr;
    Py_ssize_t size = 0;
    PyBytes_AsStringAndSize(value.ptr(), &data, &size);
    return {data, static_cast<std::size_t>(size)};
  }
  if (PyUnicode_Check(value.ptr())) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(value.ptr(), &size);
    if (data == nullptr) throw py::error_already_set();
    return {data, static_cast<std::size_t>(size)};
  }
  if (PyObject_CheckBuffer(value.ptr())) {
    const auto copy = py::reinterpret_steal<py::bytes>(PyBytes_FromObject(value.ptr()));  // any layout
    if (!copy) throw py::error_already_set();
    storage = static_cast<std::string>(copy);
    return storage;
  }
  throw py::type_error(std::string(what) + " must be bytes or str, not " +
                       std::string(py::str(py::type::handle_of(value).attr("__name__"))));
}

std::string bytes_copy(py::handle value, const char* what) {
  std::string storage;
  const std::string_view view = bytes_of(value, storage, what);
  return storage.empty() ? std::string(view) : std::move(storage);
}

bool is_binary_type(std::string_view data_type) { return data_type.starts_with("Binary"); }

// A message attribute from Python: str (String), int or float (Number),
// bytes-like (Binary), a MessageAttribute, a (data_type, value) pair, or
// boto3's {"DataType": ..., "StringValue" | "BinaryValue": ...}.
shmq::MessageAttributeValue to_attribute(py::handle value) {
  if (py::isinstance<shmq::MessageAttributeValue>(value)) return value.cast<shmq::MessageAttributeValue>();
  shmq::MessageAttributeValue a;
  const auto typed = [&a](std::string data_type, py::handle v) {
    a.data_type = std::move(data_type);
    if (is_binary_type(a.data_type)) {
      a.binary_value = bytes_copy(v, "a Binary attribute value");
    } else if (py::isinstance<py::str>(v)) {
      a.string_value = v.cast<std::string>();
    } else if (PyNumber_Check(v.ptr()) && !PyBool_Check(v.ptr())) {
      a.string_value = py::str(v).cast<std::string>();
    } else {
      throw py::type_error("a " + a.data_type + " attribute value must be str");
    }
  };
  if (PyBool_Check(value.ptr())) {
    throw py::type_error("SQS has no boolean attributes: give \"true\" or a (\"Number\", 1) pair");
  } else if (py::isinstance<py::str>(value)) {
    a.data_type = "String";
    a.string_value = value.cast<std::string>();
  } else if (PyLong_Check(value.ptr()) || PyFloat_Check(value.ptr())) {
    a.data_type = "Number";
    a.string_value = py::str(value).cast<std::string>();
  } else if (PyBytes_Check(value.ptr()) || PyByteArray_Check(value.ptr()) || PyMemoryView_Check(value.ptr())) {
    a.data_type = "Binary";
    a.binary_value = bytes_copy(value, "a Binary attribute value");
  } else if (py::isinstance<py::tuple>(value) && py::len(value) == 2) {
    typed(value[py::int_(0)].cast<std::string>(), value[py::int_(1)]);
  } else if (py::isinstance<py::dict>(value) && value.contains("DataType")) {
    const std::string data_type = value["DataType"].cast<std::string>();
    const char* key = is_binary_type(data_type) ? "BinaryValue" : "StringValue";
    if (!value.contains(key)) throw py::value_error(std::string("a ") + data_type + " attribute needs " + key);
    typed(data_type, value[key]);
  } else {
    throw py::type_error("a message attribute is str, int, float, bytes, a MessageAttribute or (data_type, value)");
  }
  return a;
}

shmq::MessageAttributes to_attributes(const std::optional<py::dict>& attributes) {
  shmq::MessageAttributes out;
  if (!attributes) return out;
  for (const auto& [name, value] : *attributes) out.emplace(py::str(name).cast<std::string>(), to_attribute(value));
  return out;
}

py::object attribute_value(const shmq::MessageAttributeValue& a) {
  if (is_binary_type(a.data_type)) return py::bytes(a.binary_value);
  return py::str(a.string_value);
}

// Queue attributes from Python: values as SQS writes them, from str, bool
// ("true"/"false"), int, or a dict or list (JSON, as RedrivePolicy takes).
shmq::Attributes to_queue_attributes(const std::optional<py::dict>& attributes) {
  shmq::Attributes out;
  if (!attributes) return out;
  for (const auto& [name, value] : *attributes) {
    std::string text;
    if (PyBool_Check(value.ptr())) {
      text = value.ptr() == Py_True ? "true" : "false";
    } else if (py::isinstance<py::dict>(value) || py::isinstance<py::list>(value)) {
      text = py::module_::import("json").attr("dumps")(value).cast<std::string>();
    } else {
      text = py::str(value).cast<std::string>();
    }
    out.emplace(py::str(name).cast<std::string>(), std::move(text));
  }
  return out;
}

py::object none_if_empty(const std::string& s) { return s.empty() ? py::object(py::none()) : py::object(py::str(s)); }

// Seconds (int or float) as the library's milliseconds, checked against SQS's range.
std::chrono::milliseconds to_wait(double seconds) {
  if (!(seconds >= 0.0 && seconds <= kMaxWaitSeconds)) {
    throw_error(shmq::Errc::invalid_parameter_value, "wait_time must be 0 to 20 seconds");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

// Runs a data-path call: with the GIL for a local queue (the call does not
// block), without it for a remote one (an HTTP round trip), on a copy of the
// queue so that a close() from another thread cannot free it meanwhile.
// `call` must not touch Python objects.
template <class F>
auto data_path(shmq::Queue& queue, F&& call) {
  if (!queue.remote()) return call(queue);
  shmq::Queue copy = queue;
  py::gil_scoped_release release;
  return call(copy);
}

// A Python Queue: the mapped queue until close().
class PyQueue {
 public:
  explicit PyQueue(shmq::Queue queue) : queue_(std::move(queue)), name_(queue_->name()), remote_(queue_->remote()) {}

  // The queue, for a call that keeps the GIL; ValueError once closed.
  shmq::Queue& get() {
    if (!queue_) throw py::value_error("queue " + name_ + " is closed");
    return *queue_;
  }
  // A copy of the queue (they share the mapping), for a call without the GIL
  // or a Message; ValueError once closed.
  shmq::Queue share() { return get(); }
  void close() { queue_.reset(); }
  const std::string& name() const { return name_; }
  bool remote() const { return remote_; }
  bool closed() const { return !queue_; }

 private:
  std::optional<shmq::Queue> queue_;
  std::string name_;
  bool remote_ = false;
};

// A received message, with the queue it came from for delete() and change_visibility().
struct PyMessage {
  shmq::Message m;
  shmq::Queue queue;
};

// One entry's outcome of a batch call; error is None or an (unraised) Error.
struct PyBatchResult {
  std::string id;
  py::object error;
  std::string message_id;
  std::string sequence_number;
  bool duplicate = false;
};

std::vector<PyBatchResult> to_batch_results(std::vector<shmq::BatchEntryResult>& results) {
  std::vector<PyBatchResult> out;
  out.reserve(results.size());
  for (shmq::BatchEntryResult& r : results) {
    py::object error = py::none();
    if (r.error) error = make_error(r.error, r.error.message());
    out.push_back(
        {std::move(r.id), std::move(error), std::move(r.message_id), std::move(r.sequence_number), r.duplicate});
  }
  return out;
}

// A receipt handle given as str or as a Message.
std::string handle_of(py::handle h) {
  if (py::isinstance<PyMessage>(h)) return h.cast<const PyMessage&>().m.receipt_handle;
  if (py::isinstance<py::str>(h)) return h.cast<std::string>();
  throw py::type_error("a receipt handle is a str or a Message");
}

shmq::SendOptions send_options(const std::optional<std::string>& group_id,
                               const std::optional<std::string>& deduplication_id,
                               std::optional<std::uint32_t> delay_seconds, const std::optional<py::dict>& attributes,
                               const std::optional<std::string>& trace_header) {
  shmq::SendOptions options;
  options.delay_seconds = delay_seconds;
  if (group_id) options.group_id = *group_id;
  if (deduplication_id) options.deduplication_id = *deduplication_id;
  if (trace_header) options.trace_header = *trace_header;
  options.attributes = to_attributes(attributes);
  return options;
}

shmq::SendResult send(PyQueue& self, const py::object& body, const std::optional<std::string>& group_id,
                      const std::optional<std::string>& deduplication_id, std::optional<std::uint32_t> delay_seconds,
                      const std::optional<py::dict>& attributes, const std::optional<std::string>& trace_header) {
  std::string storage;
  const std::string_view text = bytes_of(body, storage, "body");
  const shmq::SendOptions options = send_options(group_id, deduplication_id, delay_seconds, attributes, trace_header);
  shmq::SendResult result;
  const std::error_code ec = data_path(self.get(), [&](shmq::Queue& q) { return q.send(text, result, options); });
  check(ec, "send", self.name());
  return result;
}

template <class T>
std::optional<T> optional_item(const py::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return std::nullopt;
  return d[key].cast<T>();
}

// Entries: bodies, or dicts with "body" and optionally "id" (default: the
// entry's index), "group_id", "deduplication_id", "delay_seconds", "attributes".
std::vector<PyBatchResult> send_batch(PyQueue& self, const py::iterable& entries) {
  std::vector<shmq::SendEntry> batch;
  for (py::handle entry : entries) {
    shmq::SendEntry e;
    e.id = std::to_string(batch.size());
    if (py::isinstance<py::dict>(entry)) {
      const py::dict d = py::reinterpret_borrow<py::dict>(entry);
      if (!d.contains("body")) throw py::value_error("a send_batch entry needs a \"body\"");
      e.body = bytes_copy(d["body"], "body");
      if (auto id = optional_item<std::string>(d, "id")) e.id = *id;
      e.options =
          send_options(optional_item<std::string>(d, "group_id"), optional_item<std::string>(d, "deduplication_id"),
                       optional_item<std::uint32_t>(d, "delay_seconds"), optional_item<py::dict>(d, "attributes"),
                       optional_item<std::string>(d, "trace_header"));
    } else {
      e.body = bytes_copy(entry, "body");
    }
    batch.push_back(std::move(e));
  }
  std::vector<shmq::BatchEntryResult> results;
  const std::error_code ec = data_path(self.get(), [&](shmq::Queue& q) { return q.send_batch(batch, results); });
  check(ec, "send_batch", self.name());
  return to_batch_results(results);
}

// A remote queue's receive: one ReceiveMessage call for the whole wait,
// without the GIL. SQS long-polls in whole seconds and counts (and bills)
// every call, so the wait is not cut into slices; a pending signal (Ctrl-C)
// raises when the call returns. No wait_time: the queue's own
// ReceiveMessageWaitTimeSeconds, as the endpoint has it now.
std::vector<shmq::Message> receive_remote(shmq::Queue& q, shmq::ReceiveOptions options, std::optional<double> wait_time,
                                          const std::string& name) {
  if (wait_time) options.wait_time = to_wait(*wait_time);
  std::vector<shmq::Message> got;
  std::error_code ec;
  {
    py::gil_scoped_release release;
    ec = q.receive(got, options);
  }
  check(ec, "receive", name);
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  return got;
}

// Looks once without waiting, with the GIL; if that finds nothing, waits
// without it, in slices of kSignalCheckInterval so that a pending signal
// (Ctrl-C) raises between them, until a slice brings messages. A remote
// queue: receive_remote.
py::list receive(PyQueue& self, std::uint32_t max_messages, std::optional<double> wait_time,
                 std::optional<std::uint32_t> visibility_timeout) {
  shmq::Queue q = self.share();
  shmq::ReceiveOptions options{.max_messages = max_messages, .visibility_timeout = visibility_timeout};
  if (q.remote()) {
    py::list out;
    for (shmq::Message& m : receive_remote(q, options, wait_time, self.name()))
      out.append(py::cast(PyMessage{std::move(m), q}));
    return out;
  }
  const std::chrono::milliseconds wait =
      wait_time ? to_wait(*wait_time) : std::chrono::duration_cast<std::chrono::milliseconds>(q.receive_wait_time());
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::vector<shmq::Message> got;
  options.wait_time = 0ms;
  check(q.receive(got, options), "receive", self.name());
  while (got.empty() && wait > 0ms) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    options.wait_time = std::clamp(left, 0ms, std::chrono::milliseconds(kSignalCheckInterval));
    std::error_code ec;
    {
      py::gil_scoped_release release;
      ec = q.receive(got, options);
    }
    check(ec, "receive", self.name());
    if (left <= kSignalCheckInterval) break;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
  py::list out;
  for (shmq::Message& m : got) out.append(py::cast(PyMessage{std::move(m), q}));
  return out;
}

void delete_message(shmq::Queue& queue, const std::string& handle) {
  const std::error_code ec = data_path(queue, [&](shmq::Queue& q) { return q.delete_message(handle); });
  check(ec, "delete", queue.name());
}

void change_visibility(shmq::Queue& queue, const std::string& handle, std::uint32_t seconds) {
  const std::error_code ec = data_path(queue, [&](shmq::Queue& q) { return q.change_visibility(handle, seconds); });
  check(ec, "change_visibility", queue.name());
}

// Entries: receipt handles or Messages (delete_batch), or (handle or
// Message, seconds) pairs (change_visibility_batch); ids are their indices.
std::vector<PyBatchResult> handle_batch(PyQueue& self, const py::iterable& entries, bool with_seconds) {
  std::vector<shmq::HandleEntry> batch;
  for (py::handle entry : entries) {
    shmq::HandleEntry e;
    e.id = std::to_string(batch.size());
    if (with_seconds) {
      const py::tuple pair = py::reinterpret_borrow<py::object>(entry).cast<py::tuple>();
      if (pair.size() != 2) throw py::value_error("a change_visibility_batch entry is (handle, seconds)");
      e.receipt_handle = handle_of(pair[0]);
      e.visibility_timeout = pair[1].cast<std::uint32_t>();
    } else {
      e.receipt_handle = handle_of(entry);
    }
    batch.push_back(std::move(e));
  }
  std::vector<shmq::BatchEntryResult> results;
  const std::error_code ec = data_path(self.get(), [&](shmq::Queue& q) {
    return with_seconds ? q.change_visibility_batch(batch, results) : q.delete_batch(batch, results);
  });
  check(ec, with_seconds ? "change_visibility_batch" : "delete_batch", self.name());
  return to_batch_results(results);
}

// A Python Client: the connection to the namespace's shmqd, or the remote
// endpoint, until close().
class PyClient {
 public:
  explicit PyClient(shmq::Client client)
      : client_(std::make_shared<shmq::Client>(std::move(client))),
        ns_(client_->ns()),
        url_(client_->endpoint_url()),
        remote_(client_->remote()) {}

  // The client for one call; ValueError once closed.
  std::shared_ptr<shmq::Client> get() const {
    if (!client_) throw py::value_error("the client of " + describe() + " is closed");
    return client_;
  }
  void close() { client_.reset(); }
  const std::string& ns() const { return ns_; }
  const std::string& url() const { return url_; }
  bool remote() const { return remote_; }
  bool closed() const { return !client_; }
  std::string describe() const { return remote_ ? "endpoint " + url_ : "namespace " + ns_; }

 private:
  std::shared_ptr<shmq::Client> client_;
  std::string ns_;   // empty for a remote client
  std::string url_;  // empty for a local client
  bool remote_ = false;
};

// Seconds given to Client(), as milliseconds: finite, and above 0 unless
// `zero_ok`.
std::optional<std::chrono::milliseconds> to_duration(std::optional<double> seconds, const char* what, bool zero_ok) {
  if (!seconds) return std::nullopt;
  const double s = *seconds;
  if (!std::isfinite(s) || s < 0.0 || (s == 0.0 && !zero_ok) || s > 86400.0) {
    throw py::value_error(std::string(what) +
                          (zero_ok ? " must be 0 to 86400 seconds" : " must be above 0 and at most 86400 seconds"));
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(s * 1000.0)));
}

// What Client() takes besides the namespace: the endpoint and its options.
struct EndpointArgs {
  std::optional<std::string> url;
  std::optional<std::string> region, profile, access_key_id, secret_access_key, session_token, ca_file;
  bool verify_tls = true;
  std::optional<double> connect_timeout, request_timeout;
  std::optional<std::uint32_t> max_attempts;
  std::optional<double> retry_base;

  // Whether an option other than the URL was given.
  bool any_option() const {
    return region || profile || access_key_id || secret_access_key || session_token || ca_file || !verify_tls ||
           connect_timeout || request_timeout || max_attempts || retry_base;
  }

  shmq::Endpoint endpoint(std::string endpoint_url) const {
    shmq::Endpoint e;
    e.url = std::move(endpoint_url);
    e.region = region.value_or("");
    e.profile = profile.value_or("");
    e.access_key_id = access_key_id.value_or("");
    e.secret_access_key = secret_access_key.value_or("");
    e.session_token = session_token.value_or("");
    e.ca_file = ca_file.value_or("");
    e.verify_tls = verify_tls;
    if (auto d = to_duration(connect_timeout, "connect_timeout", false)) e.connect_timeout = *d;
    if (auto d = to_duration(request_timeout, "request_timeout", false)) e.request_timeout = *d;
    e.max_attempts = max_attempts.value_or(0);
    if (auto d = to_duration(retry_base, "retry_base", true)) e.retry_base = *d;
    return e;
  }
};

// shmq.Client(namespace=None, *, endpoint=None, ...): a namespace's daemon
// whatever SHMQ_ENDPOINT says; an endpoint; or, given neither, what C++'s
// Client() does (SHMQ_ENDPOINT, else namespace "default"), with the options
// given applied to SHMQ_ENDPOINT's endpoint.
std::unique_ptr<PyClient> make_client(const std::optional<std::string>& ns, const EndpointArgs& args) {
  if (ns && args.url) throw py::value_error("shmq.Client: give a namespace or an endpoint, not both");
  std::optional<shmq::Endpoint> endpoint;
  if (args.url) {
    endpoint = args.endpoint(*args.url);
  } else if (args.any_option()) {
    const char* from_environment = std::getenv("SHMQ_ENDPOINT");
    if (ns || from_environment == nullptr || *from_environment == '\0') {
      throw py::value_error(
          "shmq.Client: endpoint options (region, access_key_id, ...) need an endpoint: give endpoint=URL or set "
          "SHMQ_ENDPOINT");
    }
    endpoint = args.endpoint(from_environment);
  }
  py::gil_scoped_release release;  // connecting to a daemon blocks; so may reading ~/.aws
  if (endpoint) return std::make_unique<PyClient>(shmq::Client(*endpoint));
  if (ns) return std::make_unique<PyClient>(shmq::Client(shmq::Client::Options{*ns}));
  return std::make_unique<PyClient>(shmq::Client());
}

// Runs an admin call without the GIL.
template <class F>
auto admin(const PyClient& self, F&& call) {
  std::shared_ptr<shmq::Client> client = self.get();
  py::gil_scoped_release release;
  return call(*client);
}

py::object self_object(py::object self) { return self; }

}  // namespace

PYBIND11_MODULE(_shmq, m) {
  m.doc() = "shmq's C++ client library (libshmq) for Python; use it through the package shmq.";
  py::register_exception_translator(translate_exception);

  m.def(
      "_set_error_classes",
      [](py::object base, py::dict by_code) {
        ErrorClasses& classes = error_classes();
        Py_XDECREF(classes.base);
        Py_XDECREF(classes.by_code);
        classes.base = base.release().ptr();
        classes.by_code = by_code.release().ptr();
      },
      "Sets the exception classes raised for shmq error codes: base, and a dict from code name to class.");
  m.def(
      "_error_names",
      [] {
        std::vector<std::string> names;
        for (int value = 1;; ++value) {
          const std::string name = shmq::errc_name({value, shmq::error_category()});
          if (name.empty()) break;
          names.push_back(name);
        }
        return names;
      },
      "The names of the library's error codes, in the order of their numbers.");
  m.attr("__version__") = SHMQ_VERSION;

  py::class_<shmq::MessageAttributeValue>(m, "MessageAttribute",
                                          "A message attribute: data_type (String, Number or Binary, with an "
                                          "optional .suffix) and value (str, or bytes for Binary).")
      .def(py::init([](std::string data_type, py::handle value) {
             return to_attribute(py::make_tuple(std::move(data_type), value));
           }),
           py::arg("data_type"), py::arg("value"))
      .def_readonly("data_type", &shmq::MessageAttributeValue::data_type)
      .def_property_readonly("value", &attribute_value)
      .def(py::self == py::self)
      .def("__repr__", [](const shmq::MessageAttributeValue& a) {
        return "MessageAttribute(" + py::repr(py::str(a.data_type)).cast<std::string>() + ", " +
               py::repr(attribute_value(a)).cast<std::string>() + ")";
      });

  py::class_<shmq::SendResult>(m, "SendResult", "What a send returns.")
      .def_readonly("message_id", &shmq::SendResult::message_id)
      .def_property_readonly(
          "sequence_number", [](const shmq::SendResult& r) { return none_if_empty(r.sequence_number); },
          "FIFO queues: the message's sequence number; else None.")
      .def_readonly("duplicate", &shmq::SendResult::duplicate,
                    "FIFO queues: the send was deduplicated; message_id is the original's.")
      .def("__repr__", [](const shmq::SendResult& r) {
        return "SendResult(message_id=" + r.message_id + (r.duplicate ? ", duplicate" : "") + ")";
      });

  py::class_<PyBatchResult>(m, "BatchResult",
                            "One entry's outcome of a batch call: ok, or error (an shmq.Error, not raised).")
      .def_readonly("id", &PyBatchResult::id)
      .def_property_readonly("ok", [](const PyBatchResult& r) { return r.error.is_none(); })
      .def_readonly("error", &PyBatchResult::error)
      .def_property_readonly("message_id", [](const PyBatchResult& r) { return none_if_empty(r.message_id); })
      .def_property_readonly("sequence_number", [](const PyBatchResult& r) { return none_if_empty(r.sequence_number); })
      .def_readonly("duplicate", &PyBatchResult::duplicate)
      .def("__repr__", [](const PyBatchResult& r) {
        return "BatchResult(id=" + r.id +
               (r.error.is_none() ? ", ok" : ", error=" + py::repr(r.error).cast<std::string>()) + ")";
      });

  py::class_<shmq::QueueCounts>(m, "QueueCounts", "Approximate message counts, read without locking.")
      .def_readonly("visible", &shmq::QueueCounts::visible)
      .def_readonly("in_flight", &shmq::QueueCounts::in_flight)
      .def_readonly("delayed", &shmq::QueueCounts::delayed)
      .def("__repr__", [](const shmq::QueueCounts& c) {
        return "QueueCounts(visible=" + std::to_string(c.visible) + ", in_flight=" + std::to_string(c.in_flight) +
               ", delayed=" + std::to_string(c.delayed) + ")";
      });

  py::class_<PyMessage>(m, "Message", "A received message.")
      .def_property_readonly("body", [](const PyMessage& p) { return py::bytes(p.m.body); })
      .def_property_readonly(
          "text", [](const PyMessage& p) { return py::str(p.m.body); }, "The body as UTF-8 text.")
      .def_property_readonly("message_id", [](const PyMessage& p) { return p.m.message_id; })
      .def_property_readonly("receipt_handle", [](const PyMessage& p) { return p.m.receipt_handle; })
      .def_property_readonly("receive_count", [](const PyMessage& p) { return p.m.receive_count; })
      .def_property_readonly("sent_timestamp_ms", [](const PyMessage& p) { return p.m.sent_timestamp_ms; })
      .def_property_readonly("first_receive_timestamp_ms",
                             [](const PyMessage& p) { return p.m.first_receive_timestamp_ms; })
      .def_property_readonly("group_id", [](const PyMessage& p) { return none_if_empty(p.m.group_id); })
      .def_property_readonly("deduplication_id", [](const PyMessage& p) { return none_if_empty(p.m.deduplication_id); })
      .def_property_readonly("sequence_number", [](const PyMessage& p) { return none_if_empty(p.m.sequence_number); })
      .def_property_readonly("trace_header", [](const PyMessage& p) { return none_if_empty(p.m.trace_header); })
      .def_property_readonly("sender_id", [](const PyMessage& p) { return p.m.sender_id; })
      .def_property_readonly("dead_letter_source_arn",
                             [](const PyMessage& p) { return none_if_empty(p.m.dead_letter_source_arn); })
      .def_property_readonly("attributes",
                             [](const PyMessage& p) {
                               py::dict out;
                               for (const auto& [name, value] : p.m.attributes) out[py::str(name)] = py::cast(value);
                               return out;
                             })
      .def(
          "delete", [](PyMessage& p) { delete_message(p.queue, p.m.receipt_handle); },
          "Deletes this message from its queue. Raises InvalidReceiptHandle if it was deleted or received again.")
      .def(
          "change_visibility",
          [](PyMessage& p, std::uint32_t seconds) { change_visibility(p.queue, p.m.receipt_handle, seconds); },
          py::arg("seconds"), "Makes this message visible again after `seconds` (0..43200).")
      .def("__repr__", [](const PyMessage& p) {
        return "Message(message_id=" + p.m.message_id + ", " + std::to_string(p.m.body.size()) + " bytes)";
      });

  py::class_<PyQueue>(m, "Queue",
                      "A queue mapped into this process: send, receive and delete work in shared memory, without "
                      "the daemon. Usable from several threads; close() (or leaving a with block) unmaps it. A "
                      "remote client's queue makes each call an SQS action over HTTP, without the GIL.")
      .def_property_readonly("name", &PyQueue::name)
      .def_property_readonly("closed", &PyQueue::closed)
      .def("close", &PyQueue::close)
      .def("__enter__", &self_object)
      .def("__exit__", [](PyQueue& self, py::args) { self.close(); })
      .def("send", &send, py::arg("body"), py::kw_only(), py::arg("group_id") = py::none(),
           py::arg("deduplication_id") = py::none(), py::arg("delay_seconds") = py::none(),
           py::arg("attributes") = py::none(), py::arg("trace_header") = py::none(),
           "Sends one message (bytes, or str as UTF-8); returns a SendResult. Does not block. Raises QueueFull, "
           "MessageTooLarge, InvalidParameter, QueueDoesNotExist.")
      .def("send_batch", &send_batch, py::arg("entries"),
           "Sends up to 10 messages: bodies, or dicts with body and id, group_id, deduplication_id, "
           "delay_seconds, attributes. Returns one BatchResult per entry.")
      .def("receive", &receive, py::arg("max_messages") = 1, py::arg("wait_time") = py::none(),
           py::arg("visibility_timeout") = py::none(),
           "Receives up to max_messages (1..10) messages, waiting up to wait_time seconds (default: the queue's "
           "ReceiveMessageWaitTimeSeconds) without holding the GIL; returns a list of Messages, empty if none came. "
           "Remote: one ReceiveMessage call, waiting in whole seconds; Ctrl-C is seen when it returns.")
      .def(
          "delete", [](PyQueue& self, py::handle handle) { delete_message(self.get(), handle_of(handle)); },
          py::arg("receipt_handle"),
          "Deletes a received message (its receipt handle or the Message). Raises InvalidReceiptHandle if the "
          "handle is not this queue's, or the message was deleted or received again since.")
      .def(
          "change_visibility",
          [](PyQueue& self, py::handle handle, std::uint32_t seconds) {
            change_visibility(self.get(), handle_of(handle), seconds);
          },
          py::arg("receipt_handle"), py::arg("seconds"),
          "Makes an in-flight message visible again after `seconds` (0..43200). Raises as delete does, or "
          "MessageNotInflight.")
      .def(
          "delete_batch", [](PyQueue& self, const py::iterable& e) { return handle_batch(self, e, false); },
          py::arg("entries"), "Deletes up to 10 messages (receipt handles or Messages); one BatchResult each.")
      .def(
          "change_visibility_batch", [](PyQueue& self, const py::iterable& e) { return handle_batch(self, e, true); },
          py::arg("entries"),
          "Changes the visibility of up to 10 messages: (receipt handle or Message, seconds) pairs.")
      .def(
          "counts", [](PyQueue& self) { return data_path(self.get(), [](shmq::Queue& q) { return q.counts(); }); },
          "Approximate counts (visible, in_flight, delayed), read without locking. Remote: a GetQueueAttributes "
          "call; all zero if it fails.")
      .def_property_readonly("remote", &PyQueue::remote, "Whether this queue is reached over HTTP (a remote client's).")
      .def("__repr__", [](const PyQueue& self) { return "<shmq.Queue " + self.name() + ">"; });

  py::class_<PyClient>(m, "Client",
                       "A connection to the shmqd of a namespace, or a client of an SQS endpoint over HTTP(S). "
                       "Admin calls go to the daemon (or the endpoint) and block on its answer (without the GIL); "
                       "open_queue maps a queue for the data path.")
      .def(py::init([](const std::optional<std::string>& ns, const std::optional<std::string>& endpoint,
                       const std::optional<std::string>& region, const std::optional<std::string>& profile,
                       const std::optional<std::string>& access_key_id,
                       const std::optional<std::string>& secret_access_key,
                       const std::optional<std::string>& session_token, const std::optional<std::string>& ca_file,
                       bool verify_tls, std::optional<double> connect_timeout, std::optional<double> request_timeout,
                       std::optional<std::uint32_t> max_attempts, std::optional<double> retry_base) {
             return make_client(
                 ns, EndpointArgs{endpoint, region, profile, access_key_id, secret_access_key, session_token, ca_file,
                                  verify_tls, connect_timeout, request_timeout, max_attempts, retry_base});
           }),
           py::arg("namespace") = py::none(), py::kw_only(), py::arg("endpoint") = py::none(),
           py::arg("region") = py::none(), py::arg("profile") = py::none(), py::arg("access_key_id") = py::none(),
           py::arg("secret_access_key") = py::none(), py::arg("session_token") = py::none(),
           py::arg("ca_file") = py::none(), py::arg("verify_tls") = true, py::arg("connect_timeout") = py::none(),
           py::arg("request_timeout") = py::none(), py::arg("max_attempts") = py::none(),
           py::arg("retry_base") = py::none(),
           "Client(namespace): the daemon of that namespace; raises DaemonUnavailable if none runs. "
           "Client(endpoint=URL, ...): an SQS endpoint (Amazon SQS, a shmqd bridge elsewhere); nothing is sent "
           "until the first call. Client(): SHMQ_ENDPOINT if set, else namespace \"default\". Endpoint options: "
           "region, profile, access_key_id, secret_access_key, session_token (default: the AWS environment and "
           "files), ca_file, verify_tls, connect_timeout and request_timeout (seconds), max_attempts (0: "
           "AWS_MAX_ATTEMPTS, else 3), retry_base (seconds).")
      .def_property_readonly(
          "namespace", [](const PyClient& self) { return none_if_empty(self.ns()); },
          "The daemon's namespace; None for a remote client.")
      .def_property_readonly(
          "endpoint_url", [](const PyClient& self) { return none_if_empty(self.url()); },
          "The endpoint's URL; None for a local client.")
      .def_property_readonly("remote", &PyClient::remote, "Whether calls go to an endpoint over HTTP.")
      .def_property_readonly("closed", &PyClient::closed)
      .def("close", &PyClient::close)
      .def("__enter__", &self_object)
      .def("__exit__", [](PyClient& self, py::args) { self.close(); })
      .def(
          "create_queue",
          [](const PyClient& self, const std::string& name, const std::optional<py::dict>& attributes,
             const std::optional<std::map<std::string, std::string>>& tags) {
            const shmq::Attributes a = to_queue_attributes(attributes);
            admin(self, [&](shmq::Client& c) { c.create_queue(name, a, std::nullopt, tags.value_or(shmq::Tags{})); });
          },
          py::arg("name"), py::arg("attributes") = py::none(), py::arg("tags") = py::none(),
          "Creates a queue, or does nothing if it exists with these attributes (QueueNameExists if they differ).")
      .def(
          "delete_queue",
          [](const PyClient& self, const std::string& name) {
            admin(self, [&](shmq::Client& c) { c.delete_queue(name); });
          },
          py::arg("name"))
      .def(
          "list_queues",
          [](const PyClient& self, const std::string& prefix) {
            return admin(self, [&](shmq::Client& c) { return c.list_queues(prefix); });
          },
          py::arg("prefix") = "")
      .def(
          "get_queue_attributes",
          [](const PyClient& self, const std::string& name, const std::vector<std::string>& names) {
            return admin(self, [&](shmq::Client& c) { return c.get_queue_attributes(name, names); });
          },
          py::arg("name"), py::arg("names") = std::vector<std::string>{"All"},
          "The queue's attributes as SQS names and writes them (str values).")
      .def(
          "set_queue_attributes",
          [](const PyClient& self, const std::string& name, const py::dict& attributes) {
            const shmq::Attributes a = to_queue_attributes(attributes);
            admin(self, [&](shmq::Client& c) { c.set_queue_attributes(name, a); });
          },
          py::arg("name"), py::arg("attributes"))
      .def(
          "purge_queue",
          [](const PyClient& self, const std::string& name) {
            return admin(self, [&](shmq::Client& c) { return c.purge_queue(name); });
          },
          py::arg("name"), "Deletes every message of the queue; returns how many.")
      .def(
          "tag_queue",
          [](const PyClient& self, const std::string& name, const shmq::Tags& tags) {
            admin(self, [&](shmq::Client& c) { c.tag_queue(name, tags); });
          },
          py::arg("name"), py::arg("tags"))
      .def(
          "untag_queue",
          [](const PyClient& self, const std::string& name, const std::vector<std::string>& keys) {
            admin(self, [&](shmq::Client& c) { c.untag_queue(name, keys); });
          },
          py::arg("name"), py::arg("keys"))
      .def(
          "list_queue_tags",
          [](const PyClient& self, const std::string& name) {
            return admin(self, [&](shmq::Client& c) { return c.list_queue_tags(name); });
          },
          py::arg("name"))
      .def(
          "open_queue",
          [](const PyClient& self, const std::string& name) {
            return PyQueue(admin(self, [&](shmq::Client& c) { return c.open_queue(name); }));
          },
          py::arg("name"), "Maps the queue for send and receive. Raises QueueDoesNotExist.")
      .def("__repr__", [](const PyClient& self) {
        return "<shmq.Client " + (self.remote() ? "endpoint=" + self.url() : "namespace=" + self.ns()) + ">";
      });
}
