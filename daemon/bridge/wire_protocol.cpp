#include "wire_protocol.hpp"

#include <array>
#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "base64.hpp"
#include "utf8.hpp"

namespace shmq::bridge {

using nlohmann::json;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded: '+' is a space, %XX a byte.
std::string form_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) raise(errors::bad_percent_encoding());
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) raise(errors::bad_percent_encoding());
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Query keys are dotted paths: Attribute.1.Name, Entry.3.MessageAttribute.2.Value.StringValue.
// SQS's deepest member has 7 segments; bounding them bounds every tree built
// from a request, and every recursion over one.
constexpr std::size_t kMaxQueryKeySegments = 10;
// The most parameters one request may have: SQS's largest request, a
// SendMessageBatch of 10 entries with 10 message attributes each, has about
// 400. Without a bound, 4 MiB of short distinct keys would cost ~300 MB.
constexpr std::size_t kMaxQueryParameters = 1000;

// How many items each flattened list may have: an index past it is refused
// before anything is built, with the error SQS gives for that many items
// (errors::too_many_items, counting `items`; a batch's entries:
// errors::too_many_entries).
struct ListRule {
  std::string_view member;  // the segment before the index, e.g. "MessageAttribute"
  std::size_t max_items;
  std::string_view items;  // as AWS's error counts them, e.g. "message attributes"; empty for entries
};

constexpr std::array kListRules{
    ListRule{"Entry", 10, ""},
    ListRule{"SendMessageBatchRequestEntry", 10, ""},
    ListRule{"DeleteMessageBatchRequestEntry", 10, ""},
    ListRule{"ChangeMessageVisibilityBatchRequestEntry", 10, ""},
    ListRule{"MessageAttribute", 10, "message attributes"},
    ListRule{"MessageSystemAttribute", 10, "message system attributes"},
    // Queue attributes, and the names of queue and message system attributes:
    // SQS has fewer than 32 of each.
    ListRule{"Attribute", 32, "attributes"},
    ListRule{"AttributeName", 32, "attribute names"},
    ListRule{"MessageSystemAttributeName", 32, "attribute names"},
    ListRule{"MessageAttributeName", 32, "message attribute names"},
    // Above a queue's 50 tags: the daemon refuses 51 to 1000 in AWS's words,
    // which name the queue.
    ListRule{"Tag", 1000, "tags"},
    ListRule{"TagKey", 50, "tag keys"},
    ListRule{"AWSAccountId", 100, "account ids"},
    ListRule{"ActionName", 16, "actions"},
};
// Lists SQS does not have (a client's typo, or list values of message
// attributes, which SQS refuses later anyway).
constexpr ListRule kOtherList{"", 10, "list items"};

const ListRule& list_rule(std::string_view member) {
  for (const ListRule& rule : kListRules) {
    if (rule.member == member) return rule;
  }
  return kOtherList;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

[[noreturn]] void refuse_index(const ListRule& rule, std::string_view index) {
  if (rule.items.empty()) raise(errors::too_many_entries(rule.max_items, index));
  raise(errors::too_many_items(rule.items, index, rule.max_items));
}

// A 1-based list index, within what its list allows.
std::size_t list_index(std::string_view member, std::string_view segment, const std::string& key) {
  const ListRule& rule = list_rule(member);
  std::size_t index = 0;
  const auto [ptr, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), index);
  if (ec != std::errc{} || ptr != segment.data() + segment.size() || index > rule.max_items) {
    refuse_index(rule, segment);
  }
  if (index == 0) raise(errors::list_index_zero(key));
  return index;
}

// The form as a tree, before it takes the JSON protocol's shape: named
// members and numbered items are kept apart, and items are sparse (Entry.7
// alone is one item, not seven).
struct FormNode {
  std::optional<std::string> value;
  std::map<std::string, FormNode, std::less<>> members;
  std::map<std::size_t, FormNode> items;
};

// One key=value: segments name members, numeric ones index the list named by
// the segment before.
void put(FormNode& root, const std::string& key, std::string value) {
  std::vector<std::string_view> segments;
  std::string_view rest = key;
  for (;;) {
    const std::size_t dot = rest.find('.');
    segments.push_back(rest.substr(0, dot));
    if (segments.size() > kMaxQueryKeySegments) raise(errors::query_key_too_deep(key, kMaxQueryKeySegments));
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  FormNode* node = &root;
  std::string_view previous;
  for (const std::string_view segment : segments) {
    if (segment.empty()) raise(errors::bad_query_key(key));
    if (all_digits(segment)) {
      if (node == &root) raise(errors::bad_query_key(key));
      node = &node->items[list_index(previous, segment, key)];
    } else {
      auto it = node->members.find(segment);
      if (it == node->members.end()) it = node->members.emplace(std::string(segment), FormNode{}).first;
      node = &it->second;
    }
    previous = segment;
  }
  node->value = std::move(value);  // a repeated key: the last one counts
}

// A value, a structure or a list, never two of them: "Attribute.1.Name=a&Attribute.1.Name.x=b" names nothing.
json to_json(const FormNode& node, const std::string& path) {
  const int kinds = (node.value ? 1 : 0) + (node.members.empty() ? 0 : 1) + (node.items.empty() ? 0 : 1);
  if (kinds > 1) raise(errors::value_and_structure(path));
  if (node.value) return *node.value;
  if (!node.items.empty()) {
    json list = json::array();
    for (const auto& [index, item] : node.items) list.push_back(to_json(item, path + "." + std::to_string(index)));
    return list;
  }
  json object = json::object();
  for (const auto& [name, member] : node.members) {
    object[name] = to_json(member, path.empty() ? name : path + "." + name);
  }
  return object;
}

// {Name, Value} (or {Key, Value}) lists become maps. `member` is the Query
// list's name, for messages.
json pairs_to_map(const json& list, const char* member, const char* key_field, const char* value_field) {
  json map = json::object();
  if (!list.is_array()) return map;
  const std::string parameter = std::string(member) + ".N." + key_field;  // as errors name it
  for (const json& item : list) {
    const auto key = item.is_object() ? item.find(key_field) : item.end();
    if (!item.is_object() || key == item.end()) raise(errors::missing_parameter(parameter));
    if (!key->is_string()) raise(errors::not_a_string(parameter));
    map[key->get<std::string>()] = item.value(value_field, json(""));
  }
  return map;
}

// Renames the Query protocol's flattened members to the JSON protocol's.
void to_json_shape(json& p) {
  if (!p.is_object()) return;
  static const std::map<std::string, std::string> kLists{
      {"AttributeName", "AttributeNames"},
      {"MessageAttributeName", "MessageAttributeNames"},
      {"MessageSystemAttributeName", "MessageSystemAttributeNames"},
      {"TagKey", "TagKeys"},
      {"AWSAccountId", "AWSAccountIds"},
      {"ActionName", "Actions"},
  };
  // botocore writes an empty list as the bare member name: "AttributeNames=".
  static const std::set<std::string> kListMembers{"AttributeNames",
                                                  "MessageAttributeNames",
                                                  "MessageSystemAttributeNames",
                                                  "TagKeys",
                                                  "AWSAccountIds",
                                                  "Actions",
                                                  "Entries",
                                                  "Attributes",
                                                  "Tags",
                                                  "MessageAttributes"};
  json out = json::object();
  for (auto& [key, value] : p.items()) {
    if (value.is_string() && value.get_ref<const std::string&>().empty() &&
        (kListMembers.count(key) || kLists.count(key))) {
      const bool map = key == "Attributes" || key == "Tags" || key == "MessageAttributes";
      out[kLists.count(key) ? kLists.at(key) : key] = map ? json::object() : json::array();
      continue;
    }
    if (auto it = kLists.find(key); it != kLists.end()) {
      out[it->second] = value.is_array() ? value : json::array({value});
    } else if (key == "Attribute") {
      out["Attributes"] = pairs_to_map(value, "Attribute", "Name", "Value");
    } else if (key == "Tag") {
      out["Tags"] = pairs_to_map(value, "Tag", "Key", "Value");
    } else if (key == "MessageAttribute") {
      out["MessageAttributes"] = pairs_to_map(value, "MessageAttribute", "Name", "Value");
    } else if (key == "MessageSystemAttribute") {
      out["MessageSystemAttributes"] = pairs_to_map(value, "MessageSystemAttribute", "Name", "Value");
    } else if (key.ends_with("BatchRequestEntry") || key == "Entry") {
      json entries = json::array();
      if (value.is_array()) {
        for (json entry : value) {
          to_json_shape(entry);
          entries.push_back(entry);
        }
      }
      out["Entries"] = entries;
    } else {
      out[key] = value;
    }
  }
  p = std::move(out);
}

// Text as XML character data, well-formed for any bytes: what XML 1.0 cannot
// carry (ill-formed UTF-8, most control characters, U+FFFE/U+FFFF) becomes
// U+FFFD. SQS refuses such characters in message bodies and attribute
// values, so this changes only text that echoes a malformed request.
std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for_each_code_point(s, [&](char32_t c) {
    switch (c) {
      case '&':
        out += "&amp;";
        return;
      case '<':
        out += "&lt;";
        return;
      case '>':
        out += "&gt;";
        return;
      case '"':
        out += "&quot;";
        return;
      case '\'':
        out += "&apos;";
        return;
      case '\r':
        out += "&#xD;";  // else XML parsers fold it into \n
        return;
      default:
        break;
    }
    const bool allowed = c == 0x9 || c == 0xA || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
                         (c >= 0x10000 && c <= 0x10FFFF);
    append_utf8(out, allowed ? c : char32_t{0xFFFD});
  });
  return out;
}

std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

void render(std::string& out, const std::string& action, const std::string& key, const json& value);

void render_members(std::string& out, const std::string& action, const json& object) {
  for (auto& [key, value] : object.items()) render(out, action, key, value);
}

void element(std::string& out, const std::string& name, const std::string& text) {
  out += "<" + name + ">" + xml_escape(text) + "</" + name + ">";
}

// One JSON member as the Query protocol's XML: lists are flattened into
// repeated elements named for their items; maps become Name/Value pairs.
void render(std::string& out, const std::string& action, const std::string& key, const json& value) {
  if (key == "Attributes" && value.is_object()) {
    for (auto& [name, v] : value.items()) {
      out += "<Attribute>";
      element(out, "Name", name);
      element(out, "Value", scalar_text(v));
      out += "</Attribute>";
    }
  } else if (key == "Tags" && value.is_object()) {
    for (auto& [name, v] : value.items()) {
      out += "<Tag>";
      element(out, "Key", name);
      element(out, "Value", scalar_text(v));
      out += "</Tag>";
    }
  } else if (key == "MessageAttributes" && value.is_object()) {
    for (auto& [name, v] : value.items()) {
      out += "<MessageAttribute>";
      element(out, "Name", name);
      out += "<Value>";
      render_members(out, action, v);
      out += "</Value></MessageAttribute>";
    }
  } else if (value.is_array()) {
    std::string item = key;
    if (key == "QueueUrls" || key == "queueUrls") item = "QueueUrl";
    if (key == "Messages") item = "Message";
    if (key == "Successful") item = action + "ResultEntry";
    if (key == "Failed") item = "BatchResultErrorEntry";
    if (key == "Results") item = action + "ResultEntry";
    for (const json& v : value) {
      if (v.is_object()) {
        out += "<" + item + ">";
        render_members(out, action, v);
        out += "</" + item + ">";
      } else {
        element(out, item, scalar_text(v));
      }
    }
  } else if (value.is_object()) {
    out += "<" + key + ">";
    render_members(out, action, value);
    out += "</" + key + ">";
  } else if (!value.is_null()) {
    element(out, key, scalar_text(value));
  }
}

constexpr const char* kNamespace = "http://queue.amazonaws.com/doc/2012-11-05/";

}  // namespace

json parse_query_params(std::string_view form) {
  FormNode root;
  std::size_t pos = 0;
  std::size_t parameters = 0;
  while (pos <= form.size()) {
    std::size_t amp = form.find('&', pos);
    if (amp == std::string_view::npos) amp = form.size();
    const std::string_view pair = form.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string key = form_decode(pair.substr(0, eq));
    if (key.empty()) continue;
    if (++parameters > kMaxQueryParameters) raise(errors::too_many_query_parameters(kMaxQueryParameters));
    if (!valid_utf8(key)) raise(errors::query_key_not_utf8(key));
    put(root, key, eq == std::string_view::npos ? std::string() : form_decode(pair.substr(eq + 1)));
  }
  json tree = to_json(root, "");
  to_json_shape(tree);
  return tree;
}

json parse_json_params(std::string_view body) {
  if (body.empty()) return json::object();
  // The depth is checked before the tree is built: nlohmann's parser does not
  // recurse, but dump() and every walk over a tree would.
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) raise(errors::json_too_deep(kMaxJsonDepth));
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  json params = json::parse(body, nullptr, false);
  if (params.is_discarded() || !params.is_object()) raise(errors::not_a_json_object());
  return params;
}

std::string dump_json(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string render_query_response(const std::string& action, const json& result, const std::string& request_id) {
  std::string out = R"(<?xml version="1.0" encoding="UTF-8"?>)";
  out += "<" + action + "Response xmlns=\"" + kNamespace + "\">";
  // Actions with an output shape always carry their Result element, if empty.
  static const std::set<std::string> kNoOutput{"DeleteQueue",   "SetQueueAttributes",      "PurgeQueue",
                                               "DeleteMessage", "ChangeMessageVisibility", "TagQueue",
                                               "UntagQueue",    "AddPermission",           "RemovePermission"};
  if (!kNoOutput.count(action)) {
    out += "<" + action + "Result>";
    render_members(out, action, result);
    out += "</" + action + "Result>";
  }
  out += "<ResponseMetadata><RequestId>" + request_id + "</RequestId></ResponseMetadata>";
  out += "</" + action + "Response>";
  return out;
}

std::string render_query_error(const SqsError& e, const std::string& request_id) {
  std::string out = R"(<?xml version="1.0" encoding="UTF-8"?>)";
  out += std::string("<ErrorResponse xmlns=\"") + kNamespace + "\"><Error>";
  element(out, "Type", e.sender_fault ? "Sender" : "Receiver");
  element(out, "Code", e.query_code);
  element(out, "Message", e.message);
  out += "<Detail/></Error>";
  element(out, "RequestId", request_id);
  out += "</ErrorResponse>";
  return out;
}

std::string render_json_error(const SqsError& e) {
  return dump_json(json{{"__type", "com.amazonaws.sqs#" + e.json_type}, {"message", e.message}});
}

std::string base64_encode(std::string_view bytes) { return shmq::detail::base64_encode(bytes); }

std::string base64_decode(std::string_view text) {
  std::optional<std::string> bytes = shmq::detail::base64_decode(text);
  if (!bytes) raise(errors::not_base64());
  return std::move(*bytes);
}

}  // namespace shmq::bridge
