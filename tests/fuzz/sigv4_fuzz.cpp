// SigV4 verification on arbitrary requests: raw bytes through Beast's
// request parser (HttpServer's limits), then SigV4Verifier::verify. It must
// accept or refuse with an SqsException, never crash or throw anything else.
// The seeds are requests real SDKs signed with the key below at kSignedAt.
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "http_server.hpp"
#include "sigv4.hpp"
#include "sqs_errors.hpp"

namespace {

namespace http = boost::beast::http;

// 2026-12-01T23:00:00Z, the X-Amz-Date of the seeds: so that the checks past
// the clock's are reached.
constexpr std::chrono::seconds kSignedAt{1796166000};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const shmq::bridge::SigV4Verifier verifier({{"AKIASHMQFUZZKEY00001", "fuzz-secret"}}, "us-east-1");
  const shmq::bridge::HttpServer::Options limits;
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(limits.body_limit);
  parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_done()) return 0;
  try {
    (void)verifier.verify(parser.get(), std::chrono::system_clock::time_point(kSignedAt));
  } catch (const shmq::bridge::SqsException& e) {
    if (e.error().status >= 500) std::abort();
  }
  return 0;
}
