// The SQS HTTP bridge: serves the Amazon SQS API (AWS JSON 1.0 and Query
// protocols) on the public libshmq API, so unmodified SQS clients use the
// shared-memory queues.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http_server.hpp"
#include "request_admission.hpp"
#include "sqs_request_handler.hpp"
#include "sqs_service.hpp"

namespace shmq::bridge {

struct BridgeOptions {
  std::string ns = "default";  // the daemon namespace to serve
  HttpServer::Options http;
  BridgeConfig sqs;
  std::map<std::string, std::string> credentials;  // non-empty: verify SigV4 with these
  AdmissionOptions admission;                      // which Host and Origin values are served
  bool dashboard = true;                           // serve the web dashboard on /ui
};

// The dashboard's files by name ("index.html"), compiled in from ui/.
const std::map<std::string, std::string_view, std::less<>>& embedded_files();

class SqsBridge {
 public:
  // Connects to the namespace's daemon and listens. Throws std::system_error
  // (daemon_unavailable) or std::runtime_error (cannot listen).
  explicit SqsBridge(BridgeOptions options);
  ~SqsBridge();

  unsigned short port() const noexcept { return server_->port(); }
  const HttpServer& server() const noexcept { return *server_; }
  // Whether requests with a Host that is not the bridge's own are refused.
  bool checks_host() const noexcept { return admission_->checks_host(); }
  void start() { server_->start(); }
  void stop();

 private:
  void handle(HttpRequest&& request, HttpServer::Reply reply);
  // False when `request` is refused (Host, Origin) or already answered (a
  // CORS pre-flight); may wrap `reply` to add CORS headers.
  bool admit(const HttpRequest& request, HttpServer::Reply& reply);

  BridgeOptions options_;
  Client client_;
  std::unique_ptr<SqsRequestHandler> handler_;
  std::unique_ptr<HttpServer> server_;
  std::optional<RequestAdmission> admission_;  // set once server_ has bound its address
};

}  // namespace shmq::bridge
