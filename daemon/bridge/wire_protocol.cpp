#include "wire_protocol.hpp"

#include <openssl/evp.h>

#include <map>
#include <set>
#include <vector>

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
      if (i + 2 >= s.size()) raise("MalformedQueryString", "bad percent-encoding");
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) raise("MalformedQueryString", "bad percent-encoding");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// Puts `value` at a dotted path: numeric segments index 1-based arrays.
void put(json& node, std::vector<std::string_view>::const_iterator seg,
         std::vector<std::string_view>::const_iterator end, const std::string& value) {
  if (seg == end) {
    node = value;
    return;
  }
  if (all_digits(*seg)) {
    const std::size_t index = std::stoul(std::string(*seg));
    if (index == 0 || index > 1000) raise("InvalidParameterValue", "list index out of range");
    if (!node.is_array()) node = json::array();
    while (node.size() < index) node.push_back(json());
    put(node[index - 1], seg + 1, end, value);
  } else {
    if (!node.is_object()) node = json::object();
    put(node[std::string(*seg)], seg + 1, end, value);
  }
}

// {Name, Value} (or {Key, Value}) lists become maps.
json pairs_to_map(const json& list, const char* key_field, const char* value_field) {
  json map = json::object();
  if (!list.is_array()) return map;
  for (const json& item : list) {
    if (!item.is_object() || !item.contains(key_field)) continue;
    map[item[key_field].get<std::string>()] = item.value(value_field, json(""));
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
      out["Attributes"] = pairs_to_map(value, "Name", "Value");
    } else if (key == "Tag") {
      out["Tags"] = pairs_to_map(value, "Key", "Value");
    } else if (key == "MessageAttribute") {
      out["MessageAttributes"] = pairs_to_map(value, "Name", "Value");
    } else if (key == "MessageSystemAttribute") {
      out["MessageSystemAttributes"] = pairs_to_map(value, "Name", "Value");
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

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\r':
        out += "&#xD;";
        break;  // else XML parsers fold it into \n
      default:
        out.push_back(c);
    }
  }
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
  json tree = json::object();
  std::size_t pos = 0;
  while (pos <= form.size()) {
    std::size_t amp = form.find('&', pos);
    if (amp == std::string_view::npos) amp = form.size();
    const std::string_view pair = form.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string key = form_decode(pair.substr(0, eq));
    const std::string value = eq == std::string_view::npos ? std::string() : form_decode(pair.substr(eq + 1));
    std::vector<std::string_view> segments;
    std::string_view rest = key;
    while (!rest.empty()) {
      const std::size_t dot = rest.find('.');
      segments.push_back(rest.substr(0, dot));
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
    if (segments.empty()) continue;
    put(tree, segments.begin(), segments.end(), value);
  }
  to_json_shape(tree);
  return tree;
}

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
  return json{{"__type", "com.amazonaws.sqs#" + e.shape}, {"message", e.message}}.dump();
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) raise("InvalidParameterValue", "a binary value is not valid base64");
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) raise("InvalidParameterValue", "a binary value is not valid base64");
  // EVP_DecodeBlock counts the padding as zero bytes: take them off.
  std::size_t size = static_cast<std::size_t>(n);
  if (text.ends_with("==")) {
    size -= 2;
  } else if (text.ends_with("=")) {
    size -= 1;
  }
  out.resize(size);
  return out;
}

}  // namespace shmq::bridge
