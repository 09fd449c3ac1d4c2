// Which HTTP requests the bridge takes at all, before it decodes them: the
// defence of a loopback bridge against web pages in a browser on the same
// host. A page may send a form POST anywhere (a "simple" cross-site request:
// CSRF), and with DNS rebinding a name of the attacker's may resolve to
// 127.0.0.1. Browsers always send Host, and Origin on cross-site POSTs; SQS
// clients send Host 127.0.0.1:<port> (or the advertised name) and no Origin.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_server.hpp"
#include "sqs_errors.hpp"

namespace shmq::bridge {

struct AdmissionOptions {
  std::vector<std::string> allowed_origins;  // --cors-allow-origin: exact origins, or "*" for any
  std::vector<std::string> allowed_hosts;    // --allow-host: names (or addresses) a client may use in Host
};

class RequestAdmission {
 public:
  // `listen_address`: the TCP address the bridge bound (nullopt on a Unix
  // socket, which no browser reaches); Host is checked when it is loopback.
  // `listen_host` (as configured) and `advertise_url`'s host are allowed Hosts.
  RequestAdmission(AdmissionOptions options, std::optional<boost::asio::ip::address> listen_address,
                   const std::string& listen_host, const std::string& advertise_url);

  // Whether Host values are checked: the bridge listens on loopback only.
  bool checks_host() const noexcept { return check_host_; }

  // The reason to refuse `request` (AccessDenied, 403), or nullopt to serve it.
  std::optional<SqsError> refusal(const HttpRequest& request) const;

  // For a request from an allowed Origin, the CORS headers its answer needs;
  // for a CORS pre-flight (OPTIONS with Access-Control-Request-Method), the
  // whole answer. Returns true when `answer` is complete and is to be sent
  // as it is.
  bool cors(const HttpRequest& request, HttpResponse& answer) const;

 private:
  bool host_allowed(std::string_view host) const;
  bool origin_allowed(std::string_view origin) const;

  AdmissionOptions options_;
  bool check_host_ = false;
  std::vector<std::string> hosts_;  // lower case, without port or brackets
};

// The host part of a Host header or URL authority: lower case, without the
// port, the brackets of an IPv6 address or a final dot ("[::1]:80" -> "::1").
std::string host_without_port(std::string_view authority);

}  // namespace shmq::bridge
