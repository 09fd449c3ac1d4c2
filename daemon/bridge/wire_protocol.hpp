// The two wire protocols of the SQS API, reduced to one shape. Requests of
// either protocol become the parameter tree of the AWS JSON 1.0 protocol
// (QueueUrl, MessageAttributes {name: {DataType, StringValue, BinaryValue}},
// Entries [...], ...); actions answer with a result in the same shape, which
// is written back as JSON or as the Query protocol's XML.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "sqs_errors.hpp"

namespace shmq::bridge {

// Query protocol: `form` is an application/x-www-form-urlencoded body or URL
// query string. Flattened lists (AttributeName.1, Entry.N.Id, ...) become
// arrays and maps as the JSON protocol has them. Throws SqsException
// (MalformedQueryString) for bad percent-encoding.
nlohmann::json parse_query_params(std::string_view form);

// The Query protocol's XML response for `action`.
std::string render_query_response(const std::string& action, const nlohmann::json& result,
                                  const std::string& request_id);
std::string render_query_error(const SqsError& error, const std::string& request_id);

// The JSON protocol's error body: {"__type": "com.amazonaws.sqs#Shape", "message": ...}.
std::string render_json_error(const SqsError& error);

std::string base64_encode(std::string_view bytes);
// Throws SqsException (InvalidParameterValue) for input that is not base64.
std::string base64_decode(std::string_view text);

}  // namespace shmq::bridge
