// config/: libconfig++ text in, a validated cfg::Config out. The only file in the project that
// includes libconfig; nothing here throws out of the public functions.
#include <arpa/inet.h>

#include <libconfig.h++>

#include <algorithm>
#include <fstream>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <iterator>
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
  // An element that must be a group: true, or false after reporting what it is instead.
  bool is_group(const Setting& s, const std::string& path);
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
  // A string key that must be one of `choices`: sets `out` to the matching value, or reports
  // the allowed words.
  template <class E>
  void read_enum(const Setting& g, const std::string& gpath, const char* key,
                 std::initializer_list<std::pair<const char*, E>> choices, E& out) {
    std::string text;
    const Setting* s = read_string(g, gpath, key, text);
    if (!s) return;
    std::string names;
    for (const auto& [name, value] : choices) {
      if (text == name) {
        out = value;
        return;
      }
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    fail(*s, quote(join_path(gpath, key)) + " = \"" + text + "\" is not one of: " + names);
  }
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

  void parse_sync(const Setting& g, Config& c);
  void parse_routing(const Setting& g, Config& c);
  void parse_route(const Setting& s, int index, Config& c);
  void parse_lb(const Setting& g, Config& c);
  // Every vrrp.instances[].track_services entry names an lb service.
  void check_tracked_services(const Config& c);
  void parse_lb_service(const Setting& s, int index, Config& c);
  void parse_lb_check(const Setting& g, const std::string& p, LbCheck& ck);
  void parse_lb_real(const Setting& s, const std::string& p, lb::Fwd default_fwd,
                     LbService& svc, const Config& c);
  // An address written "A.B.C.D" at `key`: the address, or nullopt after reporting.
  std::optional<uint32_t> read_address(const Setting& g, const std::string& gpath, const char* key,
                                       const Setting** where = nullptr);
  // The port with a connected prefix holding `ip` (never an address of ours), or "".
  static std::string connected_port(const Config& c, uint32_t ip);

  // Where a resolved value came from: the path of the setting that set it (or the default).
  struct LeaseSources {
    std::string default_s = "dhcp.default_lease_s";
    std::string min_s = "dhcp.min_lease_s";
    std::string max_s = "dhcp.max_lease_s";
  };
  struct TimerSources {
    std::string renew = "dhcp.renew_permille";
    std::string rebind = "dhcp.rebind_permille";
  };
  // An address a range or a reservation must not hand out, and whose it is.
  struct Taken {
    std::string what;  // "an address of port 'front0'"
  };
  // A range or reservation whose addresses are checked once every subnet is known.
  struct Deferred {
    std::string file;
    int line = 0;
    std::string who;  // "range 192.0.2.150 - 192.0.2.250", "reserved address 192.0.2.5"
    uint32_t first = 0;
    uint32_t last = 0;
    bool single = false;  // a reservation (one address), not a range
  };

  void parse_dhcp(const Setting& g, Config& c);
  void parse_dhcp_leases(const Setting& g, DhcpLeaseStore& l);
  void parse_dhcp_limits(const Setting& g, DhcpLimits& l);
  void parse_dhcp_class(const Setting& s, int index, Dhcp& d);
  void parse_dhcp_subnet(const Setting& s, int index, const LeaseSources& lease_src,
                         const TimerSources& timer_src, Config& c);
  // `subnet_ok`: sn.subnet is valid, so containment can be checked.
  void parse_dhcp_pool(const Setting& s, const std::string& p, const LeaseSources& lease_src,
                       bool subnet_ok, DhcpSubnet& sn);
  void parse_dhcp_host(const Setting& s, const std::string& p, bool subnet_ok, DhcpSubnet& sn,
                       std::map<std::pair<DhcpHostKey, std::vector<uint8_t>>, int>& ids);
  // A byte string written as text or, with `hex`, as hex bytes: 1..255 bytes (`min` at least).
  std::optional<std::vector<uint8_t>> read_bytes(const Setting& s, const std::string& path,
                                                 bool hex, size_t min = 1);
  void parse_dhcp_options(const Setting& parent, const std::string& parent_path,
                          std::vector<DhcpOption>& out);
  std::optional<DhcpOption> parse_dhcp_option(const Setting& s, const std::string& p);
  bool encode_option_value(const Setting& v, const std::string& vpath, int type,
                           const std::string& which, uint8_t code, std::vector<uint8_t>& out);
  void read_lease_times(const Setting& g, const std::string& p, DhcpLeaseTime& lt,
                        LeaseSources& src);
  void read_timers(const Setting& g, const std::string& p, uint32_t& renew, uint32_t& rebind,
                   TimerSources& src);
  std::optional<uint32_t> read_dhcp_address(const Setting& s, const std::string& path);
  void check_dhcp_addresses(const Config& c);

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
  // Load balancer.
  std::map<std::tuple<uint8_t, uint32_t, uint16_t>, int> lb_keys_;  // service -> line
  std::map<std::string, int> tap_names_;                           // TAP name -> line
  // DHCP.
  std::map<std::string, int> dhcp_class_names_;  // name -> line
  std::map<std::string, int> dhcp_host_names_;   // name -> line
  struct SeenRange {
    uint32_t first = 0;
    uint32_t last = 0;
    int line = 0;
  };
  std::vector<SeenRange> dhcp_ranges_;                    // every range so far, all subnets
  std::vector<std::pair<Ipv4Prefix, int>> dhcp_subnets_;  // prefix -> line
  uint64_t dhcp_addresses_ = 0;                           // addresses in all ranges so far
  std::map<uint32_t, Taken> dhcp_taken_;  // server ids and relays (ports, VIPs: above)
  std::vector<Deferred> dhcp_deferred_;
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

bool Parser::is_group(const Setting& s, const std::string& path) {
  if (s.getType() == Setting::TypeGroup) return true;
  fail(s, quote(path) + " must be a group { ... }, got " + type_name(s));
  return false;
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
  if (overflowed) {
    // In range but written without the L suffix (u32 option values): say how to write it.
    const long long literal = std::strtoll(shown.c_str(), nullptr, 10);
    if (literal >= lo && literal <= hi) {
      fail(s, quote(path) + " = " + shown + " must be written " + shown +
                  "L: libconfig reads integers beyond 32 bits only with the L suffix");
      return std::nullopt;
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
  check_keys(root, "",
             {"node", "eal", "dataplane", "ports", "neighbors", "arp", "control", "metrics", "vrrp",
              "dhcp", "routing", "lb", "sync"});
  read_name(root, "", "node", c.node);
  if (const Setting* g = group(root, "", "eal")) parse_eal(*g, c.eal);
  if (const Setting* g = group(root, "", "dataplane")) parse_dataplane(*g, c.dataplane);
  parse_ports(root, c);
  if (const Setting* g = group(root, "", "neighbors")) parse_neighbors(*g, c);
  if (const Setting* g = group(root, "", "arp")) parse_arp(*g, c.arp);
  if (const Setting* g = group(root, "", "control")) parse_control(*g, c.control);
  if (const Setting* g = group(root, "", "metrics")) parse_metrics(*g, c.metrics);
  if (const Setting* g = group(root, "", "vrrp")) parse_vrrp(*g, c);
  // After ports and vrrp: ranges and reservations must avoid their addresses.
  if (const Setting* g = group(root, "", "dhcp")) parse_dhcp(*g, c);
  // After ports (connected prefixes) and vrrp (VIPs): routes and services refer to them.
  if (const Setting* g = group(root, "", "routing")) parse_routing(*g, c);
  if (const Setting* g = group(root, "", "lb")) parse_lb(*g, c);
  if (const Setting* g = group(root, "", "sync")) parse_sync(*g, c);
  check_tracked_services(c);
}

void Parser::parse_eal(const Setting& g, Eal& e) {
  const std::string p = "eal";
  e.line = line_of(g);
  check_keys(g, p, {"memory_mb", "hugepages", "in_memory", "file_prefix", "log_level", "args"});
  read_int(g, p, "memory_mb", 16, 1048576, e.memory_mb);
  const Setting* hugepages = read_bool(g, p, "hugepages", e.hugepages);
  const Setting* in_memory = read_bool(g, p, "in_memory", e.in_memory);
  read_name(g, p, "file_prefix", e.file_prefix);

  read_enum<std::string>(g, p, "log_level",
                         {{"emerg", "emerg"},
                          {"alert", "alert"},
                          {"crit", "crit"},
                          {"error", "error"},
                          {"warning", "warning"},
                          {"notice", "notice"},
                          {"info", "info"},
                          {"debug", "debug"}},
                         e.log_level);

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

  read_enum(g, p, "idle", {{"busy", IdleMode::kBusy}, {"adaptive", IdleMode::kAdaptive}}, d.idle);
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
  if (!is_group(s, p)) return;
  Port port;
  port.line = line_of(s);
  check_keys(s, p, {"name", "device", "addresses", "mtu", "rx_desc", "tx_desc", "tap"});

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
  if (const Setting* t = read_name(s, p, "tap", port.tap)) {
    if (port.tap.size() > 15) {
      fail(*t, quote(p + ".tap") + " = \"" + port.tap +
                   "\" is longer than a Linux interface name may be (15 characters)");
    } else if (const auto [it, fresh] = tap_names_.emplace(port.tap, line_of(*t)); !fresh) {
      fail(*t, "TAP interface '" + port.tap + "' is already used on line " +
                   std::to_string(it->second));
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
  if (!is_group(s, p)) return;
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

std::optional<uint32_t> Parser::read_address(const Setting& g, const std::string& gpath,
                                             const char* key, const Setting** where) {
  std::string text;
  const Setting* s = read_string(g, gpath, key, text);
  if (where != nullptr) *where = s;
  if (s == nullptr) return std::nullopt;
  const auto ip = parse_ipv4(text);
  if (!ip) {
    fail(*s, quote(join_path(gpath, key)) + " = \"" + text +
                 "\" is not an IPv4 address (expected A.B.C.D)");
    return std::nullopt;
  }
  if (const char* why = non_unicast_reason(*ip)) {
    fail(*s, quote(join_path(gpath, key)) + " = \"" + text + "\" is " + why);
    return std::nullopt;
  }
  return ip;
}

std::string Parser::connected_port(const Config& c, uint32_t ip) {
  for (const Port& port : c.ports)
    for (const Ipv4Prefix& a : port.addresses)
      if (a.len < 32 && a.contains(ip) && a.addr != ip) return port.name;
  return "";
}

void Parser::parse_sync(const Setting& g, Config& c) {
  const std::string p = "sync";
  Sync& y = c.sync;
  y.line = line_of(g);
  y.enabled = true;
  check_keys(g, p,
             {"address", "peer", "port", "interface", "key", "key_file", "dhcp", "connections",
              "heartbeat_ms", "dead_ms", "connection_refresh_s", "resync_wait_ms",
              "config_include"});
  for (const char* key : {"address", "peer"})
    if (!g.exists(key)) fail(g, "missing required key " + quote(join_path(p, key)));
  const Setting* where = nullptr;
  if (auto a = read_address(g, p, "address", &where)) y.address = *a;
  if (auto a = read_address(g, p, "peer", &where)) {
    y.peer = *a;
    if (y.peer == y.address) fail(*where, "'sync.peer' must differ from 'sync.address'");
  }
  read_int(g, p, "port", 1, 65535, y.port);
  read_string(g, p, "interface", y.interface);
  const bool has_key = g.exists("key"), has_file = g.exists("key_file");
  if (has_key && has_file) fail(g, "'sync.key' and 'sync.key_file' exclude each other");
  if (!has_key && !has_file)
    fail(g, "missing required key 'sync.key' (or 'sync.key_file'): the sync link is authenticated");
  if (const Setting* s = read_string(g, p, "key", y.key); s && y.key.size() < 16)
    fail(*s, "'sync.key' is too short (" + std::to_string(y.key.size()) +
                 " bytes): use at least 16 random bytes");
  std::string key_file;
  if (const Setting* s = read_string(g, p, "key_file", key_file)) {
    std::ifstream in(key_file, std::ios::binary);
    std::string k((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!k.empty() && (k.back() == '\n' || k.back() == '\r')) k.pop_back();
    if (!in.good() && !in.eof())
      fail(*s, "'sync.key_file' = \"" + key_file + "\" cannot be read");
    else if (k.size() < 16)
      fail(*s, "'sync.key_file' = \"" + key_file + "\" holds " + std::to_string(k.size()) +
                   " bytes: use at least 16 random bytes");
    else
      y.key = std::move(k);
  }
  read_enum<SyncMode>(g, p, "dhcp", {{"strict", SyncMode::kStrict}, {"async", SyncMode::kAsync}},
                      y.dhcp);
  read_bool(g, p, "connections", y.connections);
  read_int(g, p, "heartbeat_ms", 10, 10000, y.heartbeat_ms);
  const Setting* dead = read_int(g, p, "dead_ms", 30, 60000, y.dead_ms);
  if (dead && y.dead_ms < 3 * y.heartbeat_ms)
    fail(*dead, "'sync.dead_ms' (" + std::to_string(y.dead_ms) +
                    ") must be at least 3 × 'sync.heartbeat_ms' (" +
                    std::to_string(y.heartbeat_ms) + ")");
  read_int(g, p, "connection_refresh_s", 1, 3600, y.connection_refresh_s);
  read_int(g, p, "resync_wait_ms", 0, 600000, y.resync_wait_ms);
  read_string(g, p, "config_include", y.config_include);
}

void Parser::parse_routing(const Setting& g, Config& c) {
  const std::string p = "routing";
  Routing& r = c.routing;
  r.line = line_of(g);
  r.forward = true;
  check_keys(g, p, {"forward", "icmp_errors_per_s", "routes"});
  read_bool(g, p, "forward", r.forward);
  read_int(g, p, "icmp_errors_per_s", 0, 1000000, r.icmp_errors_per_s);
  if (const Setting* l = group_list(g, p, "routes")) {
    for (int i = 0; i < l->getLength(); ++i) parse_route((*l)[i], i, c);
  }
}

void Parser::parse_route(const Setting& s, int index, Config& c) {
  const std::string p = index_path("routing.routes", index);
  if (!is_group(s, p)) return;
  StaticRoute rt;
  rt.line = line_of(s);
  check_keys(s, p, {"to", "via"});
  bool ok = true;
  for (const char* key : {"to", "via"}) {
    if (!s.exists(key)) {
      fail(s, "missing required key " + quote(join_path(p, key)));
      ok = false;
    }
  }
  std::string to;
  if (const Setting* t = read_string(s, p, "to", to)) {
    const size_t slash = to.find('/');
    const auto addr = parse_ipv4(to.substr(0, slash));
    int64_t len = -1;
    if (slash != std::string::npos && slash + 1 < to.size() && slash + 3 >= to.size() &&
        to.find_first_not_of("0123456789", slash + 1) == std::string::npos)
      len = std::stoll(to.substr(slash + 1));
    if (!addr || len < 0 || len > 32) {
      fail(*t, quote(p + ".to") + " = \"" + to + "\" is not a prefix (expected A.B.C.D/LEN)");
      ok = false;
    } else {
      rt.to.addr = *addr;
      rt.to.len = static_cast<uint8_t>(len);
      if ((rt.to.addr & rt.to.mask()) != rt.to.addr) {
        fail(*t, quote(p + ".to") + " = \"" + to + "\" has host bits set (the network is " +
                     format_prefix(rt.to.addr & rt.to.mask(), rt.to.len) + ")");
        ok = false;
      }
      for (const StaticRoute& o : c.routing.routes) {
        if (ok && o.to == rt.to) {
          fail(*t, "route to " + to + " is already defined on line " + std::to_string(o.line));
          ok = false;
        }
      }
    }
  } else {
    ok = false;
  }
  const Setting* vs = nullptr;
  if (const auto via = read_address(s, p, "via", &vs)) {
    rt.via = *via;
    rt.port = connected_port(c, *via);
    if (rt.port.empty()) {
      fail(*vs, quote(p + ".via") + " = \"" + format_ipv4(*via) +
                    "\" is not on a connected prefix of any port (a gateway must be on-link)");
      ok = false;
    }
  } else {
    ok = false;
  }
  if (ok) c.routing.routes.push_back(std::move(rt));
}

namespace {
bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}
}  // namespace

void Parser::parse_lb(const Setting& g, Config& c) {
  const std::string p = "lb";
  Lb& l = c.lb;
  l.line = line_of(g);
  l.enabled = true;
  check_keys(g, p, {"enabled", "connections", "maglev_table_size", "timeouts", "services"});
  read_bool(g, p, "enabled", l.enabled);
  read_int(g, p, "connections", 1024, 67108864, l.connections);
  if (const Setting* m = read_int(g, p, "maglev_table_size", 65537, 1048573, l.maglev_table_size)) {
    if (!is_prime(l.maglev_table_size)) {
      fail(*m, quote(p + ".maglev_table_size") + " = " + std::to_string(l.maglev_table_size) +
                   " must be a prime (e.g. 65537, 131071, 262139)");
    }
  }
  if (const Setting* t = group(g, p, "timeouts")) {
    const std::string tp = p + ".timeouts";
    check_keys(*t, tp, {"tcp", "tcp_fin", "udp"});
    read_int(*t, tp, "tcp", 1, 31536000, l.timeouts.tcp);
    read_int(*t, tp, "tcp_fin", 1, 31536000, l.timeouts.tcp_fin);
    read_int(*t, tp, "udp", 1, 31536000, l.timeouts.udp);
  }
  if (const Setting* s = group_list(g, p, "services")) {
    for (int i = 0; i < s->getLength(); ++i) parse_lb_service((*s)[i], i, c);
  }
}

void Parser::check_tracked_services(const Config& c) {
  std::vector<std::string> known;
  for (const LbService& s : c.lb.services)
    if (!s.name.empty()) known.push_back(s.name);
  for (const VrrpInstance& vi : c.vrrp.instances) {
    for (const VrrpTrackService& t : vi.track_services) {
      if (std::find(known.begin(), known.end(), t.service) != known.end()) continue;
      errors_.push_back({src_.name, t.line,
                         "instance '" + vi.name + "' tracks service '" + t.service +
                             "', which is no named service in 'lb.services'" +
                             suggest(t.service, known)});
    }
  }
}

void Parser::parse_lb_check(const Setting& g, const std::string& p, LbCheck& ck) {
  check_keys(g, p,
             {"type", "port", "path", "status", "host", "interval_ms", "timeout_ms", "retries",
              "retry_delay_ms", "rise", "fall"});
  ck.type = LbCheck::Type::kTcp;
  read_enum(g, p, "type",
            {{"tcp", LbCheck::Type::kTcp}, {"http", LbCheck::Type::kHttp},
             {"none", LbCheck::Type::kNone}},
            ck.type);
  read_int(g, p, "port", 1, 65535, ck.port);
  if (const Setting* ps = read_string(g, p, "path", ck.path)) {
    if (ck.path.empty() || ck.path[0] != '/' ||
        ck.path.find_first_of(" \r\n\t") != std::string::npos) {
      fail(*ps, quote(p + ".path") + " = \"" + ck.path +
                    "\" must start with / and contain no spaces or line breaks");
    }
  }
  read_int(g, p, "status", 100, 599, ck.status);
  if (const Setting* h = read_string(g, p, "host", ck.host)) {
    if (ck.host.find_first_of(" \r\n\t") != std::string::npos)
      fail(*h, quote(p + ".host") + " must contain no spaces or line breaks");
  }
  read_int(g, p, "interval_ms", 10, 3600000, ck.interval_ms);
  ck.timeout_ms = std::min<uint32_t>(1000, ck.interval_ms / 2);
  if (const Setting* t = read_int(g, p, "timeout_ms", 10, 600000, ck.timeout_ms)) {
    if (ck.timeout_ms >= ck.interval_ms) {
      fail(*t, quote(p + ".timeout_ms") + " = " + std::to_string(ck.timeout_ms) +
                   " must be less than " + quote(p + ".interval_ms") + " = " +
                   std::to_string(ck.interval_ms));
    }
  }
  read_int(g, p, "retries", 0, 100, ck.retries);
  read_int(g, p, "retry_delay_ms", 0, 600000, ck.retry_delay_ms);
  read_int(g, p, "rise", 1, 100, ck.rise);
  read_int(g, p, "fall", 1, 100, ck.fall);
}

void Parser::parse_lb_service(const Setting& s, int index, Config& c) {
  const std::string p = index_path("lb.services", index);
  if (!is_group(s, p)) return;
  LbService svc;
  svc.line = line_of(s);
  check_keys(s, p,
             {"name", "protocol", "vip", "port", "scheduler", "persistence_s",
              "persistence_netmask", "mode", "check", "reals"});
  bool ok = true;
  read_name(s, p, "name", svc.name);
  lb::ServiceSpec& spec = svc.spec;
  spec.sched = lb::Sched::kWlc;
  read_enum(s, p, "protocol", {{"tcp", lb::Proto::kTcp}, {"udp", lb::Proto::kUdp}},
            spec.key.proto);
  if (!s.exists("vip")) {
    fail(s, "missing required key " + quote(p + ".vip"));
    ok = false;
  }
  const Setting* vs = nullptr;
  if (const auto vip = read_address(s, p, "vip", &vs)) {
    spec.key.vip = *vip;
    if (addresses_.count(*vip) == 0 && vips_.count(*vip) == 0) {
      fail(*vs, quote(p + ".vip") + " = \"" + format_ipv4(*vip) +
                    "\" is not an address of this node: list it in a port's addresses or in a "
                    "VRRP instance's virtual_ips");
      ok = false;
    }
  } else if (vs != nullptr) {
    ok = false;
  }
  if (!s.exists("port")) {
    fail(s, "missing required key " + quote(p + ".port") + " (0: every port)");
    ok = false;
  }
  if (!read_int(s, p, "port", 0, 65535, spec.key.port) && s.exists("port")) ok = false;
  read_enum(s, p, "scheduler",
            {{"rr", lb::Sched::kRr}, {"wrr", lb::Sched::kWrr}, {"lc", lb::Sched::kLc},
             {"wlc", lb::Sched::kWlc}, {"sh", lb::Sched::kSh}, {"mh", lb::Sched::kMh}},
            spec.sched);
  read_int(s, p, "persistence_s", 0, 31536000, spec.persist_s);
  std::string mask_text;
  if (const Setting* ms = read_string(s, p, "persistence_netmask", mask_text)) {
    const auto m = parse_ipv4(mask_text);
    if (!m || (~*m & (~*m + 1)) != 0) {
      fail(*ms, quote(p + ".persistence_netmask") + " = \"" + mask_text +
                    "\" is not a netmask (e.g. 255.255.255.0)");
    } else {
      spec.persist_mask = *m;
    }
  }
  lb::Fwd fwd = lb::Fwd::kNat;
  read_enum(s, p, "mode", {{"nat", lb::Fwd::kNat}, {"dr", lb::Fwd::kDr}, {"tun", lb::Fwd::kTun}},
            fwd);
  if (const Setting* ck = group(s, p, "check")) parse_lb_check(*ck, p + ".check", svc.check);
  if (ok) {
    const auto key = std::make_tuple(static_cast<uint8_t>(spec.key.proto), spec.key.vip,
                                     spec.key.port);
    if (const auto [it, fresh] = lb_keys_.emplace(key, svc.line); !fresh) {
      fail(s, "service " + std::string(spec.key.proto == lb::Proto::kUdp ? "UDP " : "TCP ") +
                  format_ipv4(spec.key.vip) + ":" + std::to_string(spec.key.port) +
                  " is already defined on line " +
                  std::to_string(it->second));
      ok = false;
    }
  }
  if (const Setting* l = group_list(s, p, "reals")) {
    for (int i = 0; i < l->getLength(); ++i)
      parse_lb_real((*l)[i], index_path(p + ".reals", i), fwd, svc, c);
  }
  if (ok) c.lb.services.push_back(std::move(svc));
}

void Parser::parse_lb_real(const Setting& s, const std::string& p, lb::Fwd default_fwd,
                           LbService& svc, const Config& c) {
  if (!is_group(s, p)) return;
  check_keys(s, p, {"address", "port", "weight", "mode"});
  lb::RealServer rs;
  rs.fwd = default_fwd;
  rs.port = svc.spec.key.port;
  bool ok = true;
  if (!s.exists("address")) {
    fail(s, "missing required key " + quote(p + ".address"));
    return;
  }
  const Setting* as = nullptr;
  const auto ip = read_address(s, p, "address", &as);
  if (!ip) return;
  rs.ip = *ip;
  read_int(s, p, "port", 0, 65535, rs.port);
  read_int(s, p, "weight", 0, 65535, rs.weight);
  read_enum(s, p, "mode", {{"nat", lb::Fwd::kNat}, {"dr", lb::Fwd::kDr}, {"tun", lb::Fwd::kTun}},
            rs.fwd);
  const std::string ips = format_ipv4(rs.ip);
  if (addresses_.count(rs.ip) != 0 || vips_.count(rs.ip) != 0) {
    fail(*as, "real server " + ips + " is one of this node's own addresses");
    ok = false;
  }
  const std::string on_link = connected_port(c, rs.ip);
  bool routed = !on_link.empty();
  for (const StaticRoute& r : c.routing.routes) routed = routed || r.to.contains(rs.ip);
  if (!ok) {
    // Our own address: connected_port() never names it, so "not on-link" would be a second,
    // wrong message about the same problem.
  } else if (rs.fwd == lb::Fwd::kDr && on_link.empty()) {
    fail(*as, "real server " + ips +
                  " is in direct-routing mode but not on a connected prefix of any port (DR "
                  "rewrites only the MAC address: the real server must be on-link)");
    ok = false;
  } else if (!routed) {
    fail(*as, "real server " + ips +
                  " is neither on a connected prefix of a port nor covered by a route in "
                  "'routing.routes'");
    ok = false;
  }
  if (rs.fwd != lb::Fwd::kNat && rs.port != svc.spec.key.port) {
    fail(s, "real server " + ips + " has port " + std::to_string(rs.port) +
                " but " + (rs.fwd == lb::Fwd::kDr ? "dr" : "tun") +
                " mode cannot change the destination port (service port " +
                std::to_string(svc.spec.key.port) + ")");
    ok = false;
  }
  if (svc.spec.key.port == 0 && rs.port != 0) {
    fail(s, "real server " + ips + " of an all-port service (port 0) must have port 0");
    ok = false;
  }
  for (size_t i = 0; ok && i < svc.spec.reals.size(); ++i) {
    if (svc.spec.reals[i].ip == rs.ip && svc.spec.reals[i].port == rs.port) {
      fail(*as, "real server " + ips + ":" + std::to_string(rs.port) +
                    " is already listed on line " + std::to_string(svc.real_lines[i]));
      ok = false;
    }
  }
  if (!ok) return;
  svc.spec.reals.push_back(rs);
  svc.real_lines.push_back(line_of(s));
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
  read_enum(g, p, "checksum",
            {{"keepalived", VrrpChecksum::kKeepalived}, {"rfc9568", VrrpChecksum::kRfc9568}},
            v.checksum);
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
  if (!is_group(s, p)) return;
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
  if (!is_group(s, p)) return;
  VrrpInstance vi;
  vi.line = line_of(s);
  check_keys(s, p,
             {"name", "port", "vrid", "version", "priority", "advert_interval_ms", "preempt",
              "preempt_delay_ms", "virtual_ips", "virtual_mac", "auth_pass", "unicast_peers",
              "track_ports", "track_scripts", "track_services", "notify"});
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
      if (!is_group(el, ep)) continue;
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
      if (!is_group(el, ep)) continue;
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

  // Services are parsed after vrrp: their names are checked in parse_lb.
  if (const Setting* l = group_list(s, p, "track_services")) {
    for (int i = 0; i < l->getLength(); ++i) {
      const Setting& el = (*l)[i];
      const std::string ep = index_path(p + ".track_services", i);
      if (!is_group(el, ep)) continue;
      VrrpTrackService t;
      t.line = line_of(el);
      check_keys(el, ep, {"service", "min_healthy", "weight"});
      if (!el.exists("service")) fail(el, "missing required key " + quote(ep + ".service"));
      if (const Setting* ss = read_string(el, ep, "service", t.service)) {
        if (std::any_of(vi.track_services.begin(), vi.track_services.end(),
                        [&](const VrrpTrackService& o) { return o.service == t.service; }))
          fail(*ss, "service '" + t.service + "' is tracked twice in instance '" + who + "'");
      }
      read_int(el, ep, "min_healthy", 1, 1000, t.min_healthy);
      read_int(el, ep, "weight", -kMaxVrrpWeight, kMaxVrrpWeight, t.weight);
      vi.track_services.push_back(std::move(t));
    }
  }
}

void Parser::parse_sync_group(const Setting& s, int index, Vrrp& v) {
  const std::string p = index_path("vrrp.sync_groups", index);
  if (!is_group(s, p)) return;
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

// ---------------------------------------------------------------------------------------------
// dhcp

// Lease times (and the DECLINE quarantine): from 10 s to a year. 0xffffffff would mean
// "infinite" on the wire (RFC 2132 §9.2), which tandem does not hand out.
constexpr int64_t kMinLeaseS = 10;
constexpr int64_t kMaxLeaseS = 31536000;
// Longest encoded option value. The writer splits values over 255 bytes into several instances
// (RFC 3396); 1024 bytes leave room for the rest of a 1472-byte reply.
constexpr size_t kMaxOptionLen = 1024;
// Addresses in all ranges together: what one node's lease stores are sized for (a /8).
constexpr uint64_t kMaxDhcpAddresses = uint64_t{1} << 24;
constexpr int64_t kMaxLimit = 1000000;

// How an option's value is written in the file and encoded on the wire.
enum OptionType : int {
  kOptIp,      // "A.B.C.D" -> 4 bytes
  kOptIps,     // [ "A.B.C.D", ... ] -> 4 bytes each
  kOptString,  // "text" -> its bytes, not empty
  kOptU8,      // integers, network byte order
  kOptU16,
  kOptU32,
  kOptI32,
  kOptBool,     // true/false -> 1/0
  kOptHex,      // "01:02:0a" or "01020a" -> those bytes
  kOptRoutes,   // [ "DEST/LEN via ROUTER", ... ] -> RFC 3442
  kOptDomains,  // [ "example.net", ... ] -> RFC 1035 names, uncompressed (RFC 3397)
  kOptServer,   // set by the server itself: not configurable as an option
};
constexpr const char* kOptionTypeNames[] = {"ip",  "ips",  "string", "u8",     "u16",    "u32",
                                            "i32", "bool", "hex",    "routes", "domains"};
constexpr const char* kOptionTypeList =
    "ip, ips, string, u8, u16, u32, i32, bool, hex, routes, domains";

struct OptionDef {
  uint8_t code;
  const char* name;  // ISC dhcpd / Kea name
  OptionType type;
  const char* hint = nullptr;  // kOptServer: what to use instead
};

// The options known by name. Any other code 1..254 (except the server's) is accepted with an
// explicit `type`.
constexpr OptionDef kOptionDefs[] = {
    {1, "subnet-mask", kOptIp},
    {2, "time-offset", kOptI32},
    {3, "routers", kOptIps},
    {4, "time-servers", kOptIps},
    {6, "domain-name-servers", kOptIps},
    {7, "log-servers", kOptIps},
    {12, "host-name", kOptString},
    {15, "domain-name", kOptString},
    {19, "ip-forwarding", kOptBool},
    {23, "default-ip-ttl", kOptU8},
    {26, "interface-mtu", kOptU16},
    {28, "broadcast-address", kOptIp},
    {35, "arp-cache-timeout", kOptU32},
    {40, "nis-domain", kOptString},
    {41, "nis-servers", kOptIps},
    {42, "ntp-servers", kOptIps},
    {43, "vendor-encapsulated-options", kOptHex},
    {44, "netbios-name-servers", kOptIps},
    {46, "netbios-node-type", kOptU8},
    {47, "netbios-scope", kOptString},
    {50, "dhcp-requested-address", kOptServer, "a client sends it"},
    {51, "dhcp-lease-time", kOptServer, "use 'default_lease_s', 'min_lease_s' and 'max_lease_s'"},
    {52, "dhcp-option-overload", kOptServer, "the server decides"},
    {53, "dhcp-message-type", kOptServer, "the server decides"},
    {54, "dhcp-server-identifier", kOptServer, "use the subnet's 'server_id'"},
    {55, "dhcp-parameter-request-list", kOptServer, "a client sends it"},
    {56, "dhcp-message", kOptServer, "the server writes it in NAKs"},
    {57, "dhcp-max-message-size", kOptServer, "a client sends it"},
    {58, "dhcp-renewal-time", kOptServer, "use 'renew_permille'"},
    {59, "dhcp-rebinding-time", kOptServer, "use 'rebind_permille'"},
    {60, "vendor-class-identifier", kOptString},
    {61, "dhcp-client-identifier", kOptServer,
     "replies echo the client's (RFC 6842); reserve by it with a host's 'client_id'"},
    {66, "tftp-server-name", kOptString},
    {67, "bootfile-name", kOptString},
    {69, "smtp-server", kOptIps},
    {72, "www-server", kOptIps},
    {82, "relay-agent-information", kOptServer,
     "replies echo the relay's (RFC 3046); match it with classes and hosts"},
    {114, "v4-captive-portal", kOptString},
    {119, "domain-search", kOptDomains},
    {121, "classless-static-routes", kOptRoutes},
};

const OptionDef* option_by_code(int64_t code) {
  for (const auto& d : kOptionDefs) {
    if (d.code == code) return &d;
  }
  return nullptr;
}

const OptionDef* option_by_name(const std::string& name) {
  for (const auto& d : kOptionDefs) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// "option 3 (routers)", or "option 250" for a code without a name.
std::string option_label(int64_t code) {
  const OptionDef* d = option_by_code(code);
  return "option " + std::to_string(code) + (d != nullptr ? " (" + std::string(d->name) + ")" : "");
}

bool is_sequence(const Setting& s) {
  return s.getType() == Setting::TypeArray || s.getType() == Setting::TypeList;
}

// Hex bytes: "01:02:0a" (one or two digits between colons) or "01020a" (pairs). "" is no bytes.
std::optional<std::vector<uint8_t>> parse_hex(const std::string& s) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<uint8_t> out;
  if (s.empty()) return out;
  if (s.find(':') != std::string::npos) {
    size_t i = 0;
    while (true) {
      const size_t j = s.find(':', i);
      const std::string part = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
      if (part.empty() || part.size() > 2) return std::nullopt;
      int v = 0;
      for (char c : part) {
        const int n = nibble(c);
        if (n < 0) return std::nullopt;
        v = v * 16 + n;
      }
      out.push_back(static_cast<uint8_t>(v));
      if (j == std::string::npos) break;
      i = j + 1;
    }
    return out;
  }
  if (s.size() % 2 != 0) return std::nullopt;
  for (size_t i = 0; i < s.size(); i += 2) {
    const int hi = nibble(s[i]);
    const int lo = nibble(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<uint8_t>(hi * 16 + lo));
  }
  return out;
}

std::string format_hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0) out.push_back(':');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

std::string format_prefix(const Ipv4Prefix& p) {
  return format_ipv4(p.addr) + "/" + std::to_string(p.len);
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// RFC 1035 wire form of a domain name (a trailing dot is allowed), or empty when it is not one.
std::vector<uint8_t> encode_domain(const std::string& name) {
  std::string n = name;
  if (!n.empty() && n.back() == '.') n.pop_back();
  std::vector<uint8_t> out;
  if (n.empty()) return out;
  size_t i = 0;
  while (true) {
    const size_t dot = n.find('.', i);
    const std::string label = n.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    const bool ok =
        !label.empty() && label.size() <= 63 && std::all_of(label.begin(), label.end(), [](char c) {
          return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        });
    if (!ok) return {};
    out.push_back(static_cast<uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    if (dot == std::string::npos) break;
    i = dot + 1;
  }
  out.push_back(0);
  if (out.size() > 255) return {};
  return out;
}

std::optional<uint32_t> Parser::read_dhcp_address(const Setting& s, const std::string& path) {
  const auto text = string_value(s, path);
  if (!text) return std::nullopt;
  const auto a = parse_ipv4(*text);
  if (!a) {
    fail(s, quote(path) + " = \"" + *text + "\" is not an IPv4 address (expected A.B.C.D)");
    return std::nullopt;
  }
  if (const char* why = non_unicast_reason(*a)) {
    fail(s, quote(path) + " = \"" + *text + "\" is " + why);
    return std::nullopt;
  }
  return a;
}

std::optional<std::vector<uint8_t>> Parser::read_bytes(const Setting& s, const std::string& path,
                                                       bool hex, size_t min) {
  const auto text = string_value(s, path);
  if (!text) return std::nullopt;
  std::vector<uint8_t> bytes;
  if (hex) {
    auto parsed = parse_hex(*text);
    if (!parsed) {
      fail(s,
           quote(path) + " = \"" + *text + "\" is not hex bytes (e.g. \"01:02:0a\" or \"01020a\")");
      return std::nullopt;
    }
    bytes = std::move(*parsed);
  } else {
    bytes.assign(text->begin(), text->end());
  }
  if (bytes.empty()) {
    fail(s, quote(path) + " must not be empty");
    return std::nullopt;
  }
  if (bytes.size() < min || bytes.size() > 255) {
    fail(s, quote(path) + " is " + std::to_string(bytes.size()) +
                (bytes.size() == 1 ? " byte" : " bytes") + " long, out of range " +
                std::to_string(min) + "..255");
    return std::nullopt;
  }
  return bytes;
}

void Parser::read_lease_times(const Setting& g, const std::string& p, DhcpLeaseTime& lt,
                              LeaseSources& src) {
  const Setting* d = read_int(g, p, "default_lease_s", kMinLeaseS, kMaxLeaseS, lt.default_s);
  const Setting* lo = read_int(g, p, "min_lease_s", kMinLeaseS, kMaxLeaseS, lt.min_s);
  const Setting* hi = read_int(g, p, "max_lease_s", kMinLeaseS, kMaxLeaseS, lt.max_s);
  if (d != nullptr) src.default_s = join_path(p, "default_lease_s");
  if (lo != nullptr) src.min_s = join_path(p, "min_lease_s");
  if (hi != nullptr) src.max_s = join_path(p, "max_lease_s");
  // Only an order this level breaks is its error; inherited values were checked where set.
  auto order = [&](uint32_t a, const std::string& a_path, const Setting* a_set, uint32_t b,
                   const std::string& b_path, const Setting* b_set) {
    if (a <= b || (a_set == nullptr && b_set == nullptr)) return;
    const Setting* at = a_set == nullptr                     ? b_set
                        : b_set == nullptr                   ? a_set
                        : line_of(*b_set) >= line_of(*a_set) ? b_set
                                                             : a_set;
    fail(*at, quote(a_path) + " = " + std::to_string(a) + " is more than " + quote(b_path) + " = " +
                  std::to_string(b) + " (min_lease_s <= default_lease_s <= max_lease_s)");
  };
  order(lt.min_s, src.min_s, lo, lt.default_s, src.default_s, d);
  order(lt.default_s, src.default_s, d, lt.max_s, src.max_s, hi);
}

void Parser::read_timers(const Setting& g, const std::string& p, uint32_t& renew, uint32_t& rebind,
                         TimerSources& src) {
  const Setting* t1 = read_int(g, p, "renew_permille", 1, 999, renew);
  const Setting* t2 = read_int(g, p, "rebind_permille", 1, 999, rebind);
  if (t1 != nullptr) src.renew = join_path(p, "renew_permille");
  if (t2 != nullptr) src.rebind = join_path(p, "rebind_permille");
  if (renew < rebind || (t1 == nullptr && t2 == nullptr)) return;
  const Setting* at = t1 == nullptr                  ? t2
                      : t2 == nullptr                ? t1
                      : line_of(*t2) >= line_of(*t1) ? t2
                                                     : t1;
  fail(*at, quote(src.renew) + " = " + std::to_string(renew) + " must be less than " +
                quote(src.rebind) + " = " + std::to_string(rebind) + " (T1 before T2)");
}

void Parser::parse_dhcp(const Setting& g, Config& c) {
  const std::string p = "dhcp";
  Dhcp& d = c.dhcp;
  d.line = line_of(g);
  d.enabled = true;
  check_keys(g, p,
             {"enabled", "authoritative", "default_lease_s", "min_lease_s", "max_lease_s",
              "renew_permille", "rebind_permille", "min_secs", "offer_hold_ms", "decline_hold_s",
              "limits", "leases", "options", "classes", "subnets"});
  read_bool(g, p, "enabled", d.enabled);
  read_bool(g, p, "authoritative", d.authoritative);
  LeaseSources lease_src;
  read_lease_times(g, p, d.lease, lease_src);
  TimerSources timer_src;
  read_timers(g, p, d.renew_permille, d.rebind_permille, timer_src);
  read_int(g, p, "min_secs", 0, 65535, d.min_secs);
  read_int(g, p, "offer_hold_ms", 1000, 600000, d.offer_hold_ms);
  read_int(g, p, "decline_hold_s", 1, kMaxLeaseS, d.decline_hold_s);
  if (const Setting* l = group(g, p, "limits")) parse_dhcp_limits(*l, d.limits);
  if (const Setting* l = group(g, p, "leases")) parse_dhcp_leases(*l, d.leases);
  parse_dhcp_options(g, p, d.options);
  // Classes before subnets, whatever the order in the file: pools name classes.
  if (const Setting* l = group_list(g, p, "classes")) {
    // Pools select classes through a 64-bit mask in the workers' snapshot.
    if (l->getLength() > 64)
      fail((*l)[64], "'dhcp.classes' has " + std::to_string(l->getLength()) +
                         " entries; at most 64 classes are supported");
    for (int i = 0; i < l->getLength(); ++i) parse_dhcp_class((*l)[i], i, d);
  }
  if (const Setting* l = group_list(g, p, "subnets")) {
    for (int i = 0; i < l->getLength(); ++i) {
      parse_dhcp_subnet((*l)[i], i, lease_src, timer_src, c);
    }
  }
  check_dhcp_addresses(c);
}

void Parser::parse_dhcp_limits(const Setting& g, DhcpLimits& l) {
  const std::string p = "dhcp.limits";
  l.line = line_of(g);
  check_keys(g, p, {"window_ms", "requests_per_mac", "requests_per_circuit", "leases_per_circuit"});
  read_int(g, p, "window_ms", 100, 3600000, l.window_ms);
  read_int(g, p, "requests_per_mac", 0, kMaxLimit, l.requests_per_mac);
  read_int(g, p, "requests_per_circuit", 0, kMaxLimit, l.requests_per_circuit);
  read_int(g, p, "leases_per_circuit", 0, kMaxLimit, l.leases_per_circuit);
}

void Parser::parse_dhcp_leases(const Setting& g, DhcpLeaseStore& l) {
  const std::string p = "dhcp.leases";
  l.line = line_of(g);
  check_keys(g, p,
             {"journal", "snapshot", "durability", "fsync_interval_ms", "snapshot_interval_s",
              "journal_max_mb", "queue"});
  const Setting* files[2] = {nullptr, nullptr};
  int i = 0;
  for (const char* key : {"journal", "snapshot"}) {
    std::string path;
    const Setting* fs = read_string(g, p, key, path);
    files[i] = fs;
    if (fs != nullptr) {
      if (path.empty() || path[0] != '/') {
        fail(*fs, quote(join_path(p, key)) + " = \"" + path + "\" must be an absolute path");
      } else if (path.back() == '/') {
        fail(*fs,
             quote(join_path(p, key)) + " = \"" + path + "\" must name a file, not a directory");
      } else {
        (i == 0 ? l.journal : l.snapshot) = path;
      }
    }
    ++i;
  }
  if (l.journal == l.snapshot && (files[0] != nullptr || files[1] != nullptr)) {
    fail(files[1] != nullptr ? *files[1] : *files[0],
         "'dhcp.leases.journal' and 'dhcp.leases.snapshot' must be different files");
  } else if (l.journal.substr(0, l.journal.rfind('/')) !=
             l.snapshot.substr(0, l.snapshot.rfind('/'))) {
    // A snapshot is made durable by fsyncing its directory, which must hold the journal too.
    fail(files[1] != nullptr ? *files[1] : *files[0],
         "'dhcp.leases.journal' and 'dhcp.leases.snapshot' must be in the same directory");
  }
  read_enum(g, p, "durability",
            {{"strict", DhcpDurability::kStrict},
             {"batched", DhcpDurability::kBatched},
             {"none", DhcpDurability::kNone}},
            l.durability);
  read_int(g, p, "fsync_interval_ms", 1, 10000, l.fsync_interval_ms);
  read_int(g, p, "snapshot_interval_s", 60, 86400, l.snapshot_interval_s);
  read_int(g, p, "journal_max_mb", 1, 65536, l.journal_max_mb);
  uint32_t queue = l.queue;
  if (const Setting* q = read_int(g, p, "queue", 1024, 16777216, queue)) {
    if (is_power_of_two(queue)) {
      l.queue = queue;
    } else {
      fail(*q, quote(join_path(p, "queue")) + " = " + std::to_string(queue) +
                   " must be a power of two");
    }
  }
}

void Parser::parse_dhcp_class(const Setting& s, int index, Dhcp& d) {
  const std::string p = index_path("dhcp.classes", index);
  if (!is_group(s, p)) return;
  DhcpClass k;
  k.line = line_of(s);
  check_keys(s, p,
             {"name", "vendor_class", "vendor_class_prefix", "circuit_id", "circuit_id_prefix",
              "circuit_id_hex", "remote_id", "remote_id_prefix", "remote_id_hex"});
  if (!s.exists("name")) fail(s, "missing required key " + quote(p + ".name"));
  if (const Setting* n = read_name(s, p, "name", k.name)) {
    const auto [it, fresh] = dhcp_class_names_.emplace(k.name, line_of(*n));
    if (!fresh) {
      fail(*n, "duplicate DHCP class name '" + k.name + "' (first defined on line " +
                   std::to_string(it->second) + ")");
    }
  }
  struct Field {
    DhcpMatch::Field field;
    const char* keys[3];  // equal (text), prefix (text), equal (hex)
  };
  static const Field kFields[] = {
      {DhcpMatch::Field::kVendorClass, {"vendor_class", "vendor_class_prefix", nullptr}},
      {DhcpMatch::Field::kCircuitId, {"circuit_id", "circuit_id_prefix", "circuit_id_hex"}},
      {DhcpMatch::Field::kRemoteId, {"remote_id", "remote_id_prefix", "remote_id_hex"}},
  };
  bool any = false;
  for (const auto& f : kFields) {
    std::vector<int> set;
    for (int j = 0; j < 3; ++j) {
      if (f.keys[j] != nullptr && s.exists(f.keys[j])) set.push_back(j);
    }
    if (set.empty()) continue;
    any = true;
    if (set.size() > 1) {
      fail(s, quote(p) + " sets both '" + f.keys[set[0]] + "' and '" + f.keys[set[1]] +
                  "': one test per field");
      continue;
    }
    const int j = set[0];
    const char* key = f.keys[j];
    if (auto bytes = read_bytes(s[key], join_path(p, key), j == 2)) {
      k.match.push_back({f.field, j == 1, std::move(*bytes)});
    }
  }
  if (!any) {
    fail(s, quote(p) +
                " has nothing to match: set one of vendor_class, vendor_class_prefix, circuit_id, "
                "circuit_id_prefix, circuit_id_hex, remote_id, remote_id_prefix, remote_id_hex");
  }
  d.classes.push_back(std::move(k));
}

void Parser::parse_dhcp_subnet(const Setting& s, int index, const LeaseSources& lease_src,
                               const TimerSources& timer_src, Config& c) {
  const std::string p = index_path("dhcp.subnets", index);
  if (!is_group(s, p)) return;
  const Dhcp& d = c.dhcp;
  DhcpSubnet sn;
  sn.line = line_of(s);
  sn.authoritative = d.authoritative;
  sn.min_secs = d.min_secs;
  sn.renew_permille = d.renew_permille;
  sn.rebind_permille = d.rebind_permille;
  sn.lease = d.lease;
  check_keys(s, p,
             {"subnet", "port", "relays", "server_id", "authoritative", "min_secs",
              "default_lease_s", "min_lease_s", "max_lease_s", "renew_permille", "rebind_permille",
              "options", "pools", "hosts"});

  if (!s.exists("subnet")) fail(s, "missing required key " + quote(p + ".subnet"));
  bool subnet_ok = false;
  std::string text;
  if (const Setting* ss = read_string(s, p, "subnet", text)) {
    const std::string sp = quote(p + ".subnet") + " = \"" + text + "\" ";
    const size_t slash = text.find('/');
    const auto addr = parse_ipv4(text.substr(0, slash));
    const std::string len_text = slash == std::string::npos ? "" : text.substr(slash + 1);
    if (!addr || len_text.empty() || len_text.size() > 2 ||
        !std::all_of(len_text.begin(), len_text.end(),
                     [](char ch) { return ch >= '0' && ch <= '9'; })) {
      fail(*ss, sp + "is not an IPv4 prefix (expected A.B.C.D/LEN)");
    } else if (const int len = std::stoi(len_text); len < 1 || len > 30) {
      fail(*ss, sp + "has prefix length " + len_text + ", out of range 1..30");
    } else {
      const Ipv4Prefix pfx{*addr, static_cast<uint8_t>(len)};
      const char* why = non_unicast_reason(*addr);
      if ((pfx.addr & ~pfx.mask()) != 0) {
        fail(*ss, sp + "has host bits set (the subnet is " +
                      format_prefix({pfx.addr & pfx.mask(), pfx.len}) + ")");
      } else if (why != nullptr) {
        fail(*ss, sp + "is " + why);
      } else {
        subnet_ok = true;
        for (const auto& [other, line] : dhcp_subnets_) {
          if (other.contains(pfx.addr) || pfx.contains(other.addr)) {
            fail(*ss, "subnet " + format_prefix(pfx) + " overlaps subnet " + format_prefix(other) +
                          " (line " + std::to_string(line) + ")");
            subnet_ok = false;
            break;
          }
        }
        sn.subnet = pfx;
        if (subnet_ok) dhcp_subnets_.emplace_back(pfx, sn.line);
      }
    }
  }
  const std::string who = subnet_ok ? "subnet " + format_prefix(sn.subnet) : quote(p);

  const Port* port = nullptr;
  if (const Setting* ps = read_string(s, p, "port", sn.port)) {
    for (const auto& candidate : c.ports) {
      if (candidate.name == sn.port) port = &candidate;
    }
    if (port_names_.count(sn.port) == 0) {
      std::vector<std::string> known;
      for (const auto& [name, line] : port_names_) known.push_back(name);
      fail(*ps, quote(p + ".port") + " = \"" + sn.port + "\" is not a configured port" +
                    suggest(sn.port, known));
    }
  }

  if (const Setting* a = sequence(s, p, "relays", "strings")) {
    for (int i = 0; i < a->getLength(); ++i) {
      const Setting& el = (*a)[i];
      const auto relay = read_dhcp_address(el, index_path(p + ".relays", i));
      if (!relay) continue;
      const std::string ip = format_ipv4(*relay);
      const auto own = addresses_.find(*relay);
      if (own != addresses_.end()) {
        fail(el, "relay " + ip + " is one of our own addresses (port '" + own->second.port + "')");
        continue;
      }
      if (std::find(sn.relays.begin(), sn.relays.end(), *relay) != sn.relays.end()) {
        fail(el, "relay " + ip + " is listed twice in " + who);
        continue;
      }
      sn.relays.push_back(*relay);
      // Several subnets may share a relay: the first one names the address in messages.
      dhcp_taken_.emplace(*relay, Taken{"a relay address of " + who + " (line " +
                                        std::to_string(line_of(el)) + ")"});
    }
  }

  if (s.exists("server_id")) {
    const Setting& is = s["server_id"];
    if (const auto sid = read_dhcp_address(is, p + ".server_id")) {
      sn.server_id = *sid;
      dhcp_taken_.emplace(
          *sid, Taken{"the server_id of " + who + " (line " + std::to_string(line_of(is)) + ")"});
    }
  } else if (port != nullptr && port->addresses.empty()) {
    fail(s, quote(p) + " needs 'server_id': port '" + port->name +
                "' has no address to use as the server identifier");
  }

  read_bool(s, p, "authoritative", sn.authoritative);
  read_int(s, p, "min_secs", 0, 65535, sn.min_secs);
  LeaseSources lsrc = lease_src;
  read_lease_times(s, p, sn.lease, lsrc);
  TimerSources tsrc = timer_src;
  read_timers(s, p, sn.renew_permille, sn.rebind_permille, tsrc);
  parse_dhcp_options(s, p, sn.options);

  if (const Setting* l = group_list(s, p, "pools")) {
    for (int i = 0; i < l->getLength(); ++i) {
      parse_dhcp_pool((*l)[i], index_path(p + ".pools", i), lsrc, subnet_ok, sn);
    }
  }
  if (const Setting* l = group_list(s, p, "hosts")) {
    std::map<std::pair<DhcpHostKey, std::vector<uint8_t>>, int> ids;
    for (int i = 0; i < l->getLength(); ++i) {
      parse_dhcp_host((*l)[i], index_path(p + ".hosts", i), subnet_ok, sn, ids);
    }
  }
  c.dhcp.subnets.push_back(std::move(sn));
}

void Parser::parse_dhcp_pool(const Setting& s, const std::string& p, const LeaseSources& lease_src,
                             bool subnet_ok, DhcpSubnet& sn) {
  if (!is_group(s, p)) return;
  DhcpPool pool;
  pool.line = line_of(s);
  pool.lease = sn.lease;
  check_keys(s, p,
             {"range", "classes", "options", "default_lease_s", "min_lease_s", "max_lease_s"});
  if (!s.exists("range")) fail(s, "missing required key " + quote(p + ".range"));
  std::string text;
  if (const Setting* rs = read_string(s, p, "range", text)) {
    static const std::regex kRange("^\\s*([0-9.]+)\\s*-\\s*([0-9.]+)\\s*$");
    std::smatch m;
    std::optional<uint32_t> first;
    std::optional<uint32_t> last;
    if (std::regex_match(text, m, kRange)) {
      first = parse_ipv4(m[1].str());
      last = parse_ipv4(m[2].str());
    }
    if (!first || !last) {
      fail(*rs, quote(p + ".range") + " = \"" + text +
                    "\" is not a range (expected \"FIRST - LAST\", e.g. \"192.0.2.150 - "
                    "192.0.2.250\")");
    } else if (*first > *last) {
      fail(*rs, quote(p + ".range") + " = \"" + text + "\" ends before it starts");
    } else {
      const std::string r = "range " + format_ipv4(*first) + " - " + format_ipv4(*last);
      bool ok = true;
      if (subnet_ok) {
        const Ipv4Prefix& net = sn.subnet;
        const uint32_t network = net.addr & net.mask();
        const uint32_t broadcast = network | ~net.mask();
        const std::string where = " of subnet " + format_prefix(net);
        if (!net.contains(*first) || !net.contains(*last)) {
          fail(*rs, r + " is not inside subnet " + format_prefix(net));
          ok = false;
        } else if (*first == network) {
          fail(*rs, r + " includes the network address " + format_ipv4(network) + where);
          ok = false;
        } else if (*last == broadcast) {
          fail(*rs, r + " includes the broadcast address " + format_ipv4(broadcast) + where);
          ok = false;
        }
      }
      for (const auto& o : dhcp_ranges_) {
        if (!ok) break;
        if (*first <= o.last && o.first <= *last) {
          fail(*rs, r + " overlaps range " + format_ipv4(o.first) + " - " + format_ipv4(o.last) +
                        " (line " + std::to_string(o.line) + ")");
          ok = false;
        }
      }
      const uint64_t size = uint64_t{*last} - *first + 1;
      if (ok && dhcp_addresses_ + size > kMaxDhcpAddresses) {
        fail(*rs, r + " brings the ranges to " + std::to_string(dhcp_addresses_ + size) +
                      " addresses, more than the lease store holds (" +
                      std::to_string(kMaxDhcpAddresses) + ")");
        ok = false;
      }
      if (ok) {
        dhcp_addresses_ += size;
        dhcp_ranges_.push_back({*first, *last, line_of(*rs)});
        dhcp_deferred_.push_back({file_of(*rs), line_of(*rs), r, *first, *last, false});
        pool.first = *first;
        pool.last = *last;
      }
    }
  }

  if (const Setting* a = sequence(s, p, "classes", "strings")) {
    std::vector<std::string> known;
    for (const auto& [name, line] : dhcp_class_names_) known.push_back(name);
    for (int i = 0; i < a->getLength(); ++i) {
      const Setting& el = (*a)[i];
      const std::string ep = index_path(p + ".classes", i);
      auto name = string_value(el, ep);
      if (!name) continue;
      if (dhcp_class_names_.count(*name) == 0) {
        fail(el, quote(ep) + " = \"" + *name + "\" is not a class in 'dhcp.classes'" +
                     suggest(*name, known));
        continue;
      }
      if (std::find(pool.classes.begin(), pool.classes.end(), *name) != pool.classes.end()) {
        fail(el, "class '" + *name + "' is listed twice in " + quote(p + ".classes"));
        continue;
      }
      pool.classes.push_back(std::move(*name));
    }
  }
  LeaseSources lsrc = lease_src;
  read_lease_times(s, p, pool.lease, lsrc);
  parse_dhcp_options(s, p, pool.options);
  sn.pools.push_back(std::move(pool));
}

void Parser::parse_dhcp_host(const Setting& s, const std::string& p, bool subnet_ok, DhcpSubnet& sn,
                             std::map<std::pair<DhcpHostKey, std::vector<uint8_t>>, int>& ids) {
  if (!is_group(s, p)) return;
  DhcpHost h;
  h.line = line_of(s);
  check_keys(s, p,
             {"name", "mac", "client_id", "circuit_id", "circuit_id_hex", "remote_id",
              "remote_id_hex", "ip", "options"});
  if (const Setting* n = read_name(s, p, "name", h.name)) {
    const auto [it, fresh] = dhcp_host_names_.emplace(h.name, line_of(*n));
    if (!fresh) {
      fail(*n, "duplicate DHCP host name '" + h.name + "' (first defined on line " +
                   std::to_string(it->second) + ")");
    }
  }
  const std::string who = subnet_ok ? "subnet " + format_prefix(sn.subnet) : quote(p);

  struct Id {
    const char* key;
    DhcpHostKey kind;
    bool hex;
  };
  static const Id kIds[] = {
      {"mac", DhcpHostKey::kMac, false},
      {"client_id", DhcpHostKey::kClientId, true},
      {"circuit_id", DhcpHostKey::kCircuitId, false},
      {"circuit_id_hex", DhcpHostKey::kCircuitId, true},
      {"remote_id", DhcpHostKey::kRemoteId, false},
      {"remote_id_hex", DhcpHostKey::kRemoteId, true},
  };
  std::vector<const Id*> set;
  for (const auto& id : kIds) {
    if (s.exists(id.key)) set.push_back(&id);
  }
  if (set.empty()) {
    fail(s, quote(p) +
                " needs one of: mac, client_id, circuit_id, circuit_id_hex, remote_id, "
                "remote_id_hex");
  } else if (set.size() > 1) {
    fail(s, quote(p) + " sets both '" + set[0]->key + "' and '" + set[1]->key +
                "': a reservation has one identifier");
  } else {
    const Id& id = *set[0];
    const Setting& is = s[id.key];
    const std::string ip_path = join_path(p, id.key);
    std::optional<std::vector<uint8_t>> bytes;
    std::string shown;
    if (id.kind == DhcpHostKey::kMac) {
      std::string text;
      if (read_string(s, p, "mac", text) != nullptr) {
        const auto mac = parse_mac(text);
        if (!mac) {
          fail(is, quote(ip_path) + " = \"" + text +
                       "\" is not a MAC address (expected xx:xx:xx:xx:xx:xx)");
        } else if (((*mac)[0] & 1) != 0 || *mac == Mac{}) {
          fail(is, quote(ip_path) + " = \"" + text + "\" is not a unicast MAC address");
        } else {
          bytes.emplace(mac->begin(), mac->end());
          shown = "MAC " + format_mac(*mac);
        }
      }
    } else {
      // RFC 2132 §9.14: a client identifier is a type byte and at least one more.
      bytes = read_bytes(is, ip_path, id.hex, id.kind == DhcpHostKey::kClientId ? 2 : 1);
      if (bytes) {
        shown =
            std::string(id.key) + " " +
            (id.hex ? format_hex(*bytes) : "\"" + std::string(bytes->begin(), bytes->end()) + "\"");
      }
    }
    if (bytes) {
      h.key = id.kind;
      h.id = *bytes;
      const auto [it, fresh] = ids.emplace(std::make_pair(h.key, h.id), line_of(is));
      if (!fresh) {
        fail(is, shown + " already has a reservation in " + who + " (line " +
                     std::to_string(it->second) + ")");
      }
    }
  }

  if (!s.exists("ip")) fail(s, "missing required key " + quote(p + ".ip"));
  if (s.exists("ip")) {
    const Setting& is = s["ip"];
    if (const auto a = read_dhcp_address(is, p + ".ip")) {
      const std::string ip = format_ipv4(*a);
      const Ipv4Prefix& net = sn.subnet;
      const uint32_t network = net.addr & net.mask();
      const uint32_t broadcast = network | ~net.mask();
      bool ok = true;
      if (subnet_ok && !net.contains(*a)) {
        fail(is, quote(p + ".ip") + " = \"" + ip + "\" is not inside " + who);
        ok = false;
      } else if (subnet_ok && (*a == network || *a == broadcast)) {
        fail(is, quote(p + ".ip") + " = \"" + ip + "\" is the " +
                     (*a == network ? "network" : "broadcast") + " address of " + who);
        ok = false;
      }
      for (const auto& other : sn.hosts) {
        if (!ok) break;
        if (other.ip == *a) {
          fail(is, "address " + ip + " is already reserved" +
                       (other.name.empty() ? "" : " for host '" + other.name + "'") + " (line " +
                       std::to_string(other.line) + ")");
          ok = false;
        }
      }
      h.ip = *a;
      if (ok) {
        dhcp_deferred_.push_back(
            {file_of(is), line_of(is), "reserved address " + ip, *a, *a, true});
      }
    }
  }
  parse_dhcp_options(s, p, h.options);
  sn.hosts.push_back(std::move(h));
}

// Ranges and reservations must not hand out an address that is ours, a VIP, a server identifier
// or a relay's. Checked once every subnet is known (a subnet's server_id may lie in another).
void Parser::check_dhcp_addresses(const Config&) {
  for (const auto& d : dhcp_deferred_) {
    auto report = [&](uint32_t ip, const std::string& what) {
      const std::string msg =
          d.single ? d.who + " is " + what : d.who + " contains " + format_ipv4(ip) + ", " + what;
      errors_.push_back({d.file, d.line, msg});
    };
    for (auto it = addresses_.lower_bound(d.first); it != addresses_.end() && it->first <= d.last;
         ++it) {
      report(it->first, "an address of port '" + it->second.port + "'");
    }
    for (auto it = vips_.lower_bound(d.first); it != vips_.end() && it->first <= d.last; ++it) {
      report(it->first, "a virtual IP of VRRP instance '" + it->second.port + "'");
    }
    for (auto it = dhcp_taken_.lower_bound(d.first); it != dhcp_taken_.end() && it->first <= d.last;
         ++it) {
      report(it->first, it->second.what);
    }
  }
}

void Parser::parse_dhcp_options(const Setting& parent, const std::string& parent_path,
                                std::vector<DhcpOption>& out) {
  const Setting* l = group_list(parent, parent_path, "options");
  if (l == nullptr) return;
  const std::string lp = join_path(parent_path, "options");
  std::map<uint8_t, int> seen;  // code -> line
  for (int i = 0; i < l->getLength(); ++i) {
    auto o = parse_dhcp_option((*l)[i], index_path(lp, i));
    if (!o) continue;
    const auto [it, fresh] = seen.emplace(o->code, o->line);
    if (!fresh) {
      fail((*l)[i], option_label(o->code) + " is set twice in " + quote(lp) + " (first on line " +
                        std::to_string(it->second) + ")");
      continue;
    }
    out.push_back(std::move(*o));
  }
}

std::optional<DhcpOption> Parser::parse_dhcp_option(const Setting& s, const std::string& p) {
  if (!is_group(s, p)) return std::nullopt;
  DhcpOption o;
  o.line = line_of(s);
  check_keys(s, p, {"name", "code", "type", "value"});
  bool ok = true;
  const OptionDef* def = nullptr;
  const bool has_name = s.exists("name");
  const bool has_code = s.exists("code");
  if (!has_name && !has_code) {
    fail(s, "missing required key " + quote(p + ".name") + " or " + quote(p + ".code"));
    ok = false;
  } else if (has_name && has_code) {
    fail(s, quote(p) + " sets both 'name' and 'code': use one");
    ok = false;
  } else if (has_name) {
    std::string name;
    const Setting* ns = read_string(s, p, "name", name);
    def = ns != nullptr ? option_by_name(name) : nullptr;
    if (ns == nullptr) {
      ok = false;
    } else if (def == nullptr) {
      std::vector<std::string> known;
      for (const auto& d : kOptionDefs) known.emplace_back(d.name);
      const std::string hint = suggest(name, known);
      fail(*ns, quote(p + ".name") + " = \"" + name + "\" is not a known option" +
                    (hint.empty() ? " (set 'code' and 'type' instead)" : hint));
      ok = false;
    } else if (def->type == kOptServer) {
      fail(*ns, quote(p + ".name") + " = \"" + name + "\" (option " + std::to_string(def->code) +
                    ") is set by the server: " + def->hint);
      ok = false;
    } else {
      o.code = def->code;
    }
  } else {
    const Setting& cs = s["code"];
    if (const auto v = int_value(cs, p + ".code", 1, 254)) {
      def = option_by_code(*v);
      if (def != nullptr && def->type == kOptServer) {
        fail(cs, quote(p + ".code") + " = " + std::to_string(*v) + " (" + def->name +
                     ") is set by the server: " + def->hint);
        ok = false;
      } else {
        o.code = static_cast<uint8_t>(*v);
      }
    } else {
      ok = false;
    }
  }
  const std::string which = option_label(o.code);

  int type = def != nullptr ? def->type : -1;
  std::string type_text;
  if (const Setting* ts = read_string(s, p, "type", type_text)) {
    const auto* end = std::end(kOptionTypeNames);
    const auto* found = std::find_if(std::begin(kOptionTypeNames), end,
                                     [&](const char* t) { return type_text == t; });
    const int t = found == end ? -1 : static_cast<int>(found - std::begin(kOptionTypeNames));
    if (t < 0) {
      fail(*ts, quote(p + ".type") + " = \"" + type_text + "\" is not one of: " + kOptionTypeList);
      ok = false;
    } else if (ok && def != nullptr && t != def->type && t != kOptHex) {
      fail(*ts, quote(p + ".type") + " = \"" + type_text + "\" does not fit " + which +
                    ", which is " + kOptionTypeNames[def->type] + " (or \"hex\" for raw bytes)");
      ok = false;
    } else {
      type = t;
    }
  } else if (s.exists("type")) {
    ok = false;
  } else if (ok && def == nullptr) {
    fail(s, which + " has no known type: set " + quote(p + ".type") +
                " (one of: " + kOptionTypeList + ")");
    ok = false;
  }
  if (!s.exists("value")) {
    fail(s, "missing required key " + quote(p + ".value"));
    return std::nullopt;
  }
  if (!ok || type < 0) return std::nullopt;
  const Setting& v = s["value"];
  if (!encode_option_value(v, p + ".value", type, which, o.code, o.data)) return std::nullopt;
  if (o.data.size() > kMaxOptionLen) {
    fail(v, which + " is " + std::to_string(o.data.size()) + " bytes long, more than " +
                std::to_string(kMaxOptionLen));
    return std::nullopt;
  }
  return o;
}

bool Parser::encode_option_value(const Setting& v, const std::string& vp, int type,
                                 const std::string& which, uint8_t code,
                                 std::vector<uint8_t>& out) {
  auto want = [&](const char* what) {
    fail(v, quote(vp) + " must be " + what + " for " + which + ", got " + type_name(v));
    return false;
  };
  const std::string note = " for " + which;
  switch (type) {
    case kOptIp: {
      if (v.getType() != Setting::TypeString) return want("a string (an IPv4 address)");
      const std::string text = static_cast<const char*>(v);
      const auto a = parse_ipv4(text);
      if (!a) {
        fail(v, quote(vp) + " = \"" + text + "\" is not an IPv4 address (expected A.B.C.D)");
        return false;
      }
      // A subnet mask is contiguous ones: ~mask + 1 is a power of two (or 0 for /0).
      const uint32_t inverse = ~*a;
      if (code == 1 && (inverse & (inverse + 1)) != 0) {
        fail(v, quote(vp) + " = \"" + text + "\" is not a netmask (e.g. 255.255.255.0)");
        return false;
      }
      put_u32(out, *a);
      return true;
    }
    case kOptIps:
    case kOptRoutes:
    case kOptDomains: {
      if (!is_sequence(v)) {
        return want(type == kOptIps      ? "an array [ ... ] of IPv4 addresses"
                    : type == kOptRoutes ? "an array [ ... ] of routes"
                                         : "an array [ ... ] of domain names");
      }
      if (v.getLength() == 0) {
        fail(v, quote(vp) + " must not be empty");
        return false;
      }
      bool ok = true;
      for (int i = 0; i < v.getLength(); ++i) {
        const Setting& el = v[i];
        const std::string ep = index_path(vp, i);
        const auto text = string_value(el, ep);
        if (!text) {
          ok = false;
          continue;
        }
        const std::string shown = quote(ep) + " = \"" + *text + "\" ";
        if (type == kOptIps) {
          const auto a = parse_ipv4(*text);
          if (!a) {
            fail(el, shown + "is not an IPv4 address (expected A.B.C.D)");
            ok = false;
            continue;
          }
          put_u32(out, *a);
        } else if (type == kOptDomains) {
          const auto wire = encode_domain(*text);
          if (wire.empty()) {
            fail(el, shown +
                         "is not a domain name (labels of 1..63 letters, digits, '-' or '_', "
                         "joined by dots)");
            ok = false;
            continue;
          }
          out.insert(out.end(), wire.begin(), wire.end());
        } else {
          static const std::regex kRoute("^\\s*([0-9.]+)/([0-9]{1,2})\\s+via\\s+([0-9.]+)\\s*$");
          std::smatch m;
          std::optional<uint32_t> dest;
          std::optional<uint32_t> router;
          if (std::regex_match(*text, m, kRoute)) {
            dest = parse_ipv4(m[1].str());
            router = parse_ipv4(m[3].str());
          }
          if (!dest || !router) {
            fail(el, shown +
                         "is not a route (expected \"DEST/LEN via ROUTER\", e.g. \"10.0.0.0/8 "
                         "via 192.0.2.1\")");
            ok = false;
            continue;
          }
          const int len = std::stoi(m[2].str());
          if (len > 32) {
            fail(el, shown + "has prefix length " + m[2].str() + ", out of range 0..32");
            ok = false;
            continue;
          }
          const Ipv4Prefix pfx{*dest, static_cast<uint8_t>(len)};
          if ((pfx.addr & ~pfx.mask()) != 0) {
            fail(el, shown + "has host bits set (the destination is " +
                         format_prefix({pfx.addr & pfx.mask(), pfx.len}) + ")");
            ok = false;
            continue;
          }
          // RFC 3442: width, the significant octets of the destination, the router.
          out.push_back(static_cast<uint8_t>(len));
          for (int octet = 0; octet < (len + 7) / 8; ++octet) {
            out.push_back(static_cast<uint8_t>(*dest >> (24 - 8 * octet)));
          }
          put_u32(out, *router);
        }
      }
      return ok;
    }
    case kOptString: {
      if (v.getType() != Setting::TypeString) return want("a string");
      const std::string text = static_cast<const char*>(v);
      if (text.empty()) {
        fail(v, quote(vp) + " must not be empty");
        return false;
      }
      out.assign(text.begin(), text.end());
      return true;
    }
    case kOptU8:
    case kOptU16:
    case kOptU32:
    case kOptI32: {
      int64_t lo = 0;
      int64_t hi = type == kOptU8 ? 0xff : type == kOptU16 ? 0xffff : 0xffffffffLL;
      if (type == kOptI32) {
        lo = INT32_MIN;
        hi = INT32_MAX;
      }
      if (code == 26) lo = 68;  // RFC 2132 §5.1: the smallest legal MTU
      const auto n = int_value(v, vp, lo, hi, note);
      if (!n) return false;
      const auto u = static_cast<uint32_t>(*n);
      const int bytes = type == kOptU8 ? 1 : type == kOptU16 ? 2 : 4;
      for (int b = bytes - 1; b >= 0; --b) out.push_back(static_cast<uint8_t>(u >> (8 * b)));
      return true;
    }
    case kOptBool: {
      if (v.getType() != Setting::TypeBoolean) return want("a boolean (true or false)");
      out.push_back(static_cast<bool>(v) ? 1 : 0);
      return true;
    }
    case kOptHex: {
      if (v.getType() != Setting::TypeString) return want("a string of hex bytes");
      const std::string text = static_cast<const char*>(v);
      auto bytes = parse_hex(text);
      if (!bytes) {
        fail(v,
             quote(vp) + " = \"" + text + "\" is not hex bytes (e.g. \"01:02:0a\" or \"01020a\")");
        return false;
      }
      out = std::move(*bytes);
      return true;
    }
    default:
      return false;
  }
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
  // A list whose length changed: blamed at its first added entry, else its last remaining one,
  // else `fallback` (the enclosing group).
  auto resized = [&](const auto& r, const auto& n, int fallback, const std::string& key) {
    if (r.size() == n.size()) return;
    int line = fallback;
    if (n.size() > r.size()) {
      line = n[r.size()].line;
    } else if (!n.empty()) {
      line = n.back().line;
    }
    conflict(line, key);
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
  resized(running.ports, next.ports, 0, "ports");

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
  resized(rv.instances, nv.instances, nv.line, "vrrp.instances");
  const size_t common_groups = std::min(rv.sync_groups.size(), nv.sync_groups.size());
  for (size_t i = 0; i < common_groups; ++i) {
    const VrrpSyncGroup& rg = rv.sync_groups[i];
    const VrrpSyncGroup& ng = nv.sync_groups[i];
    const std::string p = index_path("vrrp.sync_groups", static_cast<int>(i));
    if (rg.name != ng.name) conflict(ng.line, p + ".name");
    if (rg.instances != ng.instances) conflict(ng.line, p + ".instances");
  }
  resized(rv.sync_groups, nv.sync_groups, nv.line, "vrrp.sync_groups");

  // DHCP: turning the server on or off, the lease files (what the journal writer opened at
  // start, and how it syncs), and the address plan the workers' lease stores were built from
  // (subnets, pool ranges, reserved addresses, offer and decline holds) need a restart; options,
  // lease times, classes' matches, relays, server ids, min_secs and limits do not.
  const Dhcp& rh = running.dhcp;
  const Dhcp& nh = next.dhcp;
  if (rh.enabled != nh.enabled) conflict(nh.line, "dhcp.enabled");
  if (rh.leases.journal != nh.leases.journal) conflict(nh.leases.line, "dhcp.leases.journal");
  if (rh.leases.snapshot != nh.leases.snapshot) conflict(nh.leases.line, "dhcp.leases.snapshot");
  if (rh.leases.durability != nh.leases.durability) {
    conflict(nh.leases.line, "dhcp.leases.durability");
  }
  if (rh.leases.queue != nh.leases.queue) conflict(nh.leases.line, "dhcp.leases.queue");
  if (rh.offer_hold_ms != nh.offer_hold_ms) conflict(nh.line, "dhcp.offer_hold_ms");
  if (rh.decline_hold_s != nh.decline_hold_s) conflict(nh.line, "dhcp.decline_hold_s");
  if (rh.classes.size() != nh.classes.size()) conflict(nh.line, "dhcp.classes");
  if (rh.subnets.size() != nh.subnets.size()) {
    conflict(nh.line, "dhcp.subnets");
  } else {
    for (size_t i = 0; i < nh.subnets.size(); ++i) {
      const DhcpSubnet& a = rh.subnets[i];
      const DhcpSubnet& b = nh.subnets[i];
      bool same = a.subnet.addr == b.subnet.addr && a.subnet.len == b.subnet.len &&
                  a.pools.size() == b.pools.size() && a.hosts.size() == b.hosts.size();
      for (size_t k = 0; same && k < a.pools.size(); ++k)
        same = a.pools[k].first == b.pools[k].first && a.pools[k].last == b.pools[k].last;
      for (size_t k = 0; same && k < a.hosts.size(); ++k)
        same = a.hosts[k].ip == b.hosts[k].ip && a.hosts[k].key == b.hosts[k].key &&
               a.hosts[k].id == b.hosts[k].id;
      if (!same) conflict(b.line, "dhcp.subnets (prefix, pool ranges or reservations)");
    }
  }
  // Load balancer: the connection tables are sized at start; services, checks, timeouts and
  // routes apply on reload.
  if (running.lb.enabled != next.lb.enabled) conflict(next.lb.line, "lb.enabled");
  if (running.lb.connections != next.lb.connections) conflict(next.lb.line, "lb.connections");
  if (running.routing.forward != next.routing.forward)
    conflict(next.routing.line, "routing.forward");
  // The sync link's socket and session are set up at start.
  {
    const Sync& a = running.sync;
    const Sync& b = next.sync;
    if (a.enabled != b.enabled || a.address != b.address || a.peer != b.peer ||
        a.port != b.port || a.interface != b.interface || a.key != b.key ||
        a.connections != b.connections)
      conflict(b.line, "sync (address, peer, port, interface, key, connections)");
  }
  for (size_t i = 0; i < common; ++i) {
    if (running.ports[i].tap != next.ports[i].tap)
      conflict(next.ports[i].line, index_path("ports", static_cast<int>(i)) + ".tap");
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Error& a, const Error& b) { return a.line < b.line; });
  return out;
}

std::string format_prefix(uint32_t addr, uint8_t len) {
  return format_ipv4(addr) + "/" + std::to_string(len);
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
