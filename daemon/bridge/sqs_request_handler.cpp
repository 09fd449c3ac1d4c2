#include "sqs_request_handler.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>

#include <boost/beast/http.hpp>
#include <random>

#include "sqs_errors.hpp"
#include "wire_protocol.hpp"

namespace shmq::bridge {

namespace http = boost::beast::http;
using nlohmann::json;

namespace {

// What a caller sent, fit for one log line: at most 128 bytes, control
// characters and spaces as '?', so that no value can end the line or forge a
// field of the next.
std::string log_safe(std::string text) {
  if (text.size() > 128) text.resize(128);
  for (char& c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) c = '?';
  }
  return text;
}

enum class Protocol { kJson, kQuery };

std::string request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char text[37];
  const std::uint64_t a = rng(), b = rng();
  std::snprintf(text, sizeof(text), "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | (b >> 48 & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffull));
  return text;
}

HttpResponse respond(Protocol protocol, const std::string& action, const json& result, const std::string& id) {
  HttpResponse r{http::status::ok, 11};
  r.set("x-amzn-RequestId", id);
  if (protocol == Protocol::kJson) {
    r.set(http::field::content_type, "application/x-amz-json-1.0");
    r.body() = dump_json(result);
  } else {
    r.set(http::field::content_type, "text/xml");
    r.body() = render_query_response(action, result, id);
  }
  return r;
}

HttpResponse respond_error(Protocol protocol, const SqsError& e, const std::string& id) {
  HttpResponse r{static_cast<http::status>(e.status), 11};
  r.set("x-amzn-RequestId", id);
  if (protocol == Protocol::kJson) {
    r.set(http::field::content_type, "application/x-amz-json-1.0");
    // SDKs of the JSON protocol read the Query protocol's code from here.
    r.set("x-amzn-query-error", e.query_code + (e.sender_fault ? ";Sender" : ";Receiver"));
    r.body() = render_json_error(e);
  } else {
    r.set(http::field::content_type, "text/xml");
    r.body() = render_query_error(in_query_words(e), id);
  }
  return r;
}

// The answer for the exception being handled: an SqsException is the
// client's error; anything else is a bug in this request, a 500 for it alone.
// Rendering never throws (dump_json and the XML writer take any bytes), and
// if it ever did, the answer is a bare 500.
HttpResponse respond_exception(Protocol protocol, const std::string& id) noexcept {
  try {
    try {
      throw;
    } catch (const SqsException& e) {
      return respond_error(protocol, e.error(), id);
    } catch (const std::exception& e) {
      return respond_error(protocol, errors::internal_error(e.what()), id);
    } catch (...) {
      return respond_error(protocol, errors::unknown_exception(), id);
    }
  } catch (...) {
    HttpResponse r{http::status::internal_server_error, 11};
    return r;
  }
}

// The protocol by the body's Content-Type, as AWS tells them apart: a
// client may send a form-encoded Query request with an X-Amz-Target header
// too (Perl's Amazon::SQS::Simple does). Without a Content-Type, the header
// decides.
Protocol protocol_of(const HttpRequest& req) {
  const std::string_view type = req[http::field::content_type];
  if (type.starts_with("application/x-amz-json")) return Protocol::kJson;
  if (type.starts_with("application/x-www-form-urlencoded") || req.method() == http::verb::get) {
    return Protocol::kQuery;
  }
  return req["X-Amz-Target"].empty() ? Protocol::kQuery : Protocol::kJson;
}

// The Host header, with the port the request arrived on if it names none
// ("127.0.0.1", "[::1]"; not "127.0.0.1:9324", "[::1]:9324").
std::string host_with_port(std::string_view host, unsigned short port) {
  std::string out(host);
  if (out.empty() || port == 0) return out;
  const std::size_t bracket = out.rfind(']');
  const std::size_t colon = out.rfind(':');
  const bool has_port = colon != std::string::npos && (bracket == std::string::npos || colon > bracket) &&
                        (out.front() == '[' || out.find(':') == colon);
  if (!has_port) out += ":" + std::to_string(port);
  return out;
}

// "/<account>/<queue>" names a queue; "/" does not.
std::string path_queue(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  while (path.starts_with("/")) path.remove_prefix(1);
  const std::size_t slash = path.find('/');
  if (slash == std::string_view::npos) return {};
  std::string_view queue = path.substr(slash + 1);
  while (queue.ends_with("/")) queue.remove_suffix(1);
  return std::string(queue);
}

}  // namespace

SqsRequestHandler::SqsRequestHandler(Client& client, BridgeConfig config,
                                     const std::map<std::string, std::string>& credentials)
    : config_(std::move(config)), service_(client, config_) {
  hub_ = std::make_unique<LongPollHub>(service_);
  if (!credentials.empty()) verifier_.emplace(credentials, config_.region);
}

SqsRequestHandler::~SqsRequestHandler() = default;

void SqsRequestHandler::reject(const HttpRequest& req, const SqsError& error, const HttpServer::Reply& reply) noexcept {
  const Protocol protocol = protocol_of(req);
  try {
    reply(respond_error(protocol, error, request_id()));
  } catch (...) {
    reply(respond_exception(protocol, {}));
  }
}

void SqsRequestHandler::peek(HttpRequest&& req, const HttpServer::Reply& reply) noexcept {
  const Protocol protocol =
      req[http::field::accept].find("json") != std::string_view::npos ? Protocol::kJson : Protocol::kQuery;
  std::string id;
  try {
    id = request_id();
    if (verifier_) verifier_->verify(req, std::chrono::system_clock::now());
    const std::string_view t = req.target();
    const std::size_t q = t.find('?');
    json params = parse_query_params(q == std::string_view::npos ? std::string() : std::string(t.substr(q + 1)));
    params.erase("Action");
    params.erase("Version");
    // Not a queue URL: the queue is the QueueUrl parameter's.
    const RequestContext context{host_with_port(req[http::field::host], arrival_port_), {}, {}, {}};
    reply(respond(protocol, "ReceiveMessage", service_.peek_messages(params, context), id));
  } catch (...) {
    reply(respond_exception(protocol, id));
  }
}

void SqsRequestHandler::handle(HttpRequest&& req, const HttpServer::Reply& given) noexcept {
  std::string id;
  Protocol protocol = Protocol::kQuery;
  std::string action;
  // Once the request is answered (a long poll later, from the long-poll
  // thread): its action, status and duration go to the metrics and, with
  // --access-log, to a log line, with what was learnt of it by then.
  struct Access {
    std::string action = "unknown";  // an action the bridge serves, once known
    std::string queue = "-";
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  };
  std::shared_ptr<Access> access;
  HttpServer::Reply reply = given;
  try {
    access = std::make_shared<Access>();
    reply = [given, access, log = config_.access_log, metrics = &metrics_](HttpResponse&& response) {
      const auto took = std::chrono::steady_clock::now() - access->started;
      metrics->observe(access->action, response.result_int(), took);
      if (log) {
        spdlog::info("access action={} queue={} status={} ms={:.3f}", access->action, access->queue,
                     response.result_int(), std::chrono::duration<double, std::milli>(took).count());
      }
      given(std::move(response));
    };
  } catch (...) {
    access.reset();
    reply = given;  // out of memory: answered, not counted
  }
  try {
    id = request_id();
    const std::string target_header(req["X-Amz-Target"]);
    protocol = protocol_of(req);
    if (req.method() != http::verb::post && req.method() != http::verb::get) raise(errors::bad_method());
    json params;
    if (protocol == Protocol::kJson) {
      const std::string_view prefix = "AmazonSQS.";
      if (!target_header.starts_with(prefix)) raise(errors::unknown_target(target_header));
      action = target_header.substr(prefix.size());
      params = parse_json_params(req.body());
    } else {
      const std::string_view t = req.target();
      const std::size_t q = t.find('?');
      std::string form = q == std::string_view::npos ? std::string() : std::string(t.substr(q + 1));
      if (req.method() == http::verb::post && !req.body().empty()) form += (form.empty() ? "" : "&") + req.body();
      params = parse_query_params(form);
      const auto named = params.find("Action");
      if (named != params.end() && named->is_string()) action = named->get<std::string>();
      // A GET with no Action (a browser on / or on a queue URL): AWS's 404.
      if (action.empty() && req.method() == http::verb::get) raise(errors::unknown_operation());
      if (action.empty()) raise(errors::missing_parameter("Action"));
      params.erase("Action");
      params.erase("Version");
    }
    // Unknown, or an action of the account sent to a queue's URL.
    if (!SqsService::known_action(action) ||
        ((action == "CreateQueue" || action == "ListQueues") && !path_queue(req.target()).empty())) {
      raise(errors::invalid_action(action));
    }
    RequestContext context{host_with_port(req[http::field::host], arrival_port_),
                           path_queue(req.target()),
                           {},
                           std::string(req["X-Amzn-Trace-Id"])};
    if (access) access->action = action;
    if (access && config_.access_log) {
      const auto url = params.find("QueueUrl");
      // A queue URL's last segment is its queue.
      std::string from_url = url != params.end() && url->is_string() ? url->get<std::string>() : "";
      from_url = from_url.substr(from_url.rfind('/') + 1);
      const auto named = params.find("QueueName");  // CreateQueue, GetQueueUrl
      if (from_url.empty() && named != params.end() && named->is_string()) from_url = named->get<std::string>();
      access->queue = log_safe(!context.path_queue.empty() ? context.path_queue : from_url.empty() ? "-" : from_url);
    }
    // SenderId: the caller's access key when signatures are checked, else the account.
    context.sender_id = verifier_ ? verifier_->verify(req, std::chrono::system_clock::now()) : config_.account_id;
    ActionOutcome outcome = service_.call(action, params, context);
    if (!outcome.pending) return reply(respond(protocol, action, outcome.result, id));
    // Runs on a long-poll thread, where an exception would end the process.
    hub_->add(std::move(*outcome.pending), [reply, protocol, action, id](json result, std::exception_ptr error) {
      HttpResponse response;
      try {
        if (error) std::rethrow_exception(error);
        response = respond(protocol, action, result, id);
      } catch (...) {
        response = respond_exception(protocol, id);
      }
      reply(std::move(response));
    });
  } catch (...) {
    reply(respond_exception(protocol, id));
  }
}

}  // namespace shmq::bridge
