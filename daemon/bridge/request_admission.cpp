#include "request_admission.hpp"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>

namespace shmq::bridge {

namespace http = boost::beast::http;
namespace ip = boost::asio::ip;

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// "http://name:port/path" -> "name:port"
std::string_view url_authority(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  return url.substr(0, url.find_first_of("/?#"));
}

bool loopback_literal(const std::string& host) {
  boost::system::error_code ec;
  const ip::address address = ip::make_address(host, ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

// Names that resolve to loopback by definition (RFC 6761), not through DNS.
bool loopback_name(const std::string& host) { return host == "localhost" || host.ends_with(".localhost"); }

}  // namespace

std::string host_without_port(std::string_view authority) {
  std::string_view host = authority;
  if (host.starts_with("[")) {
    host = host.substr(1, host.find(']') == std::string_view::npos ? std::string_view::npos : host.find(']') - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  while (host.ends_with(".")) host.remove_suffix(1);
  return lower(host);
}

RequestAdmission::RequestAdmission(AdmissionOptions options, std::optional<ip::address> listen_address,
                                   const std::string& listen_host, const std::string& advertise_url)
    : options_(std::move(options)) {
  check_host_ = listen_address && (listen_address->is_loopback() ||
                                   (listen_address->is_v6() && listen_address->to_v6().is_v4_mapped() &&
                                    ip::make_address_v4(ip::v4_mapped, listen_address->to_v6()).is_loopback()));
  for (const std::string& host : options_.allowed_hosts) hosts_.push_back(host_without_port(host));
  if (listen_address) hosts_.push_back(listen_address->to_string());
  if (!listen_host.empty()) hosts_.push_back(host_without_port(listen_host));
  if (!advertise_url.empty()) hosts_.push_back(host_without_port(url_authority(advertise_url)));
}

bool RequestAdmission::host_allowed(std::string_view header) const {
  const std::string host = host_without_port(header);
  if (loopback_literal(host) || loopback_name(host)) return true;
  return std::find(hosts_.begin(), hosts_.end(), host) != hosts_.end();
}

bool RequestAdmission::origin_allowed(std::string_view origin) const {
  return std::any_of(options_.allowed_origins.begin(), options_.allowed_origins.end(),
                     [&](const std::string& allowed) { return allowed == "*" || allowed == origin; });
}

std::optional<SqsError> RequestAdmission::refusal(const HttpRequest& request) const {
  // HTTP/1.0 clients may leave Host out; browsers never do.
  const auto host = request.find(http::field::host);
  if (check_host_ && host != request.end() && !host_allowed(host->value())) {
    return errors::host_not_allowed(host->value(), host_without_port(host->value()));
  }
  const auto origin = request.find(http::field::origin);
  if (origin != request.end() && !origin_allowed(origin->value())) {
    return errors::origin_not_allowed(origin->value());
  }
  return std::nullopt;
}

bool RequestAdmission::cors(const HttpRequest& request, HttpResponse& answer) const {
  const auto origin = request.find(http::field::origin);
  if (origin == request.end()) return false;
  answer.set(http::field::access_control_allow_origin, origin->value());
  answer.set(http::field::vary, "Origin");
  answer.set(http::field::access_control_expose_headers, "x-amzn-RequestId, x-amzn-query-error");
  const auto method = request.find(http::field::access_control_request_method);
  if (request.method() != http::verb::options || method == request.end()) return false;
  answer.result(http::status::no_content);
  answer.set(http::field::access_control_allow_methods, "GET, POST");
  const auto headers = request.find(http::field::access_control_request_headers);
  if (headers != request.end()) answer.set(http::field::access_control_allow_headers, headers->value());
  answer.set(http::field::access_control_max_age, "600");
  return true;
}

}  // namespace shmq::bridge
