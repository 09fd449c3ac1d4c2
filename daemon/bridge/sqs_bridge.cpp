#include "sqs_bridge.hpp"

namespace shmq::bridge {

SqsBridge::SqsBridge(BridgeOptions options) : options_(std::move(options)), client_(Client::Options{options_.ns}) {
  handler_ = std::make_unique<SqsRequestHandler>(client_, options_.sqs, options_.credentials);
  server_ = std::make_unique<HttpServer>(
      options_.http, [this](HttpRequest&& request, HttpServer::Reply reply) { handle(std::move(request), reply); });
}

SqsBridge::~SqsBridge() { stop(); }

void SqsBridge::stop() {
  if (server_) server_->stop();
  handler_.reset();
}

void SqsBridge::handle(HttpRequest&& req, HttpServer::Reply reply) { handler_->handle(std::move(req), reply); }

}  // namespace shmq::bridge
