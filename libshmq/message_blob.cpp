#include "message_blob.hpp"

#include <array>
#include <charconv>

#include <cctype>
#include <cstring>

#include "shmq/error.hpp"

namespace shmq::detail {

namespace {

enum Tag : std::uint8_t {
  kGroup = 1,
  kDedup = 2,
  kTrace = 3,
  kSender = 4,
  kDeadLetterSource = 5,
  kAttribute = 6,
};

constexpr std::size_t kFieldHeader = 5;     // tag + u32 length
constexpr std::size_t kMaxAttributes = 10;  // SQS's limit per message

std::size_t attribute_field_bytes(const std::string& name, const MessageAttributeValue& v) {
  const std::string& value = v.data_type.starts_with("Binary") ? v.binary_value : v.string_value;
  return 2 + name.size() + 2 + v.data_type.size() + value.size();
}

std::uint8_t* put_u32(std::uint8_t* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
  return out + 4;
}

std::uint8_t* put_u16(std::uint8_t* out, std::uint16_t v) {
  out[0] = static_cast<std::uint8_t>(v);
  out[1] = static_cast<std::uint8_t>(v >> 8);
  return out + 2;
}

std::uint8_t* put_bytes(std::uint8_t* out, std::string_view s) {
  std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

std::uint8_t* put_field(std::uint8_t* out, Tag tag, std::string_view s) {
  if (s.empty()) return out;
  *out++ = tag;
  out = put_u32(out, static_cast<std::uint32_t>(s.size()));
  return put_bytes(out, s);
}

std::uint32_t get_u32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}

std::uint16_t get_u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }

bool valid_number(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  std::size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0 || digits > 38) return false;  // SQS: up to 38 digits of precision
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 256 || name.front() == '.' || name.back() == '.') return false;
  if (name.find("..") != std::string_view::npos) return false;
  auto starts_ci = [&](std::string_view prefix) {
    if (name.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(name[i])) != prefix[i]) return false;
    }
    return true;
  };
  if (starts_ci("aws.") || starts_ci("amazon.")) return false;
  for (char c : name) {
    // Non-ASCII letters too (UTF-8, checked where the name arrives), as
    // Amazon SQS accepts "attr.1øßä".
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || static_cast<unsigned char>(c) >= 0x80;
    if (!ok) return false;
  }
  return true;
}

// Nodes taken out of a Message's attribute map, to be filled again.
struct SpareNodes {
  std::array<MessageAttributes::node_type, kMaxAttributes> nodes;
  std::size_t count = 0;

  // Empties `map`, keeping up to kMaxAttributes of its nodes.
  void take_from(MessageAttributes& map) {
    while (!map.empty() && count < nodes.size()) nodes[count++] = map.extract(map.begin());
    map.clear();
  }
};

}  // namespace

std::size_t blob_size(const BlobFields& f) noexcept {
  std::size_t n = 0;
  for (std::string_view s : {f.group_id, f.deduplication_id, f.trace_header, f.sender_id, f.dead_letter_source_arn}) {
    if (!s.empty()) n += kFieldHeader + s.size();
  }
  if (f.attributes) {
    for (const auto& [name, v] : *f.attributes) n += kFieldHeader + attribute_field_bytes(name, v);
  }
  return n;
}

void blob_write(const BlobFields& f, std::uint8_t* out) noexcept {
  out = put_field(out, kGroup, f.group_id);
  out = put_field(out, kDedup, f.deduplication_id);
  out = put_field(out, kTrace, f.trace_header);
  out = put_field(out, kSender, f.sender_id);
  out = put_field(out, kDeadLetterSource, f.dead_letter_source_arn);
  if (!f.attributes) return;
  for (const auto& [name, v] : *f.attributes) {
    const std::string& value = v.data_type.starts_with("Binary") ? v.binary_value : v.string_value;
    *out++ = kAttribute;
    out = put_u32(out, static_cast<std::uint32_t>(attribute_field_bytes(name, v)));
    out = put_u16(out, static_cast<std::uint16_t>(name.size()));
    out = put_bytes(out, name);
    out = put_u16(out, static_cast<std::uint16_t>(v.data_type.size()));
    out = put_bytes(out, v.data_type);
    out = put_bytes(out, value);
  }
}

bool read_message_fields(const std::uint8_t* blob, std::size_t bytes, std::optional<std::uint32_t> sender_uid,
                         Message& m) {
  if (!blob_read(blob, bytes, m)) return false;
  if (m.sender_id.empty() && sender_uid) {
    char text[10];
    const auto end = std::to_chars(text, text + sizeof(text), *sender_uid).ptr;
    m.sender_id.assign(text, end);
  }
  return true;
}

bool blob_read(const std::uint8_t* data, std::size_t bytes, Message& m) {
  // The map's nodes, and their strings' storage, hold the attributes read
  // now: a receive loop that reuses its Messages then allocates nothing.
  // (The spares only exist if there are nodes: most messages have none.)
  std::optional<SpareNodes> spare;
  if (!m.attributes.empty()) spare.emplace().take_from(m.attributes);
  std::size_t pos = 0;
  while (pos < bytes) {
    if (bytes - pos < kFieldHeader) return false;
    const auto tag = static_cast<Tag>(data[pos]);
    const std::uint32_t len = get_u32(data + pos + 1);
    pos += kFieldHeader;
    if (len > bytes - pos) return false;
    const char* p = reinterpret_cast<const char*>(data + pos);
    switch (tag) {
      case kGroup:
        m.group_id.assign(p, len);
        break;
      case kDedup:
        m.deduplication_id.assign(p, len);
        break;
      case kTrace:
        m.trace_header.assign(p, len);
        break;
      case kSender:
        m.sender_id.assign(p, len);
        break;
      case kDeadLetterSource:
        m.dead_letter_source_arn.assign(p, len);
        break;
      case kAttribute: {
        if (len < 4) return false;
        const std::uint16_t name_len = get_u16(data + pos);
        if (2u + name_len + 2u > len) return false;
        const std::uint16_t type_len = get_u16(data + pos + 2 + name_len);
        if (4u + name_len + type_len > len) return false;
        const std::string_view name(p + 2, name_len);
        const std::string_view type(p + 4 + name_len, type_len);
        const std::string_view value(p + 4 + name_len + type_len, len - 4 - name_len - type_len);
        MessageAttributes::node_type node;
        if (spare && spare->count > 0) {
          node = std::move(spare->nodes[--spare->count]);
          node.key().assign(name);
        } else {
          MessageAttributes one;
          one.try_emplace(std::string(name));
          node = one.extract(one.begin());
        }
        MessageAttributeValue& v = node.mapped();
        v.data_type.assign(type);
        const bool binary = type.starts_with("Binary");
        (binary ? v.binary_value : v.string_value).assign(value);
        (binary ? v.string_value : v.binary_value).clear();
        // A repeated name keeps its first value, and its node serves the next.
        if (auto r = m.attributes.insert(std::move(node)); !r.inserted && spare) {
          spare->nodes[spare->count++] = std::move(r.node);
        }
        break;
      }
      default:
        return false;
    }
    pos += len;
  }
  return true;
}

std::size_t attributes_size(const MessageAttributes& attributes) noexcept {
  std::size_t n = 0;
  for (const auto& [name, v] : attributes) {
    n += name.size() + v.data_type.size() + v.string_value.size() + v.binary_value.size();
  }
  return n;
}

AttributeProblem find_attribute_problem(const MessageAttributes& attributes) noexcept {
  using Kind = AttributeProblem::Kind;
  if (attributes.size() > kMaxAttributes) return {Kind::too_many, {}, {}};
  for (const auto& [name, v] : attributes) {
    if (!valid_name(name)) return {Kind::bad_name, name, {}};
    const std::string_view type = v.data_type;
    std::string_view base = type.substr(0, type.find('.'));
    if (type.size() > 256 || (base != "String" && base != "Number" && base != "Binary")) {
      return {Kind::bad_type, name, {}};
    }
    if (base.size() != type.size() && base.size() + 1 == type.size()) return {Kind::bad_type, name, {}};
    if (base == "Binary") {
      if (v.binary_value.empty() || !v.string_value.empty()) return {Kind::empty_value, name, base};
    } else {
      if (v.string_value.empty() || !v.binary_value.empty()) return {Kind::empty_value, name, base};
      // An invalid attribute, not an invalid body: Amazon SQS answers InvalidParameterValue.
      if (!valid_message_characters(v.string_value)) return {Kind::bad_characters, name, base};
      if (base == "Number" && !valid_number(v.string_value)) return {Kind::bad_number, name, base};
    }
  }
  return {};
}

std::error_code validate_attributes(const MessageAttributes& attributes) noexcept {
  if (find_attribute_problem(attributes).kind != AttributeProblem::Kind::none) return Errc::invalid_message_attribute;
  return {};
}

bool valid_message_characters(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // Eight bytes at a time while they are printable ASCII (0x20..0x7f):
    // no high bit set, and no byte below 0x20.
    constexpr std::uint64_t kHigh = 0x8080808080808080ull;
    constexpr std::uint64_t kSpaces = 0x2020202020202020ull;
    while (end - p >= 8) {
      std::uint64_t x;
      std::memcpy(&x, p, 8);
      if ((x & kHigh) != 0 || ((x - kSpaces) & ~x & kHigh) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c < 0x20 && c != 0x9 && c != 0xA && c != 0xD) return false;
      ++p;
      continue;
    }
    std::uint32_t cp;
    int extra;
    if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      extra = 1;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      extra = 2;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      extra = 3;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and out-of-range code points are not UTF-8.
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    if (cp == 0xFFFE || cp == 0xFFFF) return false;
    p += extra + 1;
  }
  return true;
}

}  // namespace shmq::detail

namespace shmq {

std::string describe_invalid_attributes(const MessageAttributes& attributes) {
  using Kind = detail::AttributeProblem::Kind;
  const detail::AttributeProblem problem = detail::find_attribute_problem(attributes);
  const std::string name(problem.name);
  switch (problem.kind) {
    case Kind::none:
      return {};
    case Kind::too_many:
      return "Number of message attributes [" + std::to_string(attributes.size()) + "] exceeds the allowed maximum [" +
             std::to_string(detail::kMaxAttributes) + "].";
    case Kind::bad_name:
      return "The message attribute name '" + name +
             "' is invalid. Attribute name can contain A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) "
             "characters.";
    case Kind::bad_type:
      return "The message attribute '" + name +
             "' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and "
             "String.";
    case Kind::empty_value:
      return "Message (user) attribute '" + name + "' must contain a non-empty value of type '" +
             std::string(problem.base_type) + "'.";
    case Kind::bad_number:
      return "Could not cast message attribute '" + name + "' value to number.";
    case Kind::bad_characters:
      return "The message attribute '" + name +
             "' has characters SQS does not allow; the allowed characters are #x9 | #xA | #xD | #x20 to #xD7FF | "
             "#xE000 to #xFFFD | #x10000 to #x10FFFF.";
  }
  return {};
}

}  // namespace shmq
