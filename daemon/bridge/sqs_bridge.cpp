#include "sqs_bridge.hpp"

#include <boost/beast/http.hpp>
#include <random>

#include "sqs_errors.hpp"
#include "wire_protocol.hpp"

namespace shmq::bridge {

namespace http = boost::beast::http;
using nlohmann::json;

namespace {

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
    r.body() = result.dump();
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
    r.body() = render_query_error(e, id);
  }
  return r;
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

SqsBridge::SqsBridge(BridgeOptions options)
    : options_(std::move(options)), client_(Client::Options{options_.ns}), service_(client_, options_.sqs) {
  hub_ = std::make_unique<LongPollHub>(service_);
  if (!options_.credentials.empty()) verifier_.emplace(options_.credentials);
  server_ = std::make_unique<HttpServer>(
      options_.http, [this](HttpRequest&& request, HttpServer::Reply reply) { handle(std::move(request), reply); });
  admission_.emplace(options_.admission, server_->address(), options_.http.host, options_.sqs.advertise_url);
}

SqsBridge::~SqsBridge() { stop(); }

void SqsBridge::stop() {
  if (server_) server_->stop();
  hub_.reset();
}

bool SqsBridge::admit(const HttpRequest& req, HttpServer::Reply& reply) {
  if (auto refused = admission_->refusal(req)) {
    const Protocol protocol = req["X-Amz-Target"].empty() ? Protocol::kQuery : Protocol::kJson;
    reply(respond_error(protocol, *refused, request_id()));
    return false;
  }
  HttpResponse headers;
  if (admission_->cors(req, headers)) {
    reply(std::move(headers));
    return false;
  }
  if (headers.begin() != headers.end()) {
    reply = [reply, headers = std::move(headers)](HttpResponse&& response) {
      for (const auto& field : headers) response.set(field.name_string(), field.value());
      reply(std::move(response));
    };
  }
  return true;
}

void SqsBridge::handle(HttpRequest&& req, HttpServer::Reply reply) {
  if (!admit(req, reply)) return;
  const std::string id = request_id();
  const std::string target_header(req["X-Amz-Target"]);
  const Protocol protocol = target_header.empty() ? Protocol::kQuery : Protocol::kJson;
  std::string action;
  try {
    if (req.method() != http::verb::post && req.method() != http::verb::get) {
      raise("InvalidAction", "SQS takes POST and GET requests.");
    }
    json params;
    if (protocol == Protocol::kJson) {
      const std::string_view prefix = "AmazonSQS.";
      if (!target_header.starts_with(prefix)) raise("InvalidAction", "Unknown X-Amz-Target " + target_header);
      action = target_header.substr(prefix.size());
      params = req.body().empty() ? json::object() : json::parse(req.body(), nullptr, false);
      if (params.is_discarded() || !params.is_object())
        raise("InvalidParameterValue", "The request body is not a JSON object.");
    } else {
      const std::string_view t = req.target();
      const std::size_t q = t.find('?');
      std::string form = q == std::string_view::npos ? std::string() : std::string(t.substr(q + 1));
      if (req.method() == http::verb::post && !req.body().empty()) form += (form.empty() ? "" : "&") + req.body();
      params = parse_query_params(form);
      action = params.value("Action", "");
      if (action.empty()) raise("MissingParameter", "The request must contain the parameter Action.");
      params.erase("Action");
      params.erase("Version");
    }
    if (!SqsService::known_action(action))
      raise("InvalidAction", "The action " + action + " is not valid for this endpoint.");
    RequestContext context{std::string(req[http::field::host]), path_queue(req.target()), {}};
    // SenderId: the caller's access key when signatures are checked, else the account.
    context.sender_id = verifier_ ? verifier_->verify(req, std::chrono::system_clock::now()) : options_.sqs.account_id;
    ActionOutcome outcome = service_.call(action, params, context);
    if (!outcome.pending) return reply(respond(protocol, action, outcome.result, id));
    hub_->add(std::move(*outcome.pending), [reply, protocol, action, id](json result, std::exception_ptr error) {
      try {
        if (error) std::rethrow_exception(error);
        reply(respond(protocol, action, result, id));
      } catch (const SqsException& e) {
        reply(respond_error(protocol, e.error(), id));
      } catch (const std::exception& e) {
        reply(respond_error(protocol, sqs_error("InternalError", e.what()), id));
      }
    });
  } catch (const SqsException& e) {
    reply(respond_error(protocol, e.error(), id));
  } catch (const std::exception& e) {
    reply(respond_error(protocol, sqs_error("InternalError", e.what()), id));
  }
}

}  // namespace shmq::bridge
