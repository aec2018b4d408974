// config/: libconfig++ text in, a validated cfg::Config out. The only file in the project that
// includes libconfig; nothing here throws out of the public functions.
#include <arpa/inet.h>

#include <libconfig.h++>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "config/model.h"

namespace cfg {
namespace {

using libconfig::Setting;

// DPDK's default RTE_MAX_LCORE (Debian/Ubuntu builds): lcore ids are 0..127.
constexpr int64_t kMaxLcore = 128;
constexpr int64_t kMaxWorkers = 64;
// sizeof(sockaddr_un::sun_path) minus the terminating NUL.
constexpr size_t kMaxSocketPath = 107;

// VRRP: tracking weights (the priority moves within 1..254), virtual IPs per instance (the count
// field of an advert allows 255; keepalived and RFC 5798 implementations keep far fewer), the
// v2 simple password (8 bytes of auth data), and the GARP refresh period.
constexpr int64_t kMaxVrrpWeight = 254;
constexpr size_t kMaxVips = 32;
constexpr size_t kMaxAuthPass = 8;
constexpr int64_t kMaxGarpRefreshS = 86400;

constexpr const char* kSuffixRestart = " cannot change on reload (restart tandemd to apply)";

std::string quote(std::string_view key) {
  return "'" + std::string(key) + "'";
}

std::string join_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string index_path(const std::string& parent, int i) {
  return parent + "[" + std::to_string(i) + "]";
}

const char* type_name(const Setting& s) {
  switch (s.getType()) {
    case Setting::TypeInt:
    case Setting::TypeInt64:
      return "an integer";
    case Setting::TypeFloat:
      return "a float";
    case Setting::TypeString:
      return "a string";
    case Setting::TypeBoolean:
      return "a boolean";
    case Setting::TypeGroup:
      return "a group";
    case Setting::TypeArray:
      return "an array";
    case Setting::TypeList:
      return "a list";
    default:
      return "nothing";
  }
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions ("idel" -> "idle"
// is 1), case-insensitive.
size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  const size_t n = a.size();
  const size_t m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

// " (did you mean 'x'?)" when one candidate is close enough to be a plausible typo, else "".
std::string suggest(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  size_t best_distance = 0;
  for (const auto& c : candidates) {
    const size_t dist = edit_distance(word, c);
    if (best == nullptr || dist < best_distance) {
      best = &c;
      best_distance = dist;
    }
  }
  if (best == nullptr) return "";
  const size_t limit = std::max<size_t>(1, best->size() / 3);
  if (best_distance > limit) return "";
  return " (did you mean '" + *best + "'?)";
}

bool valid_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool is_power_of_two(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

// Why `a` cannot be a unicast host address, or nullptr if it can.
const char* non_unicast_reason(uint32_t a) {
  if ((a >> 24) == 0) return "in 0.0.0.0/8 (this network)";
  if ((a >> 24) == 127) return "a loopback address";
  if ((a >> 28) == 0xe) return "a multicast address";
  if ((a >> 28) == 0xf) return "a reserved or broadcast address";
  return nullptr;
}

struct PrefixParse {
  std::optional<Ipv4Prefix> prefix;
  std::string problem;  // set when prefix is empty
};

PrefixParse parse_interface_address(const std::string& s) {
  const size_t slash = s.find('/');
  const std::string addr_text = s.substr(0, slash);
  const auto addr = parse_ipv4(addr_text);
  if (!addr) return {std::nullopt, "is not an IPv4 address (expected A.B.C.D/LEN)"};
  Ipv4Prefix p;
  p.addr = *addr;
  p.len = 32;
  if (slash != std::string::npos) {
    const std::string len_text = s.substr(slash + 1);
    if (len_text.empty() || len_text.size() > 2 ||
        !std::all_of(len_text.begin(), len_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return {std::nullopt, "has a bad prefix length (expected A.B.C.D/LEN, LEN 0..32)"};
    }
    const int len = std::stoi(len_text);
    if (len > 32) {
      return {std::nullopt, "has prefix length " + len_text + ", out of range 0..32"};
    }
    p.len = static_cast<uint8_t>(len);
  }
  if (const char* why = non_unicast_reason(p.addr)) {
    return {std::nullopt, "is " + std::string(why) + ", not usable on a port"};
  }
  if (p.len <= 30) {
    const uint32_t mask = p.mask();
    const std::string net = format_ipv4(p.addr & mask) + "/" + std::to_string(p.len);
    if ((p.addr & ~mask) == 0) return {std::nullopt, "is the network address of " + net};
    if ((p.addr & ~mask) == ~mask) return {std::nullopt, "is the broadcast address of " + net};
  }
  return {p, ""};
}

// PCI address "DDDD:BB:DD.F" or "BB:DD.F" (hex), normalized to lowercase "dddd:bb:dd.f".
// `problem` is set when it has the shape of a PCI address but impossible device/function numbers.
std::optional<std::string> parse_pci(const std::string& s, std::string& problem) {
  static const std::regex kPci(
      "^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\\.([0-9a-fA-F])$");
  std::smatch m;
  if (!std::regex_match(s, m, kPci)) return std::nullopt;
  const unsigned long dev = std::stoul(m[3].str(), nullptr, 16);
  const unsigned long fn = std::stoul(m[4].str(), nullptr, 16);
  if (dev > 0x1f || fn > 7) {
    problem = "is not a valid PCI address (device 00..1f, function 0..7)";
    return std::nullopt;
  }
  std::string out =
      (m[1].matched ? m[1].str() : "0000") + ":" + m[2].str() + ":" + m[3].str() + "." + m[4].str();
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

bool is_vdev(const std::string& s) {
  static const std::regex kVdev("^net_[a-z][a-z0-9_]*[0-9]+(,[A-Za-z0-9_]+=[^,]+)*$");
  return std::regex_match(s, kVdev);
}

// libconfig 1.5 reads a decimal literal that does not fit in 32 bits as (int32_t)strtoll(text),
// silently (5000000000 becomes 705032704). Find such literals in the text, by line, so the
// range check can report what the operator wrote instead of accepting a wrapped value.
std::map<int, std::vector<std::string>> scan_int_overflows(const std::string& text) {
  std::map<int, std::vector<std::string>> out;
  int line = 1;
  size_t i = 0;
  const size_t n = text.size();
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  auto is_alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  while (i < n) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '"') {
      for (++i; i < n && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < n) ++i;
        if (text[i] == '\n') ++line;
      }
      ++i;
    } else if (c == '#' || (c == '/' && i + 1 < n && text[i + 1] == '/')) {
      while (i < n && text[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {
      for (i += 2; i < n && !(text[i] == '*' && i + 1 < n && text[i + 1] == '/'); ++i) {
        if (text[i] == '\n') ++line;
      }
      i += 2;
    } else if (is_alpha(c) || c == '*' || c == '@') {
      while (i < n && (is_alpha(text[i]) || is_digit(text[i]) || text[i] == '_' || text[i] == '-' ||
                       text[i] == '*' || text[i] == '@')) {
        ++i;
      }
    } else if (is_digit(c) ||
               ((c == '-' || c == '+' || c == '.') && i + 1 < n && is_digit(text[i + 1]))) {
      const size_t start = i++;
      while (i < n &&
             (is_digit(text[i]) || is_alpha(text[i]) || text[i] == '.' ||
              ((text[i] == '-' || text[i] == '+') && (text[i - 1] == 'e' || text[i - 1] == 'E')))) {
        ++i;
      }
      const std::string tok = text.substr(start, i - start);
      const size_t digits_from = (tok[0] == '-' || tok[0] == '+') ? 1 : 0;
      const bool plain_decimal =
          std::all_of(tok.begin() + static_cast<std::ptrdiff_t>(digits_from), tok.end(), is_digit);
      if (!plain_decimal) continue;  // float, hex or an explicit 64-bit literal (L suffix)
      errno = 0;
      const long long v = std::strtoll(tok.c_str(), nullptr, 10);
      if (errno == ERANGE || v > INT32_MAX || v < INT32_MIN) out[line].push_back(tok);
    } else {
      ++i;
    }
  }
  return out;
}

// Where the text came from: names files in errors and resolves libconfig's line quirks.
struct Source {
  Source(const std::string& text, std::string file_name, std::string include)
      : name(std::move(file_name)), include_dir(std::move(include)) {
    size_t start = 0;
    while (start <= text.size()) {
      const size_t end = text.find('\n', start);
      lines.push_back(text.substr(start, end == std::string::npos ? end : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    overflows = scan_int_overflows(text);
  }

  // libconfig names an included file as written in @include; make it the path it opened.
  std::string file(const char* f) const {
    if (f == nullptr) return name;
    if (f[0] == '/' || include_dir.empty()) return f;
    return include_dir + "/" + f;
  }

  std::string name;
  std::string include_dir;
  std::vector<std::string> lines;
  std::map<int, std::vector<std::string>> overflows;
};

class Parser {
 public:
  explicit Parser(const Source& src) : src_(src) {}

  void run(const Setting& root, Config& c);
  std::vector<Error>& errors() { return errors_; }

 private:
  std::string file_of(const Setting& s) const { return src_.file(s.getSourceFile()); }
  int line_of(const Setting& s) const;
  void fail(const Setting& s, std::string message) {
    errors_.push_back({file_of(s), line_of(s), std::move(message)});
  }

  void check_keys(const Setting& group, const std::string& path,
                  std::initializer_list<const char*> allowed);
  const Setting* group(const Setting& parent, const std::string& parent_path, const char* key);
  const Setting* sequence(const Setting& parent, const std::string& parent_path, const char* key,
                          const char* of_what);

  // `note` follows the range in the message (" for version 2" when the range depends on it).
  std::optional<int64_t> int_value(const Setting& s, const std::string& path, int64_t lo,
                                   int64_t hi, std::string_view note = {});
  std::optional<std::string> string_value(const Setting& s, const std::string& path);

  template <typename T>
  const Setting* read_int(const Setting& g, const std::string& gpath, const char* key, int64_t lo,
                          int64_t hi, T& out);
  const Setting* read_bool(const Setting& g, const std::string& gpath, const char* key, bool& out);
  const Setting* read_string(const Setting& g, const std::string& gpath, const char* key,
                             std::string& out);
  const Setting* read_name(const Setting& g, const std::string& gpath, const char* key,
                           std::string& out);

  void parse_eal(const Setting& g, Eal& e);
  void parse_dataplane(const Setting& g, Dataplane& d);
  void parse_ports(const Setting& root, Config& c);
  void parse_port(const Setting& s, int index, Config& c);
  void parse_neighbors(const Setting& g, Config& c);
  void parse_static(const Setting& s, int index, Config& c);
  void parse_arp(const Setting& g, Arp& a);
  void parse_control(const Setting& g, Control& ctl);
  void parse_metrics(const Setting& g, Metrics& m);

  const Setting* group_list(const Setting& parent, const std::string& parent_path, const char* key);
  const Setting* read_notify(const Setting& g, const std::string& gpath, std::string& out);
  void parse_vrrp(const Setting& g, Config& c);
  void parse_vrrp_script(const Setting& s, int index, Vrrp& v);
  void parse_vrrp_instance(const Setting& s, int index, Config& c);
  void parse_vrrp_addresses(const Setting& s, const std::string& p, VrrpInstance& vi);
  void parse_vrrp_tracking(const Setting& s, const std::string& p, VrrpInstance& vi);
  void parse_sync_group(const Setting& s, int index, Vrrp& v);

  const Source& src_;
  std::vector<Error> errors_;

  // Cross-entry checks: what was seen first, and where.
  struct Seen {
    std::string port;
    int line = 0;
  };
  std::map<std::string, int> port_names_;  // name -> line
  std::map<std::string, Seen> devices_;    // device identity -> first port using it
  std::map<uint32_t, Seen> addresses_;     // our addresses -> owning port
  std::map<std::pair<std::string, uint32_t>, int> statics_;  // (port, ip) -> line
  // VRRP. Seen::port holds an instance or sync group name here; the first definition wins.
  std::map<std::string, int> script_names_;                 // name -> line
  std::map<std::string, int> instance_names_;               // name -> line
  std::map<std::string, int> group_names_;                  // name -> line
  std::map<std::pair<std::string, uint32_t>, Seen> vrids_;  // (port, vrid) -> instance
  std::map<uint32_t, Seen> vips_;                           // virtual IP -> instance
  std::map<std::string, Seen> grouped_;                     // instance -> its sync group
};

int Parser::line_of(const Setting& s) const {
  const int line = static_cast<int>(s.getSourceLine());
  // libconfig looks past a string for an adjacent one to concatenate, so an unnamed string
  // element (in an array or list) gets the line of the token after it: the last address of a
  // multi-line array would point at the closing bracket. Walk back to the line that holds it.
  if (s.getName() != nullptr || s.getType() != Setting::TypeString ||
      s.getSourceFile() != nullptr || line < 1 || static_cast<size_t>(line) > src_.lines.size()) {
    return line;
  }
  const std::string quoted = "\"" + std::string(static_cast<const char*>(s)) + "\"";
  for (int l = line; l >= 1; --l) {
    if (src_.lines[static_cast<size_t>(l - 1)].find(quoted) != std::string::npos) return l;
  }
  return line;
}

void Parser::check_keys(const Setting& group, const std::string& path,
                        std::initializer_list<const char*> allowed) {
  const std::vector<std::string> names(allowed.begin(), allowed.end());
  for (int i = 0; i < group.getLength(); ++i) {
    const Setting& s = group[i];
    const char* raw = s.getName();
    const std::string key = raw != nullptr ? raw : "";
    if (std::find(names.begin(), names.end(), key) != names.end()) continue;
    fail(s, "unknown key " + quote(join_path(path, key)) + suggest(key, names));
  }
}

const Setting* Parser::group(const Setting& parent, const std::string& parent_path,
                             const char* key) {
  if (!parent.exists(key)) return nullptr;
  const Setting& s = parent[key];
  if (s.getType() != Setting::TypeGroup) {
    fail(s, quote(join_path(parent_path, key)) + " must be a group { ... }, got " + type_name(s));
    return nullptr;
  }
  return &s;
}

// Arrays [ ... ] and lists ( ... ) of scalars are both accepted; element types are checked one
// by one by the caller.
const Setting* Parser::sequence(const Setting& parent, const std::string& parent_path,
                                const char* key, const char* of_what) {
  if (!parent.exists(key)) return nullptr;
  const Setting& s = parent[key];
  if (s.getType() != Setting::TypeArray && s.getType() != Setting::TypeList) {
    fail(s, quote(join_path(parent_path, key)) + " must be an array [ ... ] of " + of_what +
                ", got " + type_name(s));
    return nullptr;
  }
  return &s;
}

std::optional<int64_t> Parser::int_value(const Setting& s, const std::string& path, int64_t lo,
                                         int64_t hi, std::string_view note) {
  const auto type = s.getType();
  if (type != Setting::TypeInt && type != Setting::TypeInt64) {
    fail(s, quote(path) + " must be an integer, got " + type_name(s));
    return std::nullopt;
  }
  const int64_t v = type == Setting::TypeInt64 ? static_cast<long long>(s) : static_cast<int>(s);
  std::string shown = std::to_string(v);
  bool overflowed = false;
  if (type == Setting::TypeInt && s.getSourceFile() == nullptr) {
    const auto it = src_.overflows.find(line_of(s));
    if (it != src_.overflows.end()) {
      for (const auto& lit : it->second) {
        if (static_cast<int32_t>(std::strtoll(lit.c_str(), nullptr, 10)) == v) {
          shown = lit;
          overflowed = true;
          break;
        }
      }
    }
  }
  if (overflowed || v < lo || v > hi) {
    fail(s, quote(path) + " = " + shown + " is out of range " + std::to_string(lo) + ".." +
                std::to_string(hi) + std::string(note));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> Parser::string_value(const Setting& s, const std::string& path) {
  if (s.getType() != Setting::TypeString) {
    fail(s, quote(path) + " must be a string, got " + type_name(s));
    return std::nullopt;
  }
  return std::string(static_cast<const char*>(s));
}

template <typename T>
const Setting* Parser::read_int(const Setting& g, const std::string& gpath, const char* key,
                                int64_t lo, int64_t hi, T& out) {
  if (!g.exists(key)) return nullptr;
  const Setting& s = g[key];
  const auto v = int_value(s, join_path(gpath, key), lo, hi);
  if (!v) return nullptr;
  out = static_cast<T>(*v);
  return &s;
}

const Setting* Parser::read_bool(const Setting& g, const std::string& gpath, const char* key,
                                 bool& out) {
  if (!g.exists(key)) return nullptr;
  const Setting& s = g[key];
  if (s.getType() != Setting::TypeBoolean) {
    fail(s,
         quote(join_path(gpath, key)) + " must be a boolean (true or false), got " + type_name(s));
    return nullptr;
  }
  out = static_cast<bool>(s);
  return &s;
}

const Setting* Parser::read_string(const Setting& g, const std::string& gpath, const char* key,
                                   std::string& out) {
  if (!g.exists(key)) return nullptr;
  const Setting& s = g[key];
  auto v = string_value(s, join_path(gpath, key));
  if (!v) return nullptr;
  out = std::move(*v);
  return &s;
}

// A name that ends up in metrics labels, CLI arguments or file names.
const Setting* Parser::read_name(const Setting& g, const std::string& gpath, const char* key,
                                 std::string& out) {
  if (!g.exists(key)) return nullptr;
  const Setting& s = g[key];
  const std::string path = join_path(gpath, key);
  auto v = string_value(s, path);
  if (!v) return nullptr;
  if (v->empty()) {
    fail(s, quote(path) + " must not be empty");
    return nullptr;
  }
  if (!valid_name(*v)) {
    fail(s, quote(path) + " = \"" + *v + "\" may only contain A-Z a-z 0-9 . _ -");
    return nullptr;
  }
  out = std::move(*v);
  return &s;
}

void Parser::run(const Setting& root, Config& c) {
  check_keys(
      root, "",
      {"node", "eal", "dataplane", "ports", "neighbors", "arp", "control", "metrics", "vrrp"});
  read_name(root, "", "node", c.node);
  if (const Setting* g = group(root, "", "eal")) parse_eal(*g, c.eal);
  if (const Setting* g = group(root, "", "dataplane")) parse_dataplane(*g, c.dataplane);
  parse_ports(root, c);
  if (const Setting* g = group(root, "", "neighbors")) parse_neighbors(*g, c);
  if (const Setting* g = group(root, "", "arp")) parse_arp(*g, c.arp);
  if (const Setting* g = group(root, "", "control")) parse_control(*g, c.control);
  if (const Setting* g = group(root, "", "metrics")) parse_metrics(*g, c.metrics);
  if (const Setting* g = group(root, "", "vrrp")) parse_vrrp(*g, c);
}

void Parser::parse_eal(const Setting& g, Eal& e) {
  const std::string p = "eal";
  e.line = line_of(g);
  check_keys(g, p, {"memory_mb", "hugepages", "in_memory", "file_prefix", "log_level", "args"});
  read_int(g, p, "memory_mb", 16, 1048576, e.memory_mb);
  const Setting* hugepages = read_bool(g, p, "hugepages", e.hugepages);
  const Setting* in_memory = read_bool(g, p, "in_memory", e.in_memory);
  read_name(g, p, "file_prefix", e.file_prefix);

  static const std::vector<std::string> kLevels = {"emerg",   "alert",  "crit", "error",
                                                   "warning", "notice", "info", "debug"};
  std::string level;
  if (const Setting* s = read_string(g, p, "log_level", level)) {
    if (std::find(kLevels.begin(), kLevels.end(), level) == kLevels.end()) {
      fail(*s, "'eal.log_level' = \"" + level +
                   "\" is not one of: emerg, alert, crit, error, warning, notice, info, debug");
    } else {
      e.log_level = level;
    }
  }

  if (const Setting* s = sequence(g, p, "args", "strings")) {
    std::vector<std::string> args;
    for (int i = 0; i < s->getLength(); ++i) {
      if (auto v = string_value((*s)[i], index_path("eal.args", i))) args.push_back(*v);
    }
    e.args = std::move(args);
  }

  if (e.in_memory && !e.hugepages) {
    if (in_memory != nullptr) {
      fail(*in_memory,
           "'eal.in_memory' = true cannot be combined with 'eal.hugepages' = false: DPDK refuses "
           "--in-memory with --no-huge (set in_memory = false)");
    } else if (hugepages != nullptr) {
      fail(*hugepages,
           "'eal.hugepages' = false needs 'eal.in_memory' = false (the default is true): DPDK "
           "refuses --in-memory with --no-huge");
    }
  }
}

void Parser::parse_dataplane(const Setting& g, Dataplane& d) {
  const std::string p = "dataplane";
  d.line = line_of(g);
  check_keys(g, p,
             {"control_core", "worker_cores", "idle", "idle_sleep_max_us", "burst", "mbufs",
              "mbuf_cache"});
  const Setting* control = read_int(g, p, "control_core", 0, kMaxLcore - 1, d.control_core);

  if (const Setting* s = sequence(g, p, "worker_cores", "integers")) {
    bool ok = true;
    std::vector<uint32_t> cores;
    const int n = s->getLength();
    if (n < 1 || n > kMaxWorkers) {
      fail(*s, "'dataplane.worker_cores' must have 1.." + std::to_string(kMaxWorkers) +
                   " entries, got " + std::to_string(n));
      ok = false;
    }
    for (int i = 0; i < n; ++i) {
      const Setting& el = (*s)[i];
      const auto v = int_value(el, index_path("dataplane.worker_cores", i), 0, kMaxLcore - 1);
      if (!v) {
        ok = false;
        continue;
      }
      const auto core = static_cast<uint32_t>(*v);
      if (core == d.control_core) {
        fail(el, "'dataplane.worker_cores' contains core " + std::to_string(core) +
                     ", which is 'dataplane.control_core'");
        ok = false;
      } else if (std::find(cores.begin(), cores.end(), core) != cores.end()) {
        fail(el, "'dataplane.worker_cores' lists core " + std::to_string(core) + " twice");
        ok = false;
      }
      cores.push_back(core);
    }
    if (ok) d.worker_cores = std::move(cores);
  } else if (control != nullptr && !g.exists("worker_cores") &&
             std::find(d.worker_cores.begin(), d.worker_cores.end(), d.control_core) !=
                 d.worker_cores.end()) {
    fail(*control, "'dataplane.control_core' = " + std::to_string(d.control_core) +
                       " is also the default worker core: set 'dataplane.worker_cores'");
  }

  std::string idle;
  if (const Setting* s = read_string(g, p, "idle", idle)) {
    if (idle == "busy") {
      d.idle = IdleMode::kBusy;
    } else if (idle == "adaptive") {
      d.idle = IdleMode::kAdaptive;
    } else {
      fail(*s, "'dataplane.idle' = \"" + idle + "\" is not one of: busy, adaptive");
    }
  }
  read_int(g, p, "idle_sleep_max_us", 1, 100000, d.idle_sleep_max_us);
  read_int(g, p, "burst", 1, 256, d.burst);
  read_int(g, p, "mbufs", 1023, 16777215, d.mbufs);
  read_int(g, p, "mbuf_cache", 0, 512, d.mbuf_cache);
}

void Parser::parse_ports(const Setting& root, Config& c) {
  if (!root.exists("ports")) {
    errors_.push_back({src_.name, 0, "missing required key 'ports' (a list of at least one port)"});
    return;
  }
  const Setting& s = root["ports"];
  if (s.getType() != Setting::TypeList) {
    fail(s, std::string("'ports' must be a list of groups ( { ... }, ... ), got ") + type_name(s));
    return;
  }
  if (s.getLength() == 0) fail(s, "'ports' must have at least one entry");
  for (int i = 0; i < s.getLength(); ++i) parse_port(s[i], i, c);
}

void Parser::parse_port(const Setting& s, int index, Config& c) {
  const std::string p = index_path("ports", index);
  if (s.getType() != Setting::TypeGroup) {
    fail(s, quote(p) + " must be a group { ... }, got " + type_name(s));
    return;
  }
  Port port;
  port.line = line_of(s);
  check_keys(s, p, {"name", "device", "addresses", "mtu", "rx_desc", "tx_desc"});

  if (!s.exists("name")) fail(s, "missing required key " + quote(p + ".name"));
  if (const Setting* n = read_name(s, p, "name", port.name)) {
    const auto [it, fresh] = port_names_.emplace(port.name, line_of(*n));
    if (!fresh) {
      fail(*n, "duplicate port name '" + port.name + "' (first defined on line " +
                   std::to_string(it->second) + ")");
    }
  }
  // Names used in the messages below: the port's own name when it has one.
  const std::string who = port.name.empty() ? p : port.name;

  if (!s.exists("device")) fail(s, "missing required key " + quote(p + ".device"));
  if (const Setting* d = read_string(s, p, "device", port.device)) {
    std::string problem;
    std::string identity;
    if (auto pci = parse_pci(port.device, problem)) {
      port.is_pci = true;
      identity = *pci;
    } else if (problem.empty() && is_vdev(port.device)) {
      identity = port.device.substr(0, port.device.find(','));
    } else {
      if (problem.empty()) {
        problem =
            "is neither a PCI address (0000:03:00.0) nor a DPDK vdev "
            "(net_<driver><n>[,key=value...], e.g. net_af_packet0,iface=eth0)";
      }
      fail(*d, quote(p + ".device") + " = \"" + port.device + "\" " + problem);
    }
    if (!identity.empty()) {
      const auto [it, fresh] = devices_.emplace(identity, Seen{who, line_of(*d)});
      if (!fresh) {
        fail(*d, "device '" + identity + "' is already used by port '" + it->second.port +
                     "' (line " + std::to_string(it->second.line) + ")");
      }
    }
  }

  if (const Setting* a = sequence(s, p, "addresses", "strings")) {
    for (int i = 0; i < a->getLength(); ++i) {
      const Setting& el = (*a)[i];
      const std::string ep = index_path(p + ".addresses", i);
      const auto text = string_value(el, ep);
      if (!text) continue;
      const PrefixParse parsed = parse_interface_address(*text);
      if (!parsed.prefix) {
        fail(el, quote(ep) + " = \"" + *text + "\" " + parsed.problem);
        continue;
      }
      const Ipv4Prefix prefix = *parsed.prefix;
      const auto [it, fresh] = addresses_.emplace(prefix.addr, Seen{who, line_of(el)});
      if (!fresh) {
        const std::string ip = format_ipv4(prefix.addr);
        if (it->second.port == who) {
          fail(el, "address " + ip + " is listed twice on port '" + who + "'");
        } else {
          fail(el, "address " + ip + " is already assigned to port '" + it->second.port +
                       "' (line " + std::to_string(it->second.line) + ")");
        }
        continue;
      }
      port.addresses.push_back(prefix);
    }
  }

  read_int(s, p, "mtu", 68, 9600, port.mtu);
  for (const char* key : {"rx_desc", "tx_desc"}) {
    uint16_t value = 1024;
    if (const Setting* d = read_int(s, p, key, 64, 16384, value)) {
      if (!is_power_of_two(value)) {
        fail(*d,
             quote(join_path(p, key)) + " = " + std::to_string(value) + " must be a power of two");
        continue;
      }
      (std::string_view(key) == "rx_desc" ? port.rx_desc : port.tx_desc) = value;
    }
  }
  c.ports.push_back(std::move(port));
}

void Parser::parse_neighbors(const Setting& g, Config& c) {
  const std::string p = "neighbors";
  Neighbors& n = c.neighbors;
  n.line = line_of(g);
  check_keys(g, p, {"reachable_ms", "probe_interval_ms", "probes", "max_entries", "static"});
  read_int(g, p, "reachable_ms", 1000, 3600000, n.reachable_ms);
  read_int(g, p, "probe_interval_ms", 10, 60000, n.probe_interval_ms);
  read_int(g, p, "probes", 1, 100, n.probes);
  read_int(g, p, "max_entries", 16, 16777216, n.max_entries);
  if (!g.exists("static")) return;
  const Setting& s = g["static"];
  if (s.getType() != Setting::TypeList) {
    fail(s, std::string("'neighbors.static' must be a list of groups ( { ... }, ... ), got ") +
                type_name(s));
    return;
  }
  for (int i = 0; i < s.getLength(); ++i) parse_static(s[i], i, c);
  if (static_cast<uint64_t>(s.getLength()) > n.max_entries) {
    fail(s, "'neighbors.static' has " + std::to_string(s.getLength()) +
                " entries, more than 'neighbors.max_entries' = " + std::to_string(n.max_entries));
  }
}

void Parser::parse_static(const Setting& s, int index, Config& c) {
  const std::string p = index_path("neighbors.static", index);
  if (s.getType() != Setting::TypeGroup) {
    fail(s, quote(p) + " must be a group { ... }, got " + type_name(s));
    return;
  }
  StaticNeighbor nb;
  nb.line = line_of(s);
  check_keys(s, p, {"port", "ip", "mac"});
  bool ok = true;
  for (const char* key : {"port", "ip", "mac"}) {
    if (!s.exists(key)) {
      fail(s, "missing required key " + quote(join_path(p, key)));
      ok = false;
    }
  }

  if (const Setting* ps = read_string(s, p, "port", nb.port)) {
    if (port_names_.count(nb.port) == 0) {
      std::vector<std::string> known;
      for (const auto& [name, line] : port_names_) known.push_back(name);
      fail(*ps, quote(p + ".port") + " = \"" + nb.port + "\" is not a configured port" +
                    suggest(nb.port, known));
      ok = false;
    }
  } else {
    ok = false;
  }

  std::string ip_text;
  const Setting* ip_setting = read_string(s, p, "ip", ip_text);
  if (ip_setting != nullptr) {
    const auto ip = parse_ipv4(ip_text);
    const char* why = ip ? non_unicast_reason(*ip) : nullptr;
    if (!ip) {
      fail(*ip_setting,
           quote(p + ".ip") + " = \"" + ip_text + "\" is not an IPv4 address (expected A.B.C.D)");
      ok = false;
    } else if (why != nullptr) {
      fail(*ip_setting, quote(p + ".ip") + " = \"" + ip_text + "\" is " + why);
      ok = false;
    } else {
      nb.ip = *ip;
    }
  } else {
    ok = false;
  }

  std::string mac_text;
  if (const Setting* ms = read_string(s, p, "mac", mac_text)) {
    const auto mac = parse_mac(mac_text);
    if (!mac) {
      fail(*ms, quote(p + ".mac") + " = \"" + mac_text +
                    "\" is not a MAC address (expected xx:xx:xx:xx:xx:xx)");
      ok = false;
    } else if (((*mac)[0] & 1) != 0 || *mac == Mac{}) {
      fail(*ms, quote(p + ".mac") + " = \"" + mac_text + "\" is not a unicast MAC address");
      ok = false;
    } else {
      nb.mac = *mac;
    }
  } else {
    ok = false;
  }

  if (ip_setting != nullptr && nb.ip != 0) {
    const std::string ip = format_ipv4(nb.ip);
    const auto own = addresses_.find(nb.ip);
    if (own != addresses_.end()) {
      fail(*ip_setting, "static neighbor " + ip + " is one of our own addresses (port '" +
                            own->second.port + "')");
      ok = false;
    } else if (!nb.port.empty()) {
      const auto [it, fresh] = statics_.emplace(std::make_pair(nb.port, nb.ip), nb.line);
      if (!fresh) {
        fail(*ip_setting, "static neighbor " + ip + " on port '" + nb.port +
                              "' is already defined on line " + std::to_string(it->second));
        ok = false;
      }
    }
  }
  if (ok) c.neighbors.statics.push_back(nb);
}

void Parser::parse_arp(const Setting& g, Arp& a) {
  a.line = line_of(g);
  check_keys(g, "arp", {"garp_count", "garp_interval_ms"});
  read_int(g, "arp", "garp_count", 0, 100, a.garp_count);
  read_int(g, "arp", "garp_interval_ms", 10, 60000, a.garp_interval_ms);
}

void Parser::parse_control(const Setting& g, Control& ctl) {
  ctl.line = line_of(g);
  check_keys(g, "control", {"socket"});
  std::string path;
  if (const Setting* s = read_string(g, "control", "socket", path)) {
    if (path.empty() || path[0] != '/') {
      fail(*s, "'control.socket' = \"" + path + "\" must be an absolute path");
    } else if (path.size() > kMaxSocketPath) {
      fail(*s, "'control.socket' is " + std::to_string(path.size()) +
                   " bytes long, more than a unix socket path can hold (" +
                   std::to_string(kMaxSocketPath) + ")");
    } else {
      ctl.socket = path;
    }
  }
}

// HOST:PORT with HOST an IPv4 address or a bracketed IPv6 address, PORT 1..65535.
bool valid_listen(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  const std::string host = s.substr(0, colon);
  const std::string port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const long n = std::stol(port);
  if (n < 1 || n > 65535) return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    in6_addr a6{};
    return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6) == 1;
  }
  return parse_ipv4(host).has_value();
}

void Parser::parse_metrics(const Setting& g, Metrics& m) {
  m.line = line_of(g);
  check_keys(g, "metrics", {"enabled", "listen"});
  read_bool(g, "metrics", "enabled", m.enabled);
  std::string listen;
  if (const Setting* s = read_string(g, "metrics", "listen", listen)) {
    if (!valid_listen(listen)) {
      fail(*s, "'metrics.listen' = \"" + listen +
                   "\" is not HOST:PORT (e.g. 127.0.0.1:9469 or [::1]:9469, port 1..65535)");
    } else {
      m.listen = listen;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// vrrp

// A list ( { ... }, ... ) of groups; each element is checked by the caller.
const Setting* Parser::group_list(const Setting& parent, const std::string& parent_path,
                                  const char* key) {
  if (!parent.exists(key)) return nullptr;
  const Setting& s = parent[key];
  if (s.getType() != Setting::TypeList) {
    fail(s, quote(join_path(parent_path, key)) +
                " must be a list of groups ( { ... }, ... ), got " + type_name(s));
    return nullptr;
  }
  return &s;
}

// `notify`: empty (unset) or an absolute path.
const Setting* Parser::read_notify(const Setting& g, const std::string& gpath, std::string& out) {
  std::string path;
  const Setting* s = read_string(g, gpath, "notify", path);
  if (s == nullptr) return nullptr;
  if (!path.empty() && path[0] != '/') {
    fail(*s, quote(join_path(gpath, "notify")) + " = \"" + path + "\" must be an absolute path");
    return nullptr;
  }
  out = std::move(path);
  return s;
}

void Parser::parse_vrrp(const Setting& g, Config& c) {
  const std::string p = "vrrp";
  Vrrp& v = c.vrrp;
  v.line = line_of(g);
  check_keys(g, p,
             {"checksum", "garp_count", "garp_interval_ms", "garp_refresh_s", "notify", "scripts",
              "instances", "sync_groups"});
  std::string checksum;
  if (const Setting* s = read_string(g, p, "checksum", checksum)) {
    if (checksum == "keepalived") {
      v.checksum = VrrpChecksum::kKeepalived;
    } else if (checksum == "rfc9568") {
      v.checksum = VrrpChecksum::kRfc9568;
    } else {
      fail(*s, "'vrrp.checksum' = \"" + checksum + "\" is not one of: keepalived, rfc9568");
    }
  }
  read_int(g, p, "garp_count", 0, 100, v.garp_count);
  read_int(g, p, "garp_interval_ms", 10, 60000, v.garp_interval_ms);
  read_int(g, p, "garp_refresh_s", 0, kMaxGarpRefreshS, v.garp_refresh_s);
  read_notify(g, p, v.notify);
  // Scripts first and sync groups last, whatever the order in the file: instances name scripts,
  // groups name instances.
  if (const Setting* l = group_list(g, p, "scripts")) {
    for (int i = 0; i < l->getLength(); ++i) parse_vrrp_script((*l)[i], i, v);
  }
  if (const Setting* l = group_list(g, p, "instances")) {
    for (int i = 0; i < l->getLength(); ++i) parse_vrrp_instance((*l)[i], i, c);
  }
  if (const Setting* l = group_list(g, p, "sync_groups")) {
    for (int i = 0; i < l->getLength(); ++i) parse_sync_group((*l)[i], i, v);
  }
}

void Parser::parse_vrrp_script(const Setting& s, int index, Vrrp& v) {
  const std::string p = index_path("vrrp.scripts", index);
  if (s.getType() != Setting::TypeGroup) {
    fail(s, quote(p) + " must be a group { ... }, got " + type_name(s));
    return;
  }
  VrrpScript sc;
  sc.line = line_of(s);
  check_keys(s, p, {"name", "command", "interval_ms", "timeout_ms", "weight", "rise", "fall"});
  if (!s.exists("name")) fail(s, "missing required key " + quote(p + ".name"));
  if (const Setting* n = read_name(s, p, "name", sc.name)) {
    const auto [it, fresh] = script_names_.emplace(sc.name, line_of(*n));
    if (!fresh) {
      fail(*n, "duplicate VRRP script name '" + sc.name + "' (first defined on line " +
                   std::to_string(it->second) + ")");
    }
  }
  if (!s.exists("command")) fail(s, "missing required key " + quote(p + ".command"));
  if (const Setting* cmd = read_string(s, p, "command", sc.command)) {
    if (sc.command.find_first_not_of(" \t") == std::string::npos) {
      fail(*cmd, quote(p + ".command") + " must not be empty");
    }
  }
  read_int(s, p, "interval_ms", 100, 3600000, sc.interval_ms);
  // Without timeout_ms: 1000, or half the interval when that is not less than the interval.
  sc.timeout_ms = sc.interval_ms > 1000 ? 1000 : sc.interval_ms / 2;
  if (const Setting* t = read_int(s, p, "timeout_ms", 10, 3600000, sc.timeout_ms)) {
    if (sc.timeout_ms >= sc.interval_ms) {
      fail(*t, quote(p + ".timeout_ms") + " = " + std::to_string(sc.timeout_ms) +
                   " must be less than " + quote(p + ".interval_ms") + " = " +
                   std::to_string(sc.interval_ms));
    }
  }
  read_int(s, p, "weight", -kMaxVrrpWeight, kMaxVrrpWeight, sc.weight);
  read_int(s, p, "rise", 1, 100, sc.rise);
  read_int(s, p, "fall", 1, 100, sc.fall);
  v.scripts.push_back(std::move(sc));
}

void Parser::parse_vrrp_instance(const Setting& s, int index, Config& c) {
  const std::string p = index_path("vrrp.instances", index);
  if (s.getType() != Setting::TypeGroup) {
    fail(s, quote(p) + " must be a group { ... }, got " + type_name(s));
    return;
  }
  VrrpInstance vi;
  vi.line = line_of(s);
  check_keys(s, p,
             {"name", "port", "vrid", "version", "priority", "advert_interval_ms", "preempt",
              "preempt_delay_ms", "virtual_ips", "virtual_mac", "auth_pass", "unicast_peers",
              "track_ports", "track_scripts", "notify"});
  for (const char* key : {"name", "port", "vrid", "virtual_ips"}) {
    if (!s.exists(key)) fail(s, "missing required key " + quote(join_path(p, key)));
  }

  if (const Setting* n = read_name(s, p, "name", vi.name)) {
    const auto [it, fresh] = instance_names_.emplace(vi.name, line_of(*n));
    if (!fresh) {
      fail(*n, "duplicate VRRP instance name '" + vi.name + "' (first defined on line " +
                   std::to_string(it->second) + ")");
    }
  }
  const std::string who = vi.name.empty() ? p : vi.name;

  bool port_ok = false;
  if (const Setting* ps = read_string(s, p, "port", vi.port)) {
    if (port_names_.count(vi.port) == 0) {
      std::vector<std::string> known;
      for (const auto& [name, line] : port_names_) known.push_back(name);
      fail(*ps, quote(p + ".port") + " = \"" + vi.port + "\" is not a configured port" +
                    suggest(vi.port, known));
    } else {
      port_ok = true;
    }
  }
  if (const Setting* vs = read_int(s, p, "vrid", 1, 255, vi.vrid); vs != nullptr && port_ok) {
    const auto [it, fresh] =
        vrids_.emplace(std::make_pair(vi.port, vi.vrid), Seen{who, line_of(*vs)});
    if (!fresh) {
      fail(*vs, "VRID " + std::to_string(vi.vrid) + " is already used on port '" + vi.port +
                    "' by instance '" + it->second.port + "' (line " +
                    std::to_string(it->second.line) + ")");
    }
  }

  bool version_ok = true;
  if (s.exists("version")) {
    const Setting& vs = s["version"];
    if (const auto v = int_value(vs, p + ".version", INT32_MIN, INT32_MAX)) {
      if (*v == 2 || *v == 3) {
        vi.version = static_cast<uint32_t>(*v);
      } else {
        fail(vs, quote(p + ".version") + " = " + std::to_string(*v) + " is not one of: 2, 3");
        version_ok = false;
      }
    } else {
      version_ok = false;
    }
  }
  read_int(s, p, "priority", 1, 255, vi.priority);
  if (version_ok && s.exists("advert_interval_ms")) {
    const Setting& as = s["advert_interval_ms"];
    const bool v3 = vi.version == 3;
    const int64_t lo = v3 ? 10 : 1000;
    const int64_t hi = v3 ? 40950 : 255000;
    const std::string path = p + ".advert_interval_ms";
    const std::string note = " for version " + std::to_string(vi.version);
    if (const auto v = int_value(as, path, lo, hi, note)) {
      if (*v % lo != 0) {
        fail(as, quote(path) + " = " + std::to_string(*v) + " must be a multiple of " +
                     std::to_string(lo) + note +
                     (v3 ? " (adverts carry centiseconds)" : " (adverts carry seconds)"));
      } else {
        vi.advert_interval_ms = static_cast<uint32_t>(*v);
      }
    }
  }
  const Setting* preempt = read_bool(s, p, "preempt", vi.preempt);
  if (preempt != nullptr && !vi.preempt && vi.priority == 255) {
    fail(*preempt, quote(p + ".preempt") +
                       " = false is not allowed with priority = 255: the address owner always "
                       "preempts (RFC 5798)");
  }
  read_int(s, p, "preempt_delay_ms", 0, 3600000, vi.preempt_delay_ms);

  parse_vrrp_addresses(s, p, vi);
  read_bool(s, p, "virtual_mac", vi.virtual_mac);

  std::string pass;
  if (const Setting* as = read_string(s, p, "auth_pass", pass)) {
    if (!pass.empty() && version_ok && vi.version != 2) {
      fail(*as,
           quote(p + ".auth_pass") + " needs version = 2: VRRPv3 has no authentication (RFC 5798)");
    } else if (pass.size() > kMaxAuthPass) {
      fail(*as, quote(p + ".auth_pass") + " is " + std::to_string(pass.size()) +
                    " characters long, more than VRRPv2 allows (" + std::to_string(kMaxAuthPass) +
                    ")");
    } else {
      vi.auth_pass = std::move(pass);
    }
  }

  parse_vrrp_tracking(s, p, vi);
  read_notify(s, p, vi.notify);
  c.vrrp.instances.push_back(std::move(vi));
}

void Parser::parse_vrrp_addresses(const Setting& s, const std::string& p, VrrpInstance& vi) {
  const std::string who = vi.name.empty() ? p : vi.name;
  if (const Setting* a = sequence(s, p, "virtual_ips", "strings")) {
    const int n = a->getLength();
    if (n < 1 || n > static_cast<int>(kMaxVips)) {
      fail(*a, quote(p + ".virtual_ips") + " must have 1.." + std::to_string(kMaxVips) +
                   " entries, got " + std::to_string(n));
    }
    for (int i = 0; i < n; ++i) {
      const Setting& el = (*a)[i];
      const std::string ep = index_path(p + ".virtual_ips", i);
      const auto text = string_value(el, ep);
      if (!text) continue;
      const PrefixParse parsed = parse_interface_address(*text);
      if (!parsed.prefix) {
        fail(el, quote(ep) + " = \"" + *text + "\" " + parsed.problem);
        continue;
      }
      const Ipv4Prefix prefix = *parsed.prefix;
      const std::string ip = format_ipv4(prefix.addr);
      const auto own = addresses_.find(prefix.addr);
      if (own != addresses_.end() && vi.priority != 255) {
        fail(el, "virtual IP " + ip + " is an address of port '" + own->second.port + "' (line " +
                     std::to_string(own->second.line) +
                     "): only the address owner (priority = 255) may use it");
        continue;
      }
      const auto [it, fresh] = vips_.emplace(prefix.addr, Seen{who, line_of(el)});
      if (!fresh) {
        if (it->second.port == who) {
          fail(el, "virtual IP " + ip + " is listed twice in instance '" + who + "'");
        } else {
          fail(el, "virtual IP " + ip + " is already used by instance '" + it->second.port +
                       "' (line " + std::to_string(it->second.line) + ")");
        }
        continue;
      }
      vi.virtual_ips.push_back(prefix);
    }
  }

  if (const Setting* a = sequence(s, p, "unicast_peers", "strings")) {
    for (int i = 0; i < a->getLength(); ++i) {
      const Setting& el = (*a)[i];
      const std::string ep = index_path(p + ".unicast_peers", i);
      const auto text = string_value(el, ep);
      if (!text) continue;
      const auto peer = parse_ipv4(*text);
      const char* why = peer ? non_unicast_reason(*peer) : nullptr;
      if (!peer) {
        fail(el, quote(ep) + " = \"" + *text + "\" is not an IPv4 address (expected A.B.C.D)");
        continue;
      }
      if (why != nullptr) {
        fail(el, quote(ep) + " = \"" + *text + "\" is " + why);
        continue;
      }
      const std::string ip = format_ipv4(*peer);
      const auto own = addresses_.find(*peer);
      if (own != addresses_.end()) {
        fail(el, "unicast peer " + ip + " is one of our own addresses (port '" + own->second.port +
                     "')");
        continue;
      }
      if (std::find(vi.unicast_peers.begin(), vi.unicast_peers.end(), *peer) !=
          vi.unicast_peers.end()) {
        fail(el, "unicast peer " + ip + " is listed twice in instance '" + who + "'");
        continue;
      }
      vi.unicast_peers.push_back(*peer);
    }
  }
}

void Parser::parse_vrrp_tracking(const Setting& s, const std::string& p, VrrpInstance& vi) {
  const std::string who = vi.name.empty() ? p : vi.name;
  if (const Setting* l = group_list(s, p, "track_ports")) {
    for (int i = 0; i < l->getLength(); ++i) {
      const Setting& el = (*l)[i];
      const std::string ep = index_path(p + ".track_ports", i);
      if (el.getType() != Setting::TypeGroup) {
        fail(el, quote(ep) + " must be a group { ... }, got " + type_name(el));
        continue;
      }
      VrrpTrackPort t;
      t.line = line_of(el);
      check_keys(el, ep, {"port", "weight"});
      if (!el.exists("port")) fail(el, "missing required key " + quote(ep + ".port"));
      if (const Setting* ps = read_string(el, ep, "port", t.port)) {
        if (port_names_.count(t.port) == 0) {
          std::vector<std::string> known;
          for (const auto& [name, line] : port_names_) known.push_back(name);
          fail(*ps, quote(ep + ".port") + " = \"" + t.port + "\" is not a configured port" +
                        suggest(t.port, known));
        } else if (std::any_of(vi.track_ports.begin(), vi.track_ports.end(),
                               [&](const VrrpTrackPort& o) { return o.port == t.port; })) {
          fail(*ps, "port '" + t.port + "' is tracked twice in instance '" + who + "'");
        }
      }
      read_int(el, ep, "weight", -kMaxVrrpWeight, kMaxVrrpWeight, t.weight);
      vi.track_ports.push_back(std::move(t));
    }
  }

  if (const Setting* l = group_list(s, p, "track_scripts")) {
    std::vector<std::string> known;
    for (const auto& [name, line] : script_names_) known.push_back(name);
    for (int i = 0; i < l->getLength(); ++i) {
      const Setting& el = (*l)[i];
      const std::string ep = index_path(p + ".track_scripts", i);
      if (el.getType() != Setting::TypeGroup) {
        fail(el, quote(ep) + " must be a group { ... }, got " + type_name(el));
        continue;
      }
      VrrpTrackScript t;
      t.line = line_of(el);
      check_keys(el, ep, {"script", "weight"});
      if (!el.exists("script")) fail(el, "missing required key " + quote(ep + ".script"));
      if (const Setting* ss = read_string(el, ep, "script", t.script)) {
        if (script_names_.count(t.script) == 0) {
          fail(*ss, quote(ep + ".script") + " = \"" + t.script +
                        "\" is not a script in 'vrrp.scripts'" + suggest(t.script, known));
        } else if (std::any_of(vi.track_scripts.begin(), vi.track_scripts.end(),
                               [&](const VrrpTrackScript& o) { return o.script == t.script; })) {
          fail(*ss, "script '" + t.script + "' is tracked twice in instance '" + who + "'");
        }
      }
      int weight = 0;
      if (read_int(el, ep, "weight", -kMaxVrrpWeight, kMaxVrrpWeight, weight) != nullptr) {
        t.weight = weight;
      }
      vi.track_scripts.push_back(std::move(t));
    }
  }
}

void Parser::parse_sync_group(const Setting& s, int index, Vrrp& v) {
  const std::string p = index_path("vrrp.sync_groups", index);
  if (s.getType() != Setting::TypeGroup) {
    fail(s, quote(p) + " must be a group { ... }, got " + type_name(s));
    return;
  }
  VrrpSyncGroup sg;
  sg.line = line_of(s);
  check_keys(s, p, {"name", "instances", "notify"});
  for (const char* key : {"name", "instances"}) {
    if (!s.exists(key)) fail(s, "missing required key " + quote(join_path(p, key)));
  }
  if (const Setting* n = read_name(s, p, "name", sg.name)) {
    const auto [it, fresh] = group_names_.emplace(sg.name, line_of(*n));
    if (!fresh) {
      fail(*n, "duplicate sync group name '" + sg.name + "' (first defined on line " +
                   std::to_string(it->second) + ")");
    }
  }
  const std::string who = sg.name.empty() ? p : sg.name;
  if (const Setting* a = sequence(s, p, "instances", "strings")) {
    if (a->getLength() == 0) fail(*a, quote(p + ".instances") + " must list at least one instance");
    std::vector<std::string> known;
    for (const auto& [name, line] : instance_names_) known.push_back(name);
    for (int i = 0; i < a->getLength(); ++i) {
      const Setting& el = (*a)[i];
      const std::string ep = index_path(p + ".instances", i);
      auto name = string_value(el, ep);
      if (!name) continue;
      if (instance_names_.count(*name) == 0) {
        fail(el, quote(ep) + " = \"" + *name + "\" is not an instance in 'vrrp.instances'" +
                     suggest(*name, known));
        continue;
      }
      const auto [it, fresh] = grouped_.emplace(*name, Seen{who, line_of(el)});
      if (!fresh) {
        if (it->second.port == who) {
          fail(el, "instance '" + *name + "' is listed twice in sync group '" + who + "'");
        } else {
          fail(el, "instance '" + *name + "' is already in sync group '" + it->second.port +
                       "' (line " + std::to_string(it->second.line) + ")");
        }
        continue;
      }
      sg.instances.push_back(std::move(*name));
    }
  }
  read_notify(s, p, sg.notify);
  v.sync_groups.push_back(std::move(sg));
}

// File order: errors grouped by file in order of first appearance, by line within a file.
void sort_errors(std::vector<Error>& errors) {
  std::vector<std::string> files;
  for (const auto& e : errors) {
    if (std::find(files.begin(), files.end(), e.file) == files.end()) files.push_back(e.file);
  }
  auto rank = [&](const Error& e) {
    return std::find(files.begin(), files.end(), e.file) - files.begin();
  };
  std::stable_sort(errors.begin(), errors.end(), [&](const Error& a, const Error& b) {
    return std::make_pair(rank(a), a.line) < std::make_pair(rank(b), b.line);
  });
}

LoadResult load_text(const std::string& text, const std::string& name,
                     const std::string& include_dir) {
  LoadResult result;
  try {
    const size_t nul = text.find('\0');
    if (nul != std::string::npos) {
      const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + nul, '\n'));
      result.errors.push_back({name, line, "syntax error: NUL byte (not a text file?)"});
      return result;
    }
    libconfig::Config lc;
    if (!include_dir.empty()) lc.setIncludeDir(include_dir.c_str());
    const Source src(text, name, include_dir);
    try {
      lc.readString(text);
    } catch (const libconfig::ParseException& e) {
      const std::string what = e.getError() != nullptr ? e.getError() : "unknown error";
      // libconfig's own message for a grammar error is just "syntax error": do not stutter.
      result.errors.push_back({src.file(e.getFile()), e.getLine(),
                               what == "syntax error" ? what : "syntax error: " + what});
      return result;
    }
    Parser parser(src);
    Config c;
    c.file = name;
    parser.run(lc.getRoot(), c);
    result.errors = std::move(parser.errors());
    sort_errors(result.errors);
    if (result.errors.empty()) result.config = std::move(c);
  } catch (const std::exception& e) {
    result.config.reset();
    result.errors.push_back({name, 0, std::string("internal error: ") + e.what()});
  } catch (...) {
    result.config.reset();
    result.errors.push_back({name, 0, "internal error"});
  }
  return result;
}

}  // namespace

std::string Error::str() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ": " + message;
}

LoadResult load_file(const std::string& path) {
  try {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      const int err = errno;
      return {std::nullopt, {{path, 0, "cannot read: " + std::generic_category().message(err)}}};
    }
    std::string text;
    char buf[65536];
    size_t got = 0;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
    const int err = std::ferror(f) ? errno : 0;
    std::fclose(f);
    if (err != 0) {
      return {std::nullopt, {{path, 0, "cannot read: " + std::generic_category().message(err)}}};
    }
    // libconfig joins the include dir and the @include name with a '/'.
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : path.substr(0, slash);
    return load_text(text, path, dir);
  } catch (const std::exception& e) {
    return {std::nullopt, {{path, 0, std::string("internal error: ") + e.what()}}};
  }
}

LoadResult load_string(const std::string& text, const std::string& name) {
  return load_text(text, name, "");
}

std::vector<Error> reload_conflicts(const Config& running, const Config& next) {
  std::vector<Error> out;
  auto conflict = [&](int line, const std::string& key) {
    out.push_back({next.file, line, quote(key) + kSuffixRestart});
  };

  const Eal& ra = running.eal;
  const Eal& na = next.eal;
  if (ra.memory_mb != na.memory_mb) conflict(na.line, "eal.memory_mb");
  if (ra.hugepages != na.hugepages) conflict(na.line, "eal.hugepages");
  if (ra.in_memory != na.in_memory) conflict(na.line, "eal.in_memory");
  if (ra.file_prefix != na.file_prefix) conflict(na.line, "eal.file_prefix");
  if (ra.log_level != na.log_level) conflict(na.line, "eal.log_level");
  if (ra.args != na.args) conflict(na.line, "eal.args");

  const Dataplane& rd = running.dataplane;
  const Dataplane& nd = next.dataplane;
  if (rd.control_core != nd.control_core) conflict(nd.line, "dataplane.control_core");
  if (rd.worker_cores != nd.worker_cores) conflict(nd.line, "dataplane.worker_cores");
  if (rd.mbufs != nd.mbufs) conflict(nd.line, "dataplane.mbufs");
  if (rd.mbuf_cache != nd.mbuf_cache) conflict(nd.line, "dataplane.mbuf_cache");

  const size_t common = std::min(running.ports.size(), next.ports.size());
  for (size_t i = 0; i < common; ++i) {
    const Port& rp = running.ports[i];
    const Port& np = next.ports[i];
    const std::string p = index_path("ports", static_cast<int>(i));
    if (rp.name != np.name) conflict(np.line, p + ".name");
    if (rp.device != np.device) conflict(np.line, p + ".device");
    if (rp.mtu != np.mtu) conflict(np.line, p + ".mtu");
    if (rp.rx_desc != np.rx_desc) conflict(np.line, p + ".rx_desc");
    if (rp.tx_desc != np.tx_desc) conflict(np.line, p + ".tx_desc");
  }
  if (running.ports.size() != next.ports.size()) {
    int line = 0;
    if (next.ports.size() > running.ports.size()) {
      line = next.ports[running.ports.size()].line;  // the first added port
    } else if (!next.ports.empty()) {
      line = next.ports.back().line;
    }
    conflict(line, "ports");
  }

  if (running.neighbors.max_entries != next.neighbors.max_entries) {
    conflict(next.neighbors.line, "neighbors.max_entries");
  }
  if (running.control.socket != next.control.socket) {
    conflict(next.control.line, "control.socket");
  }
  if (running.metrics.enabled != next.metrics.enabled) {
    conflict(next.metrics.line, "metrics.enabled");
  }
  if (running.metrics.listen != next.metrics.listen) {
    conflict(next.metrics.line, "metrics.listen");
  }

  // VRRP: the virtual routers themselves (which, where, what they announce and how) and the sync
  // groups need a restart; priority, preemption, tracking, scripts, notify, checksum and GARP do
  // not. Entries are compared by position, as ports are: the running daemon applies a reload to
  // its instances in order, so reordering them is a change too.
  const Vrrp& rv = running.vrrp;
  const Vrrp& nv = next.vrrp;
  const size_t common_instances = std::min(rv.instances.size(), nv.instances.size());
  for (size_t i = 0; i < common_instances; ++i) {
    const VrrpInstance& ri = rv.instances[i];
    const VrrpInstance& ni = nv.instances[i];
    const std::string p = index_path("vrrp.instances", static_cast<int>(i));
    if (ri.name != ni.name) conflict(ni.line, p + ".name");
    if (ri.port != ni.port) conflict(ni.line, p + ".port");
    if (ri.vrid != ni.vrid) conflict(ni.line, p + ".vrid");
    if (ri.version != ni.version) conflict(ni.line, p + ".version");
    if (ri.advert_interval_ms != ni.advert_interval_ms) {
      conflict(ni.line, p + ".advert_interval_ms");
    }
    if (ri.virtual_ips != ni.virtual_ips) conflict(ni.line, p + ".virtual_ips");
    if (ri.virtual_mac != ni.virtual_mac) conflict(ni.line, p + ".virtual_mac");
    if (ri.auth_pass != ni.auth_pass) conflict(ni.line, p + ".auth_pass");
    if (ri.unicast_peers != ni.unicast_peers) conflict(ni.line, p + ".unicast_peers");
  }
  if (rv.instances.size() != nv.instances.size()) {
    // At the first added instance, or the last remaining one, or the vrrp group.
    int line = nv.line;
    if (nv.instances.size() > rv.instances.size()) {
      line = nv.instances[rv.instances.size()].line;
    } else if (!nv.instances.empty()) {
      line = nv.instances.back().line;
    }
    conflict(line, "vrrp.instances");
  }
  const size_t common_groups = std::min(rv.sync_groups.size(), nv.sync_groups.size());
  for (size_t i = 0; i < common_groups; ++i) {
    const VrrpSyncGroup& rg = rv.sync_groups[i];
    const VrrpSyncGroup& ng = nv.sync_groups[i];
    const std::string p = index_path("vrrp.sync_groups", static_cast<int>(i));
    if (rg.name != ng.name) conflict(ng.line, p + ".name");
    if (rg.instances != ng.instances) conflict(ng.line, p + ".instances");
  }
  if (rv.sync_groups.size() != nv.sync_groups.size()) {
    int line = nv.line;
    if (nv.sync_groups.size() > rv.sync_groups.size()) {
      line = nv.sync_groups[rv.sync_groups.size()].line;
    } else if (!nv.sync_groups.empty()) {
      line = nv.sync_groups.back().line;
    }
    conflict(line, "vrrp.sync_groups");
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Error& a, const Error& b) { return a.line < b.line; });
  return out;
}

std::string format_ipv4(uint32_t host_order) {
  return std::to_string(host_order >> 24) + "." + std::to_string((host_order >> 16) & 0xff) + "." +
         std::to_string((host_order >> 8) & 0xff) + "." + std::to_string(host_order & 0xff);
}

std::string format_mac(const Mac& mac) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(17);
  for (size_t i = 0; i < mac.size(); ++i) {
    if (i != 0) out.push_back(':');
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

// Strict dotted quad: four decimal parts 0..255, no leading zeros (inet_aton would read "010"
// as octal), no spaces.
std::optional<uint32_t> parse_ipv4(const std::string& s) {
  uint32_t out = 0;
  size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part != 0) {
      if (i >= s.size() || s[i] != '.') return std::nullopt;
      ++i;
    }
    const size_t start = i;
    uint32_t v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3) {
      v = v * 10 + static_cast<uint32_t>(s[i] - '0');
      ++i;
    }
    const size_t digits = i - start;
    if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0')) return std::nullopt;
    out = (out << 8) | v;
  }
  if (i != s.size()) return std::nullopt;
  return out;
}

// "xx:xx:xx:xx:xx:xx", hex digits in either case.
std::optional<Mac> parse_mac(const std::string& s) {
  if (s.size() != 17) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Mac mac{};
  for (size_t i = 0; i < 6; ++i) {
    const size_t at = i * 3;
    if (i != 0 && s[at - 1] != ':') return std::nullopt;
    const int hi = nibble(s[at]);
    const int lo = nibble(s[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return mac;
}

}  // namespace cfg
