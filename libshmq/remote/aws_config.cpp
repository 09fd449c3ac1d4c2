// Credentials and region from the environment and the shared AWS files, in
// the order the AWS SDKs look them up. The files are read afresh on every
// call: nothing is cached, so a changed file is seen by the next client.
//
// The files are read line by line rather than with Boost.PropertyTree's ini
// parser: that parser refuses duplicate keys, which the SDKs accept (the
// later wins), and reads the indented lines of a nested sub-section
// ("s3 =\n  max_concurrent_requests = 20") as keys of the profile.
#include "remote/aws_config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <system_error>
#include <utility>

#include "shmq/error.hpp"

namespace shmq::detail::remote {
namespace {

using Keys = std::map<std::string, std::string, std::less<>>;

// A shared file's sections by name ("ci", "profile ci", "default"), each
// section's keys merged over all the places it appears, the later value
// winning.
struct SharedFile {
  std::string name;  // the path, or what it would have been, for messages
  std::map<std::string, Keys, std::less<>> sections;
};

// The profile's section in one file.
struct Section {
  std::string source;  // "<path> [<section>]"
  Keys keys;
};

struct Profile {
  std::optional<Section> credentials;  // [NAME] in the credentials file
  std::optional<Section> config;       // [profile NAME] in the config file ([default] for the default profile)
};

[[noreturn]] void fail(const std::string& message) {
  throw std::system_error(make_error_code(Errc::invalid_parameter_value), message);
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kBlank = " \t\r\n\f\v";
  const auto first = text.find_first_not_of(kBlank);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kBlank) - first + 1);
}

bool is_comment_start(char c) { return c == '#' || c == ';'; }

// A variable's value, an empty one counting as unset as it does for the SDKs.
std::optional<std::string> non_empty(const Environment& env, const std::string& name) {
  auto value = env(name);
  if (value && value->empty()) value.reset();
  return value;
}

// `variable` if set (a leading "~" standing for $HOME, as the CLI expands
// it), else `under_home` in $HOME; no path if neither is set.
std::optional<std::string> shared_file_path(const Environment& env, const std::string& variable,
                                            std::string_view under_home) {
  const auto home = non_empty(env, "HOME");
  if (auto path = non_empty(env, variable)) {
    if (home && (*path == "~" || path->starts_with("~/"))) return *home + path->substr(1);
    return path;
  }
  if (!home) return std::nullopt;
  return (std::filesystem::path(*home) / under_home).string();
}

// "profile   ci" names the same section as "profile ci".
std::string section_name(std::string_view header) {
  constexpr std::string_view kProfile = "profile";
  if (header.size() > kProfile.size() && header.starts_with(kProfile) &&
      (header[kProfile.size()] == ' ' || header[kProfile.size()] == '\t'))
    return "profile " + std::string(trim(header.substr(kProfile.size())));
  return std::string(header);
}

// Reads the file at `path`; no sections if it does not exist. `under_home`
// names the file in messages when there is no path.
SharedFile read_shared_file(const std::optional<std::string>& path, std::string_view under_home) {
  SharedFile file{path ? *path : "$HOME/" + std::string(under_home) + " (HOME is not set)", {}};
  if (!path) return file;
  std::error_code ec;
  const auto status = std::filesystem::status(*path, ec);
  if (status.type() == std::filesystem::file_type::not_found) return file;
  if (ec) fail(*path + ": cannot be read: " + ec.message());
  if (std::filesystem::is_directory(status)) fail(*path + ": is a directory");
  std::ifstream in(*path);
  if (!in) fail(*path + ": cannot be read: " + std::generic_category().message(errno));

  Keys* section = nullptr;
  bool after_property = false;  // a property of `section` came since its header
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string_view text = trim(line);
    if (text.empty() || is_comment_start(text.front())) continue;
    // Indented lines under a property are its nested sub-section (or a
    // continuation of its value); none of them is a key of the profile.
    if (after_property && (line.front() == ' ' || line.front() == '\t')) continue;
    const std::string where = *path + ":" + std::to_string(number) + ": ";
    if (text.front() == '[') {
      const auto close = text.find(']');
      const std::string_view header = close == std::string_view::npos ? "" : trim(text.substr(1, close - 1));
      const std::string_view rest = header.empty() ? "" : trim(text.substr(close + 1));
      if (header.empty() || !(rest.empty() || is_comment_start(rest.front())))
        fail(where + "expected 'key = value' or '[section]'");
      section = &file.sections[section_name(header)];
      after_property = false;
      continue;
    }
    const auto equals = text.find('=');
    const std::string_view key = equals == std::string_view::npos ? "" : trim(text.substr(0, equals));
    if (key.empty()) fail(where + "expected 'key = value' or '[section]'");
    if (!section) fail(where + "'key = value' before any '[section]'");
    (*section)[std::string(key)] = trim(text.substr(equals + 1));
    after_property = true;
  }
  if (in.bad()) fail(*path + ": cannot be read");
  return file;
}

// The first of `names` that is a section of `file`.
std::optional<Section> find_section(const SharedFile& file, std::initializer_list<std::string> names) {
  for (const auto& name : names)
    if (const auto it = file.sections.find(name); it != file.sections.end())
      return Section{file.name + " [" + name + "]", it->second};
  return std::nullopt;
}

// The profile's sections in both files. A profile asked for by name must be
// in one of them: a misspelt name should not silently mean no credentials.
Profile load_profile(std::string_view requested, const Environment& env) {
  const std::string name = profile_name(requested, env);
  const bool asked_by_name = !requested.empty() || non_empty(env, "AWS_PROFILE");
  const SharedFile credentials =
      read_shared_file(shared_file_path(env, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"), ".aws/credentials");
  const SharedFile config = read_shared_file(shared_file_path(env, "AWS_CONFIG_FILE", ".aws/config"), ".aws/config");
  Profile profile;
  profile.credentials = find_section(credentials, {name});
  // Both [default] and [profile default] are the default profile; the SDKs
  // take [profile default] when a file has both.
  profile.config = name == "default" ? find_section(config, {"profile default", "default"})
                                     : find_section(config, {"profile " + name});
  if (asked_by_name && !profile.credentials && !profile.config)
    fail("profile '" + name + "' is in neither " + credentials.name + " nor " + config.name);
  return profile;
}

std::string value_of(const Keys& keys, std::string_view key) {
  const auto it = keys.find(key);
  return it == keys.end() ? std::string() : it->second;
}

// The credentials in one file's section of the profile: none if it has
// neither key, an error if it has only one of them.
std::optional<Credentials> credentials_in(const std::optional<Section>& section) {
  if (!section) return std::nullopt;
  Credentials credentials{value_of(section->keys, "aws_access_key_id"),
                          value_of(section->keys, "aws_secret_access_key"),
                          value_of(section->keys, "aws_session_token"), section->source};
  if (credentials.access_key_id.empty() && credentials.secret_access_key.empty()) return std::nullopt;
  if (credentials.secret_access_key.empty())
    fail(section->source + " has aws_access_key_id but no aws_secret_access_key");
  if (credentials.access_key_id.empty()) fail(section->source + " has aws_secret_access_key but no aws_access_key_id");
  return credentials;
}

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// [a-z]{2}(-[a-z]+)+-[0-9]+: us-east-1, us-gov-west-1, cn-north-1.
bool is_region(std::string_view text) {
  const auto first_dash = text.find('-');
  const auto last_dash = text.rfind('-');
  if (first_dash != 2 || last_dash == first_dash || !is_lower(text[0]) || !is_lower(text[1])) return false;
  const std::string_view words = text.substr(3, last_dash - 3);
  const std::string_view number = text.substr(last_dash + 1);
  return !words.empty() && words.front() != '-' && words.back() != '-' && words.find("--") == std::string_view::npos &&
         std::ranges::all_of(words, [](char c) { return is_lower(c) || c == '-'; }) && !number.empty() &&
         std::ranges::all_of(number, is_digit);
}

// The region in an Amazon SQS endpoint's host name; none for any other host.
std::optional<std::string> region_of_host(std::string_view endpoint_host) {
  std::string host(endpoint_host);
  std::ranges::transform(host, host.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
  if (const auto colon = host.find(':'); colon != std::string::npos) host.resize(colon);  // a port
  if (host.ends_with('.')) host.pop_back();                                               // a fully qualified name
  // Each form as the text before and after the region.
  constexpr std::pair<std::string_view, std::string_view> kForms[] = {
      {"sqs.", ".amazonaws.com"},    {"sqs-fips.", ".amazonaws.com"},
      {"sqs.", ".amazonaws.com.cn"}, {"", ".queue.amazonaws.com"},
      {"sqs.", ".api.aws"},
  };
  for (const auto& [prefix, suffix] : kForms) {
    if (host.size() <= prefix.size() + suffix.size() || !host.starts_with(prefix) || !host.ends_with(suffix)) continue;
    const std::string region = host.substr(prefix.size(), host.size() - prefix.size() - suffix.size());
    if (is_region(region)) return region;
  }
  return std::nullopt;
}

}  // namespace

Environment process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

std::string profile_name(std::string_view profile, const Environment& env) {
  if (!profile.empty()) return std::string(profile);
  return non_empty(env, "AWS_PROFILE").value_or("default");
}

std::optional<Credentials> resolve_credentials(std::string_view profile, const Environment& env) {
  const auto access_key_id = non_empty(env, "AWS_ACCESS_KEY_ID");
  const auto secret_access_key = non_empty(env, "AWS_SECRET_ACCESS_KEY");
  if (access_key_id && secret_access_key)
    return Credentials{*access_key_id, *secret_access_key, env("AWS_SESSION_TOKEN").value_or(""), "environment"};
  const Profile found = load_profile(profile, env);
  if (auto credentials = credentials_in(found.credentials)) return credentials;
  return credentials_in(found.config);
}

std::string resolve_region(std::string_view explicit_region, std::string_view endpoint_host, std::string_view profile,
                           const Environment& env) {
  if (!explicit_region.empty()) return std::string(explicit_region);
  if (auto region = region_of_host(endpoint_host)) return *region;
  for (const char* variable : {"AWS_REGION", "AWS_DEFAULT_REGION"})
    if (auto region = non_empty(env, variable)) return *region;
  const Profile found = load_profile(profile, env);
  if (found.config)
    if (auto region = value_of(found.config->keys, "region"); !region.empty()) return region;
  return "us-east-1";
}

}  // namespace shmq::detail::remote
