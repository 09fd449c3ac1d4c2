#include "sqs_bridge.hpp"

#include <nlohmann/json.hpp>

namespace shmq::bridge {

namespace {

namespace http = boost::beast::http;

// The path of a GET request ("" for any other method), without its query.
// The bridge's own endpoints are off the SQS API: no queue URL's path is one
// segment long, and /_aws/ and /ui/ are no account.
std::string_view get_path(const HttpRequest& req) {
  if (req.method() != http::verb::get) return {};
  const std::string_view target = req.target();
  return target.substr(0, target.find('?'));
}

// 200 with the daemon's health while it serves; 503 while it drains before
// a stop (--stop-drain) or when it does not answer (its control socket
// gone), for load balancers and probes.
HttpResponse health_answer(Client& client) {
  HttpResponse r;
  nlohmann::json body;
  try {
    const DaemonHealth h = client.health();
    // "stopping": the daemon drains before a stop (--stop-drain).
    r.result(h.status == "serving" ? http::status::ok : http::status::service_unavailable);
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

// GET /metrics: the Prometheus text format (metrics.hpp); 503 when the
// daemon does not answer, as a scrape target that is down.
HttpResponse metrics_answer(Client& client, const RequestMetrics& requests) {
  HttpResponse r;
  r.set(http::field::cache_control, "no-store");
  try {
    r.body() = render_metrics(client, requests);
    r.result(http::status::ok);
    r.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  } catch (const std::exception& e) {
    r.result(http::status::service_unavailable);
    r.set(http::field::content_type, "text/plain; charset=utf-8");
    r.body() = std::string("shmqd does not answer: ") + e.what() + "\n";
  }
  return r;
}

// GET /ui, /ui/FILE: the dashboard's static files, compiled in. Its scripts
// come from this origin only, and no other page may frame it.
bool dashboard_answer(std::string_view path, HttpResponse& r) {
  if (path == "/ui" || path == "/ui/") path = "/ui/index.html";
  if (!path.starts_with("/ui/")) return false;
  const auto& files = embedded_files();
  const auto file = files.find(path.substr(4));
  if (file == files.end()) return false;
  std::string_view type = "text/html; charset=utf-8";
  if (file->first.ends_with(".js")) type = "text/javascript; charset=utf-8";
  if (file->first.ends_with(".css")) type = "text/css; charset=utf-8";
  if (file->first.ends_with(".svg")) type = "image/svg+xml";
  r.result(http::status::ok);
  r.set(http::field::content_type, type);
  r.set(http::field::cache_control, "no-cache");
  r.set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
  r.set("X-Content-Type-Options", "nosniff");
  r.body() = std::string(file->second);
  return true;
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
  const std::string_view path = get_path(req);
  if (path == "/health") return reply(health_answer(client_));
  if (path == "/metrics") return reply(metrics_answer(client_, handler_->metrics()));
  if (path == "/_aws/sqs/messages") return handler_->peek(std::move(req), reply);
  if (options_.dashboard && path.starts_with("/ui")) {
    HttpResponse page;
    if (dashboard_answer(path, page)) return reply(std::move(page));
  }
  handler_->handle(std::move(req), reply);
}

}  // namespace shmq::bridge
