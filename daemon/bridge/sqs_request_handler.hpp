// The bridge's answer to one HTTP request, without the network: protocol
// (JSON 1.0 or Query), action and parameters decoded, the signature checked,
// the action run. SqsBridge puts it behind an HttpServer; tests and fuzzers
// call it directly.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "http_server.hpp"
#include "long_poll.hpp"
#include "metrics.hpp"
#include "sigv4.hpp"
#include "sqs_errors.hpp"
#include "sqs_service.hpp"

namespace shmq::bridge {

class SqsRequestHandler {
 public:
  // `credentials` non-empty: every request must carry a SigV4 signature by
  // one of them, scoped to `config.region`.
  SqsRequestHandler(Client& client, BridgeConfig config, const std::map<std::string, std::string>& credentials);
  ~SqsRequestHandler();  // ends pending long polls without answering them
  SqsRequestHandler(const SqsRequestHandler&) = delete;
  SqsRequestHandler& operator=(const SqsRequestHandler&) = delete;

  // Answers `request` through `reply`, exactly once: at once (on this
  // thread), or for a long poll later from a long-poll thread. Never throws
  // and never blocks on a long poll; it may block briefly on the daemon's
  // control socket. A client's mistake is a 4xx with the SQS error code; a
  // 500 InternalError means a bug.
  void handle(HttpRequest&& request, const HttpServer::Reply& reply) noexcept;

  // Answers `request` with `error` instead, in the request's protocol (the
  // bridge's admission checks refuse a request this way).
  void reject(const HttpRequest& request, const SqsError& error, const HttpServer::Reply& reply) noexcept;

  // GET /_aws/sqs/messages?QueueUrl=... (LocalStack's developer endpoint):
  // the queue's messages, looked at, not received (SqsService::peek_messages);
  // as a ReceiveMessage answer in XML, or in JSON when Accept asks for it.
  // Signed like any request when signatures are checked.
  void peek(HttpRequest&& request, const HttpServer::Reply& reply) noexcept;

  // The TCP port requests arrive on (0: a Unix socket): queue URLs name it
  // when a client's Host header names none (Ruby's aws-sdk 1.x and Perl's
  // Amazon::SQS::Simple send "Host: 127.0.0.1" to port 9324).
  void set_arrival_port(unsigned short port) noexcept { arrival_port_ = port; }

  // The SQS requests answered so far, by action and status (GET /metrics).
  const RequestMetrics& metrics() const noexcept { return metrics_; }

 private:
  BridgeConfig config_;
  RequestMetrics metrics_;  // before hub_: a long poll answered as hub_ ends still counts
  unsigned short arrival_port_ = 0;
  SqsService service_;
  std::unique_ptr<LongPollHub> hub_;
  std::optional<SigV4Verifier> verifier_;
};

}  // namespace shmq::bridge
