// Where a remote endpoint's credentials and region come from, looked up as
// the AWS SDKs and the AWS CLI look them up (docs/remote-endpoints.md).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace shmq::detail::remote {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
  std::string source;         // where they were found, for error messages: "environment", "/home/u/.aws/credentials [profile ci]"
};

// Reads an environment variable: empty optional if unset. The process's by
// default; tests pass their own.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;
Environment process_environment();

// The profile to use: `profile` if not empty, else AWS_PROFILE, else "default".
std::string profile_name(std::string_view profile, const Environment& env);

// Credentials as AWS SDKs find them, first found wins:
//   1. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN);
//   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
//      $HOME/.aws/credentials), section [PROFILE];
//   3. the shared config file (AWS_CONFIG_FILE, else $HOME/.aws/config),
//      section [profile PROFILE] ([default] for the default profile).
// Keys: aws_access_key_id, aws_secret_access_key, aws_session_token. Empty
// optional if none of these has them. A file that exists but cannot be read
// or parsed throws std::system_error(Errc::invalid_parameter_value) whose
// message names the file and what is wrong in it. A profile that was asked
// for by name (argument or AWS_PROFILE) and is in neither file throws the
// same, naming the profile and both files.
std::optional<Credentials> resolve_credentials(std::string_view profile, const Environment& env);

// The region requests are signed for, first found wins:
//   1. `explicit_region` if not empty;
//   2. the region in an Amazon endpoint's host: sqs.REGION.amazonaws.com,
//      sqs-fips.REGION.amazonaws.com, sqs.REGION.amazonaws.com.cn,
//      REGION.queue.amazonaws.com (the legacy form);
//   3. AWS_REGION, then AWS_DEFAULT_REGION;
//   4. `region` in the config file's section of the profile;
//   5. "us-east-1".
// Files are read as in resolve_credentials, with the same errors.
std::string resolve_region(std::string_view explicit_region, std::string_view endpoint_host, std::string_view profile,
                           const Environment& env);

}  // namespace shmq::detail::remote
