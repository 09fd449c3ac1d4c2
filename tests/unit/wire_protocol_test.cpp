// The bridge's request decoders and error rendering, on bytes no SDK would
// send: every refusal is an SqsException with the SQS code, and what the
// bridge writes back is well-formed whatever it echoes.
#include "wire_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

#include "utf8.hpp"

namespace shmq::bridge {
namespace {

using nlohmann::json;

std::string refusal(const auto& decode) {
  try {
    decode();
  } catch (const SqsException& e) {
    return e.error().query_code;
  }
  return "accepted";
}

std::string query_refusal(const std::string& form) {
  return refusal([&] { parse_query_params(form); });
}

TEST(QueryForm, FlattenedListsTakeTheJsonShape) {
  const json p = parse_query_params(
      "Action=SendMessageBatch&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x"
      "&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageAttribute.1.Name=k"
      "&SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType=String"
      "&SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.StringValue=v"
      "&AttributeName.1=All&Tag.1.Key=team&Tag.1.Value=core");
  ASSERT_EQ(p["Entries"].size(), 2u);
  EXPECT_EQ(p["Entries"][1]["MessageAttributes"]["k"]["StringValue"], "v");
  EXPECT_EQ(p["AttributeNames"], json::array({"All"}));
  EXPECT_EQ(p["Tags"]["team"], "core");
}

TEST(QueryForm, ListIndexesAreSparse) {
  const json p = parse_query_params("Entry.7.Id=seven&Entry.3.Id=three");
  ASSERT_EQ(p["Entries"].size(), 2u);
  EXPECT_EQ(p["Entries"][0]["Id"], "three");
  EXPECT_EQ(p["Entries"][1]["Id"], "seven");
}

TEST(QueryForm, IndexPastWhatTheListAllowsIsRefused) {
  EXPECT_EQ(query_refusal("Entry.10.Id=a"), "accepted");
  EXPECT_EQ(query_refusal("Entry.11.Id=a"), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest");
  EXPECT_EQ(query_refusal("Entry.99999999999999999999.Id=a"), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest");
  EXPECT_EQ(query_refusal("MessageAttribute.11.Name=a"), "InvalidParameterValue");
  EXPECT_EQ(query_refusal("Tag.1000.Key=a"), "accepted");  // the daemon refuses more than 50 tags
  EXPECT_EQ(query_refusal("Tag.1001.Key=a"), "InvalidParameterValue");
  EXPECT_EQ(query_refusal("k.1000.1000=x"), "InvalidParameterValue");
  EXPECT_EQ(query_refusal("AttributeName.0=All"), "MalformedQueryString");
}

TEST(QueryForm, DeepKeysAreRefusedBeforeAnythingIsBuilt) {
  std::string form = "Action=ListQueues&";
  for (int i = 0; i < 50000; ++i) form += "a.";
  form += "a=1";
  EXPECT_EQ(query_refusal(form), "MalformedQueryString");
  EXPECT_EQ(query_refusal("a.b.c.d.e.f.g.h.i.j=1"), "accepted");
  EXPECT_EQ(query_refusal("a.b.c.d.e.f.g.h.i.j.k=1"), "MalformedQueryString");
}

TEST(QueryForm, ParameterCountIsBounded) {
  std::string form = "Action=SendMessageBatch";
  for (int i = 1; i < 1000; ++i) form += "&p" + std::to_string(i) + "=x";
  EXPECT_EQ(query_refusal(form), "accepted");
  form += "&one-too-many=x";
  EXPECT_EQ(query_refusal(form), "MalformedQueryString");
}

TEST(QueryForm, MalformedKeysAreRefused) {
  EXPECT_EQ(query_refusal("1=x"), "MalformedQueryString");
  EXPECT_EQ(query_refusal("a..b=x"), "MalformedQueryString");
  EXPECT_EQ(query_refusal("%FF=x"), "MalformedQueryString");
  EXPECT_EQ(query_refusal("a=%F"), "MalformedQueryString");
  EXPECT_EQ(query_refusal("Attribute.1.Name=a&Attribute.1.Name.x=b"), "MalformedQueryString");
  EXPECT_EQ(query_refusal("Attribute.1.Name.x=b"), "InvalidParameterValue");
  EXPECT_EQ(query_refusal("Attribute.1.Value=b"), "MissingParameter");
}

TEST(JsonBody, NestingIsBounded) {
  EXPECT_EQ(refusal([] { parse_json_params(std::string(70000, '[') + std::string(70000, ']')); }),
            "InvalidParameterValue");
  const std::string deep = R"({"a":[[[[[[[[[1]]]]]]]]]})";  // 10 levels
  EXPECT_EQ(refusal([&] { parse_json_params(deep); }), "accepted");
  EXPECT_EQ(refusal([&] { parse_json_params(R"({"a":[[[[[[[[[[1]]]]]]]]]]})"); }), "InvalidParameterValue");
  // Brackets inside strings are not nesting.
  EXPECT_EQ(refusal([] { parse_json_params(R"({"a":")" + std::string(100, '[') + R"(\"["})"); }), "accepted");
  EXPECT_EQ(refusal([] { parse_json_params("[]"); }), "InvalidParameterValue");
  EXPECT_EQ(parse_json_params(""), json::object());
}

TEST(ErrorRendering, AnyBytesRenderAsUtf8JsonAndWellFormedXml) {
  const SqsError e = sqs_error("InvalidAction", std::string("Unknown \xff\xfe\x01 <&>\x0b"));
  const std::string body = render_json_error(e);
  EXPECT_TRUE(valid_utf8(body));
  EXPECT_TRUE(json::accept(body));
  const std::string xml = render_query_error(e, "id");
  EXPECT_TRUE(valid_utf8(xml));
  EXPECT_EQ(xml.find('\x01'), std::string::npos);
  EXPECT_EQ(xml.find('\x0b'), std::string::npos);
  EXPECT_NE(xml.find("&lt;&amp;&gt;"), std::string::npos);
}

TEST(Utf8, ValidityAndQuoting) {
  EXPECT_TRUE(valid_utf8("plain \xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_EQ(quoted_input("a\xff"), "a\xef\xbf\xbd");
  EXPECT_EQ(quoted_input(std::string(300, 'x'), 4), "xxxx...");
}

}  // namespace
}  // namespace shmq::bridge
