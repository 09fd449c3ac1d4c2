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

// How deep a JSON protocol body may nest: SQS's deepest shape
// (Entries[].MessageAttributes{}.{}.StringListValues[]) has 6 levels.
constexpr std::size_t kMaxJsonDepth = 10;

// Query protocol: `form` is an application/x-www-form-urlencoded body or URL
// query string. Flattened lists (AttributeName.1, Entry.N.Id, ...) become
// arrays and maps as the JSON protocol has them; list indexes are sparse and
// bounded by what SQS allows for each list. Throws SqsException:
// MalformedQueryString (bad percent-encoding, a key that is not UTF-8, more
// than 1,000 parameters, nested too deep, or both a value and a structure), TooManyEntriesInBatchRequest or
// InvalidParameterValue (an index past its list's limit).
nlohmann::json parse_query_params(std::string_view form);

// JSON protocol: the body as a JSON object (an empty body is {}). Throws
// SqsException (InvalidParameterValue) for anything else, or nesting deeper
// than kMaxJsonDepth.
nlohmann::json parse_json_params(std::string_view body);

// `value` as JSON text; never throws: ill-formed UTF-8 in strings becomes U+FFFD.
std::string dump_json(const nlohmann::json& value);

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
