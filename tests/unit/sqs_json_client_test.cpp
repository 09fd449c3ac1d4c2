// The remote backend's pure parts: SigV4 against AWS's published example,
// SQS's error shapes to shmq's codes, and what is worth a retry.
#include <gtest/gtest.h>

#include "remote/sqs_json_client.hpp"
#include "shmq/error.hpp"
#include "sigv4_signature.hpp"

namespace shmq::detail {
namespace {

TEST(SigV4Signature, MatchesAwsTestSuiteGetVanilla) {
  // aws-sig-v4-test-suite, get-vanilla: GET / of example.amazonaws.com.
  const std::string canonical = sigv4::canonical_request(
      "GET", "/", "", {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}}, sigv4::sha256_hex(""));
  EXPECT_EQ(canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sigv4::scope("20150830T123600Z", "us-east-1", "service"), "20150830/us-east-1/service/aws4_request");
  EXPECT_EQ(sigv4::signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z", "us-east-1", "service",
                             canonical),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Signature, HeaderValuesAreTrimmedAndFolded) {
  EXPECT_EQ(sigv4::canonical_header_value("  a   b \t c  "), "a b c");
  EXPECT_EQ(sigv4::amz_date_now().size(), 16u);
}

std::string code(std::string_view shape, std::string_view action, std::string_view message = {}) {
  return errc_name(remote::errc_for_shape(shape, action, message));
}

TEST(SqsErrorShapes, MapToTheCodesTheLocalPathReturns) {
  EXPECT_EQ(code("QueueDoesNotExist", "SendMessage"), "queue_does_not_exist");
  EXPECT_EQ(code("AWS.SimpleQueueService.NonExistentQueue", "GetQueueUrl"), "queue_does_not_exist");
  EXPECT_EQ(code("QueueNameExists", "CreateQueue"), "queue_name_exists");
  EXPECT_EQ(code("ReceiptHandleIsInvalid", "DeleteMessage"), "invalid_receipt_handle");
  EXPECT_EQ(code("MessageNotInflight", "ChangeMessageVisibility"), "message_not_in_flight");
  EXPECT_EQ(code("InvalidMessageContents", "SendMessage"), "invalid_message_contents");
  EXPECT_EQ(code("TooManyEntriesInBatchRequest", "SendMessageBatch"), "too_many_entries_in_batch");
  EXPECT_EQ(code("SignatureDoesNotMatch", "ListQueues"), "permission_denied");
  EXPECT_EQ(code("InvalidClientTokenId", "ListQueues"), "permission_denied");
  EXPECT_EQ(code("RequestThrottled", "SendMessage"), "throttled");
  EXPECT_EQ(code("ThrottlingException", "SendMessage"), "throttled");
  EXPECT_EQ(code("HTTP 429", "SendMessage"), "throttled");
  EXPECT_EQ(code("ServiceUnavailable", "SendMessage"), "daemon_unavailable");
  EXPECT_EQ(code("SomethingNew", "SendMessage"), "internal");
}

TEST(SqsErrorShapes, OneShapeOfSeveralMeaningsIsToldApartByActionAndWords) {
  EXPECT_EQ(code("OverLimit", "SendMessage"), "queue_full");
  EXPECT_EQ(code("OverLimit", "SendMessageBatch"), "queue_full");
  EXPECT_EQ(code("OverLimit", "ReceiveMessage"), "too_many_in_flight");
  EXPECT_EQ(code("OverLimit", "AddPermission"), "over_limit");
  EXPECT_EQ(code("InvalidParameterValue", "SendMessage",
                 "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes."),
            "message_too_large");
  EXPECT_EQ(code("InvalidParameterValue", "DeleteMessage", "The receipt handle has expired."),
            "receipt_handle_expired");
  EXPECT_EQ(code("InvalidParameterValue", "StartMessageMoveTask",
                 "There is already a task running. Only one active task is allowed for a source queue arn at a "
                 "given time."),
            "unsupported_operation");
  EXPECT_EQ(code("InvalidParameterValue", "CancelMessageMoveTask", "Value for parameter TaskHandle is invalid."),
            "resource_not_found");
  EXPECT_EQ(code("InvalidParameterValue", "ReceiveMessage", "Value 11 for parameter MaxNumberOfMessages is invalid."),
            "invalid_parameter_value");
}

TEST(SqsErrorShapes, ThrottlingAnd5xxAreRetriedAndOther4xxAreNot) {
  EXPECT_TRUE(remote::retryable(500, "InternalError"));
  EXPECT_TRUE(remote::retryable(503, "ServiceUnavailable"));
  EXPECT_TRUE(remote::retryable(429, ""));
  EXPECT_TRUE(remote::retryable(400, "RequestThrottled"));
  EXPECT_TRUE(remote::retryable(400, "ThrottlingException"));
  EXPECT_FALSE(remote::retryable(403, "SignatureDoesNotMatch"));
  EXPECT_FALSE(remote::retryable(400, "InvalidParameterValue"));
  EXPECT_FALSE(remote::retryable(400, "QueueDoesNotExist"));
}

}  // namespace
}  // namespace shmq::detail
