#include "sqs_bridge.hpp"

#include <nlohmann/json.hpp>

namespace shmq::bridge {

namespace {

namespace http = boost::beast::http;

// GET /health: off the SQS API (no queue URL is one path segment long).
bool is_health_check(const HttpRequest& req) {
  const std::string_view target = req.target();
  return req.method() == http::verb::get && target.substr(0, target.find('?')) == "/health";
}

// GET /_aws/sqs/messages: LocalStack's path for a look at a queue.
bool is_developer_peek(const HttpRequest& req) {
  const std::string_view target = req.target();
  return req.method() == http::verb::get && target.substr(0, target.find('?')) == "/_aws/sqs/messages";
}

// 200 with the daemon's health while it serves; 503 when it does not answer
// (stopping, or its control socket gone), for load balancers and probes.
HttpResponse health_answer(Client& client) {
  HttpResponse r;
  nlohmann::json body;
  try {
    const DaemonHealth h = client.health();
    r.result(http::status::ok);
    body = {{"status", h.status},
            {"version", h.version},
            {"uptime_seconds", h.uptime_seconds},
            {"queues", h.queues},
            {"refused_queues", h.refused_queues},
            {"reaper_threads", h.reaper_threads}};
  } catch (const std::exception& e) {
    r.result(http::status::service_unavailable);
    body = {{"status", "unavailable"}, {"reason", e.what()}};
  }
  r.set(http::field::content_type, "application/json");
  r.set(http::field::cache_control, "no-store");
  r.body() = body.dump() + "\n";
  return r;
}

}  // namespace

SqsBridge::SqsBridge(BridgeOptions options) : options_(std::move(options)), client_(Client::Options{options_.ns}) {
  handler_ = std::make_unique<SqsRequestHandler>(client_, options_.sqs, options_.credentials);
  server_ = std::make_unique<HttpServer>(
      options_.http, [this](HttpRequest&& request, HttpServer::Reply reply) { handle(std::move(request), reply); },
      [this](const HttpRequest& header) {
        // ServiceUnavailable: AWS's error for a 503, a temporary failure of
        // the server (SQS's RequestThrottled is a 400 for a client's rate).
        HttpResponse answer;
        handler_->reject(header, errors::over_memory_budget(),
                         [&answer](HttpResponse&& response) { answer = std::move(response); });
        return answer;
      });
  admission_.emplace(options_.admission, server_->address(), options_.http.host, options_.sqs.advertise_url);
  if (options_.http.unix_path.empty()) handler_->set_arrival_port(server_->port());
}

SqsBridge::~SqsBridge() { stop(); }

void SqsBridge::stop() {
  if (server_) server_->stop();
  handler_.reset();
}

bool SqsBridge::admit(const HttpRequest& req, HttpServer::Reply& reply) {
  if (auto refused = admission_->refusal(req)) {
    handler_->reject(req, *refused, reply);
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
  if (is_health_check(req)) return reply(health_answer(client_));
  if (is_developer_peek(req)) return handler_->peek(std::move(req), reply);
  handler_->handle(std::move(req), reply);
}

}  // namespace shmq::bridge
