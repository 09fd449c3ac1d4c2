// Host and Origin come from any local process, and from any web page through
// a browser: the admission must take every byte string without failing, keep
// host names lower case and no longer than given, and refuse every Origin it
// was not told to allow.
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "request_admission.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // "HOST" or "HOST\nORIGIN".
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = text.find('\n');
  const std::string_view host = text.substr(0, newline);

  const std::string name = shmq::bridge::host_without_port(host);
  if (name.size() > host.size()) std::abort();
  for (const char c : name) {
    if (std::isupper(static_cast<unsigned char>(c))) std::abort();
  }

  static const shmq::bridge::RequestAdmission admission(
      shmq::bridge::AdmissionOptions{{"http://localhost:3000"}, {"sqs.internal"}},
      boost::asio::ip::make_address("127.0.0.1"), "localhost", "http://queues.test:9324");
  shmq::bridge::HttpRequest request{boost::beast::http::verb::post, "/", 11};
  request.set(boost::beast::http::field::host, host);
  if (newline != std::string_view::npos) {
    request.set(boost::beast::http::field::origin, text.substr(newline + 1));
    // As stored: Beast trims the optional whitespace around a value, as its parser does.
    const std::string_view origin = request[boost::beast::http::field::origin];
    if (origin != "http://localhost:3000" && !admission.refusal(request)) std::abort();
  }
  (void)admission.refusal(request);
  shmq::bridge::HttpResponse answer;
  (void)admission.cors(request, answer);
  return 0;
}
