// Credentials and region lookup against a made-up environment and shared
// files written into a fresh temporary $HOME for each test.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>

#include "remote/aws_config.hpp"
#include "shmq/error.hpp"

namespace shmq::detail::remote {
namespace {

class AwsConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "shmq-aws-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    home_ = pattern;
    vars_["HOME"] = home_.string();
  }
  void TearDown() override { std::filesystem::remove_all(home_); }

  // The environment as `vars_` is when it is called.
  Environment env() const {
    return [this](const std::string& name) -> std::optional<std::string> {
      const auto it = vars_.find(name);
      if (it == vars_.end()) return std::nullopt;
      return it->second;
    };
  }

  // Writes `text` to `relative` under the temporary home; returns its path.
  std::string write(const std::string& relative, const std::string& text) {
    const auto path = home_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path.string();
  }
  std::string write_credentials(const std::string& text) { return write(".aws/credentials", text); }
  std::string write_config(const std::string& text) { return write(".aws/config", text); }

  std::optional<Credentials> credentials(std::string_view profile = "") { return resolve_credentials(profile, env()); }
  std::string region(std::string_view host = "", std::string_view profile = "") {
    return resolve_region("", host, profile, env());
  }

  // What resolve_credentials throws; fails the test if it returns.
  std::string credentials_error(std::string_view profile = "") {
    try {
      resolve_credentials(profile, env());
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), make_error_code(Errc::invalid_parameter_value));
      return e.what();
    }
    ADD_FAILURE() << "resolve_credentials did not throw";
    return {};
  }

  std::filesystem::path home_;
  std::map<std::string, std::string> vars_;
};

TEST_F(AwsConfig, ProcessEnvironmentReadsTheProcessEnvironment) {
  const Environment process = process_environment();
  ::unsetenv("SHMQ_AWS_CONFIG_TEST_VARIABLE");
  EXPECT_EQ(process("SHMQ_AWS_CONFIG_TEST_VARIABLE"), std::nullopt);
  ::setenv("SHMQ_AWS_CONFIG_TEST_VARIABLE", "", 1);
  EXPECT_EQ(process("SHMQ_AWS_CONFIG_TEST_VARIABLE"), std::optional<std::string>(""));
  ::setenv("SHMQ_AWS_CONFIG_TEST_VARIABLE", "value", 1);
  EXPECT_EQ(process("SHMQ_AWS_CONFIG_TEST_VARIABLE"), std::optional<std::string>("value"));
  ::unsetenv("SHMQ_AWS_CONFIG_TEST_VARIABLE");
}

TEST_F(AwsConfig, ProfileNameFromArgumentThenAwsProfileThenDefault) {
  EXPECT_EQ(profile_name("", env()), "default");
  vars_["AWS_PROFILE"] = "";
  EXPECT_EQ(profile_name("", env()), "default");
  vars_["AWS_PROFILE"] = "ci";
  EXPECT_EQ(profile_name("", env()), "ci");
  EXPECT_EQ(profile_name("prod", env()), "prod");
}

TEST_F(AwsConfig, EnvironmentWinsOverFiles) {
  write_credentials("[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n");
  vars_["AWS_ACCESS_KEY_ID"] = "ENVKEY";
  vars_["AWS_SECRET_ACCESS_KEY"] = "ENVSECRET";
  const auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "ENVKEY");
  EXPECT_EQ(found->secret_access_key, "ENVSECRET");
  EXPECT_EQ(found->session_token, "");
  EXPECT_EQ(found->source, "environment");
}

TEST_F(AwsConfig, EnvironmentSessionToken) {
  vars_["AWS_ACCESS_KEY_ID"] = "ENVKEY";
  vars_["AWS_SECRET_ACCESS_KEY"] = "ENVSECRET";
  vars_["AWS_SESSION_TOKEN"] = "ENVTOKEN";
  const auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->session_token, "ENVTOKEN");
}

TEST_F(AwsConfig, EnvironmentNeedsBothKeys) {
  const auto path = write_credentials("[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n");
  vars_["AWS_ACCESS_KEY_ID"] = "ENVKEY";
  vars_["AWS_SECRET_ACCESS_KEY"] = "";
  const auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "FILEKEY");
  EXPECT_EQ(found->source, path + " [default]");
}

TEST_F(AwsConfig, CredentialsFileSectionOfTheProfile) {
  const auto path = write_credentials(
      "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = DEFAULTSECRET\n"
      "[ci]\naws_access_key_id = CIKEY\naws_secret_access_key = CISECRET\naws_session_token = CITOKEN\n"
      "[prod]\naws_access_key_id = PRODKEY\naws_secret_access_key = PRODSECRET\n");
  auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "DEFAULTKEY");
  EXPECT_EQ(found->secret_access_key, "DEFAULTSECRET");
  EXPECT_EQ(found->session_token, "");
  EXPECT_EQ(found->source, path + " [default]");

  vars_["AWS_PROFILE"] = "ci";
  found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "CIKEY");
  EXPECT_EQ(found->session_token, "CITOKEN");
  EXPECT_EQ(found->source, path + " [ci]");

  found = credentials("prod");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "PRODKEY");
  EXPECT_EQ(found->source, path + " [prod]");
}

TEST_F(AwsConfig, CredentialsFileWinsOverConfigFile) {
  const auto path = write_credentials("[ci]\naws_access_key_id = CREDKEY\naws_secret_access_key = CREDSECRET\n");
  write_config("[profile ci]\naws_access_key_id = CONFKEY\naws_secret_access_key = CONFSECRET\n");
  const auto found = credentials("ci");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "CREDKEY");
  EXPECT_EQ(found->secret_access_key, "CREDSECRET");
  EXPECT_EQ(found->source, path + " [ci]");
}

TEST_F(AwsConfig, ProfileWithoutKeysInCredentialsFileFallsThroughToConfig) {
  write_credentials("[ci]\nregion = eu-west-1\n");
  const auto config = write_config("[profile ci]\naws_access_key_id = CONFKEY\naws_secret_access_key = CONFSECRET\n");
  const auto found = credentials("ci");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "CONFKEY");
  EXPECT_EQ(found->source, config + " [profile ci]");
}

TEST_F(AwsConfig, ConfigFileNamesProfilesWithPrefix) {
  const auto path = write_config(
      "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = DEFAULTSECRET\n"
      "[ci]\naws_access_key_id = BAREKEY\naws_secret_access_key = BARESECRET\n"
      "[profile   prod ]\naws_access_key_id = PRODKEY\naws_secret_access_key = PRODSECRET\n"
      "[profile ci]\n");
  auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "DEFAULTKEY");
  EXPECT_EQ(found->source, path + " [default]");

  found = credentials("prod");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "PRODKEY");
  EXPECT_EQ(found->source, path + " [profile prod]");

  // [ci] in the config file is not the profile ci; [profile ci] is, and has no keys.
  EXPECT_EQ(credentials("ci"), std::nullopt);
}

TEST_F(AwsConfig, ConfigFileProfileDefaultPreferredOverDefault) {
  auto path = write_config("[profile default]\naws_access_key_id = PREFIXKEY\naws_secret_access_key = PREFIXSECRET\n");
  auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "PREFIXKEY");
  EXPECT_EQ(found->source, path + " [profile default]");

  path = write_config(
      "[profile default]\naws_access_key_id = PREFIXKEY\naws_secret_access_key = PREFIXSECRET\n"
      "[default]\naws_access_key_id = BAREKEY\naws_secret_access_key = BARESECRET\n");
  found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "PREFIXKEY");
}

TEST_F(AwsConfig, CommentsAndBlankLinesAreIgnored) {
  write_credentials(
      "# a comment\n"
      "; another\n"
      "\n"
      "[default] # trailing comment\n"
      "  # indented comment\n"
      "# aws_access_key_id = COMMENTED\n"
      "aws_access_key_id = KEY\r\n"
      "; aws_secret_access_key = COMMENTED\n"
      "aws_secret_access_key =   SECRET   \n");
  const auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "KEY");
  EXPECT_EQ(found->secret_access_key, "SECRET");
}

TEST_F(AwsConfig, NestedSubSectionsAreIgnored) {
  write_config(
      "[default]\n"
      "region = eu-west-1\n"
      "s3 =\n"
      "  max_concurrent_requests = 20\n"
      "  region = ap-south-1\n"
      "\taws_access_key_id = NESTEDKEY\n"
      "sqs =\n"
      "  aws_secret_access_key = NESTEDSECRET\n");
  EXPECT_EQ(region(), "eu-west-1");
  EXPECT_EQ(credentials(), std::nullopt);
}

TEST_F(AwsConfig, KeysAfterNestedSubSectionBelongToTheProfile) {
  write_config(
      "[default]\n"
      "s3 =\n"
      "  max_concurrent_requests = 20\n"
      "region = ca-central-1\n");
  EXPECT_EQ(region(), "ca-central-1");
}

TEST_F(AwsConfig, DuplicateKeyLaterWins) {
  write_credentials(
      "[default]\naws_access_key_id = FIRSTKEY\naws_secret_access_key = SECRET\naws_access_key_id = SECONDKEY\n"
      "[other]\n"
      "[default]\naws_session_token = TOKEN\n");
  write_config("[default]\nregion = us-west-1\nregion = us-west-2\n");
  const auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "SECONDKEY");
  EXPECT_EQ(found->secret_access_key, "SECRET");
  EXPECT_EQ(found->session_token, "TOKEN");
  EXPECT_EQ(region(), "us-west-2");
}

TEST_F(AwsConfig, MissingFilesAreFine) {
  EXPECT_EQ(credentials(), std::nullopt);
  EXPECT_EQ(region(), "us-east-1");
  vars_.erase("HOME");
  EXPECT_EQ(credentials(), std::nullopt);
  EXPECT_EQ(region(), "us-east-1");
}

TEST_F(AwsConfig, FileVariablesOverrideHome) {
  write_credentials("[default]\naws_access_key_id = HOMEKEY\naws_secret_access_key = HOMESECRET\n");
  write_config("[default]\nregion = eu-west-1\n");
  const auto credentials_path =
      write("elsewhere/creds", "[default]\naws_access_key_id = K\naws_secret_access_key = S\n");
  write("elsewhere/conf", "[default]\nregion = sa-east-1\n");
  vars_["AWS_SHARED_CREDENTIALS_FILE"] = credentials_path;
  vars_["AWS_CONFIG_FILE"] = "~/elsewhere/conf";
  const auto found = credentials();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->access_key_id, "K");
  EXPECT_EQ(found->source, credentials_path + " [default]");
  EXPECT_EQ(region(), "sa-east-1");

  // Pointing elsewhere, at nothing: the files in $HOME are not read either.
  vars_["AWS_SHARED_CREDENTIALS_FILE"] = (home_ / "none").string();
  vars_["AWS_CONFIG_FILE"] = (home_ / "none").string();
  EXPECT_EQ(credentials(), std::nullopt);
  EXPECT_EQ(region(), "us-east-1");
}

TEST_F(AwsConfig, MalformedLineNamesPathAndLine) {
  const auto path = write_credentials("[default]\naws_access_key_id = KEY\n\njust some words\n");
  const auto message = credentials_error();
  EXPECT_NE(message.find(path + ":4: expected 'key = value' or '[section]'"), std::string::npos) << message;

  write_credentials("[default\n");
  EXPECT_NE(credentials_error().find(path + ":1: expected"), std::string::npos);
  write_credentials("[]\n");
  EXPECT_NE(credentials_error().find(path + ":1: expected"), std::string::npos);
  write_credentials("[default]\n= value\n");
  EXPECT_NE(credentials_error().find(path + ":2: expected"), std::string::npos);
}

TEST_F(AwsConfig, KeyOutsideAnySectionIsAnError) {
  const auto path = write_config("# header\nregion = eu-west-1\n[default]\n");
  const auto message = credentials_error();
  EXPECT_NE(message.find(path + ":2: "), std::string::npos) << message;
  EXPECT_THROW(region(), std::system_error);
}

TEST_F(AwsConfig, UnreadableFileIsAnError) {
  std::filesystem::create_directories(home_ / ".aws" / "credentials");
  const auto message = credentials_error();
  EXPECT_NE(message.find((home_ / ".aws" / "credentials").string()), std::string::npos) << message;
}

TEST_F(AwsConfig, UnknownExplicitProfileNamesBothFiles) {
  const auto credentials_path = write_credentials("[default]\naws_access_key_id = K\naws_secret_access_key = S\n");
  const auto config_path = write_config("[profile other]\n[typo]\n");
  auto message = credentials_error("typo");
  EXPECT_NE(message.find("profile 'typo' is in neither " + credentials_path + " nor " + config_path), std::string::npos)
      << message;

  vars_["AWS_PROFILE"] = "ci";
  message = credentials_error();
  EXPECT_NE(message.find("profile 'ci' is in neither " + credentials_path + " nor " + config_path), std::string::npos)
      << message;
  EXPECT_THROW(region(), std::system_error);

  // Asked for by name, the default profile must exist too.
  vars_["AWS_PROFILE"] = "default";
  std::filesystem::remove(credentials_path);
  message = credentials_error();
  EXPECT_NE(message.find("profile 'default' is in neither"), std::string::npos) << message;
}

TEST_F(AwsConfig, UnnamedDefaultProfileMayBeAbsent) {
  write_credentials("[ci]\naws_access_key_id = K\naws_secret_access_key = S\n");
  write_config("[profile ci]\nregion = eu-west-1\n");
  EXPECT_EQ(credentials(), std::nullopt);
  EXPECT_EQ(region(), "us-east-1");
}

TEST_F(AwsConfig, ProfileFoundInEitherFileIsNotAnError) {
  write_credentials("[onlycreds]\n");
  write_config("[profile onlyconfig]\n");
  EXPECT_EQ(credentials("onlycreds"), std::nullopt);
  EXPECT_EQ(credentials("onlyconfig"), std::nullopt);
}

TEST_F(AwsConfig, OnlyOneOfTheKeysIsAnError) {
  const auto credentials_path = write_credentials("[ci]\naws_access_key_id = K\n");
  write_config("[profile ci]\naws_access_key_id = K2\naws_secret_access_key = S2\n");
  auto message = credentials_error("ci");
  EXPECT_NE(message.find(credentials_path + " [ci] has aws_access_key_id but no aws_secret_access_key"),
            std::string::npos)
      << message;

  std::filesystem::remove(credentials_path);
  const auto config_path = write_config("[profile ci]\naws_secret_access_key = S\n");
  message = credentials_error("ci");
  EXPECT_NE(message.find(config_path + " [profile ci] has aws_secret_access_key but no aws_access_key_id"),
            std::string::npos)
      << message;
}

TEST_F(AwsConfig, RegionExplicitComesFirst) {
  vars_["AWS_REGION"] = "eu-west-1";
  write_config("[default]\nregion = eu-west-2\n");
  EXPECT_EQ(resolve_region("ap-northeast-1", "sqs.us-west-2.amazonaws.com", "", env()), "ap-northeast-1");
}

TEST_F(AwsConfig, RegionFromEachAmazonHostForm) {
  vars_["AWS_REGION"] = "eu-west-1";
  EXPECT_EQ(region("sqs.us-west-2.amazonaws.com"), "us-west-2");
  EXPECT_EQ(region("sqs-fips.us-gov-west-1.amazonaws.com"), "us-gov-west-1");
  EXPECT_EQ(region("sqs.cn-north-1.amazonaws.com.cn"), "cn-north-1");
  EXPECT_EQ(region("eu-central-2.queue.amazonaws.com"), "eu-central-2");
  EXPECT_EQ(region("sqs.ap-southeast-3.api.aws"), "ap-southeast-3");
  EXPECT_EQ(region("SQS.US-EAST-2.AmazonAWS.com"), "us-east-2");
  EXPECT_EQ(region("sqs.us-isob-east-1.amazonaws.com"), "us-isob-east-1");
  EXPECT_EQ(region("sqs.us-west-2.amazonaws.com:443"), "us-west-2");
  EXPECT_EQ(region("sqs.us-west-2.amazonaws.com."), "us-west-2");
}

TEST_F(AwsConfig, NoRegionFromOtherHosts) {
  vars_["AWS_REGION"] = "eu-west-1";
  for (const char* host :
       {"localhost", "127.0.0.1", "[::1]", "sqs.localhost", "sqs.amazonaws.com", "sqs.us-east.amazonaws.com",
        "sqs.useast-1.amazonaws.com", "sqs.us-east-1x.amazonaws.com", "sqs.usa-east-1.amazonaws.com",
        "sqs.us--east-1.amazonaws.com", "sqs.us-gov--west-1.amazonaws.com", "sqs.us-east-1.example.com",
        "sqs.us-east-1.amazonaws.com.evil.example", "sns.us-east-1.amazonaws.com",
        "sqs-fips.cn-north-1.amazonaws.com.cn", "sqs.us-east-1.queue.amazonaws.com", "queue.amazonaws.com",
        "elasticmq.internal"})
    EXPECT_EQ(region(host), "eu-west-1") << host;
}

TEST_F(AwsConfig, RegionFromEnvironmentThenConfigThenDefault) {
  write_credentials("[default]\nregion = ap-south-1\n[ci]\nregion = ap-south-1\n");
  write_config("[default]\nregion = eu-west-3\n[profile ci]\nregion = us-west-1\n");
  vars_["AWS_REGION"] = "eu-north-1";
  vars_["AWS_DEFAULT_REGION"] = "me-south-1";
  EXPECT_EQ(region("localhost"), "eu-north-1");
  vars_["AWS_REGION"] = "";
  EXPECT_EQ(region("localhost"), "me-south-1");
  vars_.erase("AWS_REGION");
  EXPECT_EQ(region("localhost"), "me-south-1");
  vars_.erase("AWS_DEFAULT_REGION");
  EXPECT_EQ(region("localhost"), "eu-west-3");
  EXPECT_EQ(region("localhost", "ci"), "us-west-1");
  vars_["AWS_PROFILE"] = "ci";
  EXPECT_EQ(region("localhost"), "us-west-1");
  // The credentials file's region is not the profile's region.
  write_config("[profile ci]\n");
  EXPECT_EQ(region("localhost"), "us-east-1");
}

}  // namespace
}  // namespace shmq::detail::remote
