// keepalived.conf -> tandem configuration. Three steps: split the text into tokens the way
// keepalived does (comments, quotes, braces, line continuations), build a tree of statements
// (a keyword, its arguments on the same line, an optional { block }), then translate the parts
// tandem has (global_defs, vrrp_script, vrrp_instance, vrrp_sync_group, virtual_server) and list
// the rest.
#include "control/keepalived_import.h"

#include "config/model.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctl {
namespace {

// ---------------------------------------------------------------------------------------------
// Tokens

enum class Tok { kWord, kOpen, kClose, kEol };

struct Token {
  Tok kind = Tok::kWord;
  std::string text;
  int line = 0;
};

struct Problem {
  int line = 0;
  std::string text;
};

// keepalived's rules: '#' and '!' start a comment anywhere outside double quotes ("\#" and "\!"
// are literal), a '\' at the end of a line continues it, '{' and '}' are tokens of their own, and
// quotes group words (and are removed). Inside quotes only \" and \\ are escapes.
std::vector<Token> lex(const std::string& text, std::vector<Problem>& errors) {
  std::vector<Token> out;
  std::string word;
  bool in_word = false;
  int word_line = 0;
  int line = 1;
  auto start_word = [&] {
    if (!in_word) {
      in_word = true;
      word_line = line;
    }
  };
  auto flush = [&] {
    if (in_word) out.push_back({Tok::kWord, word, word_line});
    word.clear();
    in_word = false;
  };
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    if (c == '\n') {
      flush();
      out.push_back({Tok::kEol, "", line});
      ++line;
      ++i;
    } else if (c == '\\') {
      size_t j = i + 1;
      if (j < n && text[j] == '\r') ++j;
      if (j >= n || text[j] == '\n') {  // continuation: the next line is part of this one
        flush();
        ++line;
        i = j + 1;
      } else {
        start_word();
        if (text[j] == '#' || text[j] == '!') {
          word += text[j];
          i = j + 1;
        } else {
          word += c;
          ++i;
        }
      }
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      flush();
      ++i;
    } else if (c == '#' || c == '!') {
      flush();
      while (i < n && text[i] != '\n') ++i;
    } else if (c == '{' || c == '}') {
      flush();
      out.push_back({c == '{' ? Tok::kOpen : Tok::kClose, std::string(1, c), line});
      ++i;
    } else if (c == '"') {
      start_word();
      size_t j = i + 1;
      bool closed = false;
      while (j < n && text[j] != '\n') {
        if (text[j] == '\\' && j + 1 < n && (text[j + 1] == '"' || text[j + 1] == '\\')) {
          word += text[j + 1];
          j += 2;
        } else if (text[j] == '"') {
          closed = true;
          ++j;
          break;
        } else {
          word += text[j++];
        }
      }
      if (!closed) errors.push_back({line, "unterminated quote"});
      i = j;
    } else {
      start_word();
      word += c;
      ++i;
    }
  }
  flush();
  out.push_back({Tok::kEol, "", line});
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statements

struct Node {
  std::string key;
  std::vector<std::string> args;  // the words after the key on its line
  int line = 0;
  bool block = false;
  std::vector<Node> children;
};

class TreeParser {
 public:
  TreeParser(const std::vector<Token>& tokens, std::vector<Problem>& errors)
      : t_(tokens), errors_(errors) {}

  // Statements until the '}' closing a block opened on `open_line` (depth > 0) or the end.
  std::vector<Node> block(int depth, int open_line) {
    std::vector<Node> out;
    while (true) {
      while (pos_ < t_.size() && t_[pos_].kind == Tok::kEol) ++pos_;
      if (pos_ >= t_.size()) {
        if (depth > 0) {
          errors_.push_back({open_line, "'{' opened here is never closed"});
        }
        return out;
      }
      const Token& tk = t_[pos_++];
      if (tk.kind == Tok::kClose) {
        if (depth > 0) return out;
        errors_.push_back({tk.line, "'}' closes no block"});
        continue;
      }
      if (tk.kind == Tok::kOpen) {
        errors_.push_back({tk.line, "'{' without a keyword before it"});
        block(depth + 1, tk.line);
        continue;
      }
      Node nd;
      nd.key = tk.text;
      nd.line = tk.line;
      while (pos_ < t_.size() && t_[pos_].kind == Tok::kWord) nd.args.push_back(t_[pos_++].text);
      // The block may open on the keyword's line or on the next non-empty one.
      size_t look = pos_;
      while (look < t_.size() && t_[look].kind == Tok::kEol) ++look;
      if (look < t_.size() && t_[look].kind == Tok::kOpen) {
        nd.block = true;
        pos_ = look + 1;
        nd.children = block(depth + 1, t_[look].line);
      }
      out.push_back(std::move(nd));
    }
  }

 private:
  const std::vector<Token>& t_;
  std::vector<Problem>& errors_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Values

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::optional<int64_t> parse_int(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i >= s.size() || s.size() - i > 9) return std::nullopt;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (!is_digit(s[i])) return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return s[0] == '-' ? -v : v;
}

// Non-negative seconds, possibly fractional ("0.1", "1", "2.5"), as milliseconds (rounded).
std::optional<int64_t> parse_seconds_ms(const std::string& s) {
  const size_t dot = s.find('.');
  const std::string whole = s.substr(0, dot);
  const std::string frac = dot == std::string::npos ? "" : s.substr(dot + 1);
  if ((whole.empty() && frac.empty()) || whole.size() > 7) return std::nullopt;
  if (!std::all_of(whole.begin(), whole.end(), is_digit) ||
      !std::all_of(frac.begin(), frac.end(), is_digit)) {
    return std::nullopt;
  }
  int64_t ms = 0;
  for (char c : whole) ms = ms * 10 + (c - '0');
  ms *= 1000;
  int64_t scale = 100;
  for (size_t k = 0; k < frac.size() && k < 3; ++k, scale /= 10) ms += (frac[k] - '0') * scale;
  if (frac.size() > 3 && frac[3] >= '5') ++ms;
  return ms;
}

using cfg::format_ipv4;
using cfg::parse_ipv4;

struct Prefix {
  uint32_t addr = 0;
  int len = 32;
  uint32_t mask() const { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
  bool contains(uint32_t a) const { return (a & mask()) == (addr & mask()); }
  std::string str() const { return format_ipv4(addr) + "/" + std::to_string(len); }
};

// "A.B.C.D[/LEN]" as tandem accepts it for an address of ours (see config/parser.cpp), or why not.
std::optional<Prefix> parse_host_prefix(const std::string& s, std::string& why) {
  const size_t slash = s.find('/');
  const auto addr = parse_ipv4(s.substr(0, slash));
  if (!addr) {
    why = "not an IPv4 address";
    return std::nullopt;
  }
  Prefix p{*addr, 32};
  if (slash != std::string::npos) {
    const auto len = parse_int(s.substr(slash + 1));
    if (!len || *len < 0 || *len > 32 || !is_digit(s[slash + 1])) {
      why = "bad prefix length";
      return std::nullopt;
    }
    p.len = static_cast<int>(*len);
  }
  const uint32_t top = p.addr >> 24;
  if (top == 0 || top == 127 || top >= 224) {
    why = "not a unicast host address";
    return std::nullopt;
  }
  if (p.len <= 30 && ((p.addr & ~p.mask()) == 0 || (p.addr & ~p.mask()) == ~p.mask())) {
    why = "the network or broadcast address of its prefix";
    return std::nullopt;
  }
  return p;
}

bool valid_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' ||
           c == '_' || c == '-';
  });
}

// tandem names allow A-Z a-z 0-9 . _ -: anything else becomes '_'.
std::string as_name(const std::string& s) {
  std::string out = s.empty() ? "unnamed" : s;
  for (char& c : out) {
    if (!valid_name(std::string(1, c))) c = '_';
  }
  return out;
}

// A libconfig string literal.
std::string str(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// How a statement looks in a message: "notify_master \"/x.sh\"", "virtual_server 1.2.3.4 80".
std::string describe(const Node& n) {
  std::string out = n.key;
  for (const auto& a : n.args) {
    out += ' ';
    out += (a.empty() || a.find_first_of(" \t") != std::string::npos) ? str(a) : a;
  }
  if (out.size() > 72) out = out.substr(0, 69) + "...";
  if (n.block) out += " { ... }";
  return out;
}

std::string arg(const Node& n, size_t i = 0) {
  return i < n.args.size() ? n.args[i] : std::string();
}

// All the words of a statement: a script or notify command given without quotes.
std::string joined_args(const Node& n) {
  std::string out;
  for (const auto& a : n.args) out += (out.empty() ? "" : " ") + a;
  return out;
}

// ---------------------------------------------------------------------------------------------
// What is translated

struct Script {
  std::string name;  // tandem name
  int line = 0;
  std::string command;
  std::optional<int64_t> interval_ms, timeout_ms, weight, rise, fall;
  std::vector<std::string> notes;  // comments above the entry
};

struct TrackScript {
  std::string script;
  std::optional<int64_t> weight;
};

struct TrackPort {
  std::string port;
  int64_t weight = 0;
  bool has_weight = false;
};

struct Instance {
  std::string name;
  int line = 0;
  std::string state;
  std::string interface;
  int64_t vrid = 0;
  int64_t version = 2;
  int64_t priority = 100;
  int64_t advert_ms = 1000;
  bool preempt = true;
  std::optional<int64_t> preempt_delay_ms;
  std::string auth_pass;
  std::vector<Prefix> vips;
  bool virtual_mac = false;
  std::vector<uint32_t> peers;
  std::vector<TrackPort> track_ports;
  std::vector<TrackScript> track_scripts;
  std::string notify;
  std::vector<std::string> notes;
};

struct SyncGroup {
  std::string name;
  int line = 0;  // 0: made by the import
  std::vector<std::string> instances;
  std::string notify;
  std::vector<std::string> notes;
};

struct Port {
  std::string interface;  // keepalived's name, also the port name (as_name)
  std::vector<Prefix> addresses;
  std::vector<std::string> notes;
};

// lb: one keepalived checker (TCP_CHECK, HTTP_GET, SSL_GET) as tandem's service check.
struct Check {
  std::string type;     // "tcp" or "http"
  std::string checker;  // keepalived's keyword
  int line = 0;
  std::optional<int64_t> port;
  std::string path = "/";
  int64_t status = 200;
  std::string host;
  int64_t interval_ms = 0, timeout_ms = 0;
  std::optional<int64_t> retries, retry_delay_ms;
  std::vector<std::string> notes;
  // What tandem would run: the keyword and the notes aside.
  bool same(const Check& o) const {
    return type == o.type && port == o.port && path == o.path && status == o.status &&
           host == o.host && interval_ms == o.interval_ms && timeout_ms == o.timeout_ms &&
           retries == o.retries && retry_delay_ms == o.retry_delay_ms;
  }
};

// Checker settings keepalived lets a virtual_server and a real_server set for the checkers
// inside them (the innermost wins).
struct CheckDefaults {
  std::optional<int64_t> interval_ms, timeout_ms, retries, retry_delay_ms;
  std::optional<std::string> host;
};

struct Real {
  std::string what;  // "real_server 192.0.2.1 80"
  int line = 0;
  uint32_t ip = 0;
  std::optional<int64_t> port;
  int64_t weight = 1;
  std::string mode;  // "": the service's
  std::optional<Check> check;
  bool live = true;  // false: commented out (not on a connected prefix)
  std::vector<std::string> notes;
};

struct Service {
  std::string what;  // "virtual_server 192.0.2.1 80"
  int line = 0;
  std::string proto = "tcp";
  uint32_t vip = 0;
  int64_t port = 0;
  std::string sched = "wlc";
  std::string mode = "nat";
  std::optional<int64_t> persistence_s;
  std::string netmask;
  std::vector<Real> reals;
  std::optional<Check> check;
  bool live = true;  // false: commented out (the VIP is not an address of this node)
  std::vector<std::string> notes;
};

constexpr const char* kMailWhy = "tandem sends no e-mail: send it from the notify script";
constexpr const char* kPerStateWhy =
    "tandem runs one notify script per transition, with INSTANCE|GROUP NAME STATE PRIORITY as "
    "arguments: fold the per-state scripts into the notify script and switch on $3 (MASTER, "
    "BACKUP, FAULT)";
constexpr size_t kMaxVips = 32;

class Importer {
 public:
  explicit Importer(std::string file) : file_(std::move(file)) {}

  ImportResult run(const std::string& text);

 private:
  void skip(int line, const std::string& what, const std::string& why) {
    untranslated_.push_back({line, what + ": " + why});
  }
  void skip(const Node& n, const std::string& why) { skip(n.line, describe(n), why); }
  void error(int line, const std::string& message) { errors_.push_back({line, message}); }

  void global_defs(const Node& n);
  void vrrp_script(const Node& n);
  void vrrp_instance(const Node& n);
  // Statements of a vrrp_instance translated once the whole block has been read.
  struct InstanceNodes {
    bool has_vrid = false;
    const Node* advert = nullptr;
    const Node* nopreempt = nullptr;
    const Node* auth = nullptr;
    const Node* src_ip = nullptr;
    std::vector<const Node*> vips, peers, track_scripts, track_ifs;
  };
  void instance_setting(const Node& c, Instance& in, InstanceNodes& parts);
  void instance_vips(const Node& block, Instance& in);
  void instance_auth(const Node& auth, Instance& in);
  void instance_source(const Node& c, const Instance& in);
  void instance_track_interfaces(const Node& blk, Instance& in);
  void instance_track_scripts(const Node& blk, Instance& in);
  void vrrp_sync_group(const Node& n);
  void virtual_server(const Node& n);
  void real_server(const Node& n, Service& svc, CheckDefaults d);
  bool check_setting(const Node& c, CheckDefaults& d);
  std::optional<Check> checker(const Node& c, CheckDefaults d);
  void pick_check(Service& svc);
  bool ours(uint32_t ip) const;
  bool connected(uint32_t ip) const;
  void other(const Node& n);
  void keep_ungrouped_apart();
  Port& port(const std::string& interface);
  std::string name_of(const Node& n, const char* what);
  std::string render() const;
  std::string where(int line) const { return file_ + ":" + std::to_string(line); }

  std::string file_;
  std::vector<Problem> untranslated_;
  std::vector<Problem> errors_;

  std::optional<std::string> node_;
  int node_line_ = 0;
  std::optional<int64_t> global_version_;
  std::optional<int64_t> garp_count_, garp_interval_ms_, garp_refresh_s_;
  std::vector<std::string> vrrp_notes_;
  std::vector<Script> scripts_;
  std::vector<Instance> instances_;
  std::vector<SyncGroup> groups_;
  std::vector<Port> ports_;
  std::map<uint32_t, std::string> vip_owner_;  // virtual IP -> instance
  std::set<std::pair<std::string, int64_t>> vrids_;
  std::map<std::string, std::string> grouped_;  // instance -> sync group
  std::vector<Service> services_;
};

std::string Importer::name_of(const Node& n, const char* what) {
  const std::string raw = arg(n);
  std::string name = as_name(raw);
  if (name != raw) {
    skip(n.line, std::string(what) + " name " + str(raw),
         "renamed " + str(name) + " (tandem names use only A-Z a-z 0-9 . _ -)");
  }
  return name;
}

Port& Importer::port(const std::string& interface) {
  for (auto& p : ports_) {
    if (p.interface == interface) return p;
  }
  ports_.push_back({interface, {}, {}});
  return ports_.back();
}

void Importer::global_defs(const Node& n) {
  for (const Node& c : n.children) {
    const std::string& k = c.key;
    if (k == "router_id") {
      if (c.args.empty()) {
        error(c.line, "router_id needs a value");
        continue;
      }
      node_ = as_name(arg(c));
      node_line_ = c.line;
      if (*node_ != arg(c)) {
        skip(c, "node name becomes " + str(*node_) + " (tandem names use only A-Z a-z 0-9 . _ -)");
      }
    } else if (k == "vrrp_version") {
      const auto v = parse_int(arg(c));
      if (!v || (*v != 2 && *v != 3)) {
        error(c.line, "vrrp_version must be 2 or 3");
      } else {
        global_version_ = *v;
      }
    } else if (k == "vrrp_garp_master_repeat") {
      const auto v = parse_int(arg(c));
      if (!v || *v < 0) {
        error(c.line, "vrrp_garp_master_repeat must be a count");
      } else {
        garp_count_ = std::min<int64_t>(*v, 100);
        if (*v > 100) vrrp_notes_.push_back("vrrp_garp_master_repeat " + arg(c) + ": at most 100");
      }
    } else if (k == "vrrp_garp_interval") {
      const auto v = parse_seconds_ms(arg(c));
      if (!v) {
        error(c.line, "vrrp_garp_interval must be a number of seconds");
      } else {
        garp_interval_ms_ = std::clamp<int64_t>(*v, 10, 60000);
        if (*garp_interval_ms_ != *v) {
          vrrp_notes_.push_back("vrrp_garp_interval " + arg(c) +
                                ": tandem spaces GARPs by 10 ms "
                                "to 60 s");
        }
      }
    } else if (k == "vrrp_garp_master_refresh") {
      const auto v = parse_int(arg(c));
      if (!v || *v < 0) {
        error(c.line, "vrrp_garp_master_refresh must be a number of seconds");
      } else {
        garp_refresh_s_ = std::min<int64_t>(*v, 86400);
      }
    } else if (k == "notification_email" || k == "notification_email_from" || k == "smtp_server" ||
               k == "smtp_connect_timeout" || k == "smtp_helo_name") {
      skip(c, kMailWhy);
    } else {
      skip(c, "no tandem equivalent");
    }
  }
}

void Importer::vrrp_script(const Node& n) {
  if (n.args.empty()) {
    error(n.line, "vrrp_script needs a name");
    return;
  }
  Script s;
  s.name = name_of(n, "vrrp_script");
  s.line = n.line;
  for (const Node& c : n.children) {
    const std::string& k = c.key;
    if (k == "script") {
      s.command = joined_args(c);
    } else if (k == "interval" || k == "timeout") {
      const auto v = parse_seconds_ms(arg(c));
      if (!v) {
        error(c.line, k + " must be a number of seconds");
        continue;
      }
      (k == "interval" ? s.interval_ms : s.timeout_ms) = *v;
    } else if (k == "weight") {
      const auto v = parse_int(arg(c));
      if (!v) {
        error(c.line, "weight must be an integer");
        continue;
      }
      s.weight = std::clamp<int64_t>(*v, -254, 254);
      if (c.args.size() > 1) skip(c, "'reverse' has no tandem equivalent: invert the script");
    } else if (k == "rise" || k == "fall") {
      const auto v = parse_int(arg(c));
      if (!v || *v < 1) {
        error(c.line, k + " must be a positive integer");
        continue;
      }
      (k == "rise" ? s.rise : s.fall) = std::min<int64_t>(*v, 100);
      if (*v > 100) s.notes.push_back(k + " " + arg(c) + ": tandem allows at most 100");
    } else {
      skip(c, "no tandem equivalent");
    }
  }
  if (s.command.empty()) {
    error(n.line, "vrrp_script " + arg(n) + " has no script");
    return;
  }
  if (s.interval_ms) {
    const int64_t v = std::clamp<int64_t>(*s.interval_ms, 100, 3600000);
    if (v != *s.interval_ms) s.notes.push_back("keepalived interval: tandem allows 0.1 s to 1 h");
    s.interval_ms = v;
  }
  const int64_t interval = s.interval_ms.value_or(1000);
  if (s.timeout_ms) {
    int64_t v = std::clamp<int64_t>(*s.timeout_ms, 10, 3600000);
    if (v >= interval) {
      v = interval - 10;
      s.notes.push_back("keepalived timeout is not less than the interval; tandem needs it to be");
    }
    s.timeout_ms = v;
  } else {
    s.notes.push_back(
        "keepalived: no timeout. tandem's default: 1 s, or half the interval when that is 1 s "
        "or less");
  }
  scripts_.push_back(std::move(s));
}

void Importer::instance_vips(const Node& block, Instance& in) {
  for (const Node& v : block.children) {
    const std::string& text = v.key;
    if (text.find(':') != std::string::npos) {
      skip(v, "IPv6: tandem's VRRP is IPv4 only");
      continue;
    }
    std::string why;
    const auto p = parse_host_prefix(text, why);
    if (!p) {
      skip(v, why);
      continue;
    }
    if (in.vips.size() == kMaxVips) {
      skip(v, "more than 32 virtual addresses in one instance");
      continue;
    }
    const auto [it, fresh] = vip_owner_.emplace(p->addr, in.name);
    if (!fresh) {
      skip(v, "already in vrrp_instance " + it->second + " (a tandem VIP belongs to one instance)");
      continue;
    }
    in.vips.push_back(*p);
    // "dev X", "label Y", "brd", "scope": the address lives on the instance's port in tandem.
    for (size_t i = 0; i < v.args.size(); ++i) {
      const std::string& opt = v.args[i];
      if (opt == "dev" && i + 1 < v.args.size()) {
        if (v.args[i + 1] != in.interface && !in.interface.empty()) {
          skip(v, "dev " + v.args[i + 1] + ": tandem announces every virtual IP on the port of " +
                      "its instance (" + in.interface + ")");
        }
        ++i;
      } else {
        std::string rest;
        for (size_t j = i; j < v.args.size(); ++j) rest += (j == i ? "" : " ") + v.args[j];
        skip(v, "'" + rest + "' not translated (tandem keeps only the address and prefix length)");
        break;
      }
    }
  }
}

void Importer::vrrp_instance(const Node& n) {
  if (n.args.empty()) {
    error(n.line, "vrrp_instance needs a name");
    return;
  }
  Instance in;
  in.name = name_of(n, "vrrp_instance");
  in.line = n.line;
  in.version = global_version_.value_or(2);
  InstanceNodes parts;
  for (const Node& c : n.children) instance_setting(c, in, parts);

  if (in.interface.empty()) {
    error(n.line, "vrrp_instance " + arg(n) + " has no interface");
    return;
  }
  if (!parts.has_vrid) {
    error(n.line, "vrrp_instance " + arg(n) + " has no valid virtual_router_id");
    return;
  }
  if (std::any_of(instances_.begin(), instances_.end(),
                  [&](const Instance& o) { return o.name == in.name; })) {
    error(n.line, "vrrp_instance " + arg(n) + " is defined twice");
    return;
  }
  if (!vrids_.emplace(in.interface, in.vrid).second) {
    error(n.line, "vrrp_instance " + arg(n) + ": virtual_router_id " + std::to_string(in.vrid) +
                      " is already used on interface " + in.interface);
    return;
  }
  for (const Node* blk : parts.vips) instance_vips(*blk, in);
  if (in.vips.empty()) {
    skip(n.line, "vrrp_instance " + arg(n),
         "no IPv4 virtual address tandem can use (an instance needs 1..32): instance left out");
    return;
  }

  if (!in.state.empty()) {
    in.notes.push_back("keepalived: state " + in.state +
                       ". A hint only, not translated: the election decides who is master (the "
                       "highest priority; on a tie, the highest primary address).");
  }

  // Adverts: v3 counts centiseconds (10 ms .. 40.95 s), v2 whole seconds (1 .. 255 s).
  if (parts.advert != nullptr) {
    const std::string text = arg(*parts.advert);
    const auto v = parse_seconds_ms(text);
    if (!v) {
      error(parts.advert->line, "advert_int must be a number of seconds");
    } else {
      const int64_t step = in.version == 3 ? 10 : 1000;
      const int64_t rounded = std::clamp<int64_t>((*v + step / 2) / step * step, step,
                                                  in.version == 3 ? 40950 : 255000);
      if (rounded != *v) {
        in.notes.push_back("keepalived: advert_int " + text + " (VRRPv" +
                           std::to_string(in.version) + " adverts carry " +
                           (in.version == 3 ? "centiseconds" : "whole seconds") + ")");
      }
      in.advert_ms = rounded;
    }
  }

  if (parts.nopreempt != nullptr) {
    if (in.priority == 255) {
      skip(*parts.nopreempt,
           "ignored: with priority 255 the address owner always preempts (RFC 5798)");
    } else {
      in.preempt = false;
    }
  }

  if (parts.auth != nullptr) instance_auth(*parts.auth, in);
  port(in.interface);
  if (parts.src_ip != nullptr) instance_source(*parts.src_ip, in);
  for (const Node* blk : parts.peers) {
    for (const Node& peer : blk->children) {
      const auto a = parse_ipv4(peer.key);
      std::string why;
      if (!a || !parse_host_prefix(peer.key, why)) {
        skip(peer, "unicast_peer: not a unicast IPv4 address");
        continue;
      }
      if (!peer.args.empty()) skip(peer, "unicast_peer options are not translated");
      const auto& own = port(in.interface).addresses;
      if (std::any_of(own.begin(), own.end(), [&](const Prefix& x) { return x.addr == *a; }) ||
          std::find(in.peers.begin(), in.peers.end(), *a) != in.peers.end()) {
        continue;
      }
      in.peers.push_back(*a);
    }
  }
  for (const Node* blk : parts.track_ifs) instance_track_interfaces(*blk, in);
  for (const Node* blk : parts.track_scripts) instance_track_scripts(*blk, in);
  instances_.push_back(std::move(in));
}

// One statement of a vrrp_instance block: simple values go to `in`, blocks that need the whole
// instance (its version, its interface) are kept in `parts` for later.
void Importer::instance_setting(const Node& c, Instance& in, InstanceNodes& parts) {
  const std::string& k = c.key;
  if (k == "state") {
    in.state = arg(c);
  } else if (k == "interface") {
    in.interface = arg(c);
  } else if (k == "virtual_router_id") {
    const auto v = parse_int(arg(c));
    if (!v || *v < 1 || *v > 255) {
      error(c.line, "virtual_router_id must be 1..255");
    } else {
      in.vrid = *v;
      parts.has_vrid = true;
    }
  } else if (k == "priority") {
    const auto v = parse_int(arg(c));
    if (!v || *v < 1 || *v > 255) {
      error(c.line, "priority must be 1..255");
    } else {
      in.priority = *v;
    }
  } else if (k == "advert_int") {
    parts.advert = &c;
  } else if (k == "nopreempt") {
    parts.nopreempt = &c;
  } else if (k == "preempt_delay") {
    const auto v = parse_seconds_ms(arg(c));
    if (!v) {
      error(c.line, "preempt_delay must be a number of seconds");
    } else {
      in.preempt_delay_ms = std::min<int64_t>(*v, 3600000);
    }
  } else if (k == "authentication") {
    parts.auth = &c;
  } else if (k == "virtual_ipaddress") {
    parts.vips.push_back(&c);
  } else if (k == "track_script") {
    parts.track_scripts.push_back(&c);
  } else if (k == "track_interface") {
    parts.track_ifs.push_back(&c);
  } else if (k == "unicast_src_ip" || k == "mcast_src_ip") {
    parts.src_ip = &c;
  } else if (k == "unicast_peer") {
    parts.peers.push_back(&c);
  } else if (k == "notify") {
    const std::string cmd = joined_args(c);
    if (cmd.empty() || cmd[0] != '/') {
      skip(c, "tandem needs an absolute path");
    } else {
      in.notify = cmd;
    }
  } else if (k == "notify_master" || k == "notify_backup" || k == "notify_fault" ||
             k == "notify_stop" || k == "notify_master_rx_lower_pri") {
    skip(c, kPerStateWhy);
  } else if (k == "vrrp_version") {
    const auto v = parse_int(arg(c));
    if (!v || (*v != 2 && *v != 3)) {
      error(c.line, "vrrp_version must be 2 or 3");
    } else {
      in.version = *v;
    }
  } else if (k == "use_vmac") {
    in.virtual_mac = true;
    if (!c.args.empty()) {
      skip(c, "the interface name: tandem answers with the virtual MAC on the port itself");
    }
  } else if (k == "notify_email" || k == "smtp_alert" || k == "smtp_server" ||
             k == "smtp_connect_timeout" || k == "notification_email") {
    skip(c, kMailWhy);
  } else if (k == "router_id") {
    skip(c, "router_id belongs in global_defs (where it becomes tandem's node name)");
  } else if (k == "virtual_ipaddress_excluded") {
    skip(c, "no tandem equivalent: every virtual IP is in the adverts (at most 32)");
  } else {
    skip(c, "no tandem equivalent");
  }
}

// authentication { auth_type PASS; auth_pass X }: VRRPv2 only, 8 characters at most.
void Importer::instance_auth(const Node& auth, Instance& in) {
  std::string type;
  std::string pass;
  for (const Node& a : auth.children) {
    if (a.key == "auth_type") {
      type = arg(a);
    } else if (a.key == "auth_pass") {
      pass = arg(a);
    } else {
      skip(a, "no tandem equivalent");
    }
  }
  if (in.version == 3) {
    skip(auth, "VRRPv3 has no authentication (keepalived ignores it too)");
  } else if (type != "PASS") {
    skip(auth, "auth_type " + type + ": tandem supports PASS only");
  } else {
    if (pass.size() > 8) {
      in.notes.push_back(
          "keepalived: auth_pass is cut to its first 8 characters, as keepalived "
          "does");
      pass.resize(8);
    }
    in.auth_pass = pass;
  }
}

// unicast_src_ip / mcast_src_ip: this node's address on the port, with the prefix length of a
// virtual IP in the same subnet, else /32 and a TODO.
void Importer::instance_source(const Node& c, const Instance& in) {
  const std::string text = arg(c);
  const auto a = parse_ipv4(text);
  std::string why;
  if (!a || !parse_host_prefix(text, why)) {
    skip(c, "not a unicast IPv4 address");
    return;
  }
  if (vip_owner_.count(*a) != 0) {
    skip(c, "also a virtual IP: set this node's own address on port " + as_name(in.interface));
    return;
  }
  Prefix pf{*a, 32};
  for (const Prefix& v : in.vips) {
    if (v.len < 31 && v.contains(*a)) {
      pf.len = v.len;
      break;
    }
  }
  Port& p = port(in.interface);
  if (std::any_of(p.addresses.begin(), p.addresses.end(),
                  [&](const Prefix& x) { return x.addr == pf.addr; })) {
    return;
  }
  p.addresses.push_back(pf);
  p.notes.push_back(format_ipv4(*a) + ": keepalived's " + c.key + " of " + in.name +
                    (pf.len == 32 ? "; TODO: set its prefix length" : ""));
}

// track_interface { IF [weight W] }: a port each (weight 0: FAULT while the link is down).
void Importer::instance_track_interfaces(const Node& blk, Instance& in) {
  for (const Node& t : blk.children) {
    TrackPort tp;
    tp.port = t.key;
    if (arg(t) == "weight") {
      const auto w = parse_int(arg(t, 1));
      if (!w) {
        error(t.line, "track_interface " + t.key + ": weight must be an integer");
        continue;
      }
      tp.weight = std::clamp<int64_t>(*w, -254, 254);
      tp.has_weight = true;
    } else if (!t.args.empty()) {
      skip(t, "track_interface options other than weight are not translated");
    }
    if (std::any_of(in.track_ports.begin(), in.track_ports.end(),
                    [&](const TrackPort& o) { return o.port == tp.port; })) {
      continue;
    }
    port(tp.port);
    in.track_ports.push_back(tp);
  }
}

// track_script { NAME [weight W] }: only scripts defined (and translated) in this file.
void Importer::instance_track_scripts(const Node& blk, Instance& in) {
  for (const Node& t : blk.children) {
    const std::string name = as_name(t.key);
    if (std::none_of(scripts_.begin(), scripts_.end(),
                     [&](const Script& s) { return s.name == name; })) {
      skip(t, "track_script: no usable vrrp_script " + t.key + " in this file");
      continue;
    }
    TrackScript ts{name, std::nullopt};
    if (arg(t) == "weight") {
      const auto w = parse_int(arg(t, 1));
      if (!w) {
        error(t.line, "track_script " + t.key + ": weight must be an integer");
        continue;
      }
      ts.weight = std::clamp<int64_t>(*w, -254, 254);
      if (t.args.size() > 2) skip(t, "'reverse' has no tandem equivalent: invert the script");
    } else if (!t.args.empty()) {
      skip(t, "track_script options other than weight are not translated");
    }
    if (std::any_of(in.track_scripts.begin(), in.track_scripts.end(),
                    [&](const TrackScript& o) { return o.script == ts.script; })) {
      continue;
    }
    in.track_scripts.push_back(ts);
  }
}

void Importer::vrrp_sync_group(const Node& n) {
  if (n.args.empty()) {
    error(n.line, "vrrp_sync_group needs a name");
    return;
  }
  SyncGroup g;
  g.name = name_of(n, "vrrp_sync_group");
  g.line = n.line;
  for (const Node& c : n.children) {
    const std::string& k = c.key;
    if (k == "group") {
      for (const Node& m : c.children) {
        std::vector<std::string> names{m.key};
        names.insert(names.end(), m.args.begin(), m.args.end());
        for (const std::string& raw : names) {
          const std::string name = as_name(raw);
          if (std::none_of(instances_.begin(), instances_.end(),
                           [&](const Instance& i) { return i.name == name; })) {
            skip(m.line, "vrrp_sync_group " + arg(n) + " member " + raw,
                 "no translated vrrp_instance of that name");
            continue;
          }
          const auto [it, fresh] = grouped_.emplace(name, g.name);
          if (!fresh) {
            skip(m.line, "vrrp_sync_group " + arg(n) + " member " + raw,
                 "already in vrrp_sync_group " + it->second);
            continue;
          }
          g.instances.push_back(name);
        }
      }
    } else if (k == "notify") {
      const std::string cmd = joined_args(c);
      if (cmd.empty() || cmd[0] != '/') {
        skip(c, "tandem needs an absolute path");
      } else {
        g.notify = cmd;
      }
    } else if (k == "notify_master" || k == "notify_backup" || k == "notify_fault" ||
               k == "notify_stop") {
      skip(c, kPerStateWhy);
    } else if (k == "smtp_alert") {
      skip(c, kMailWhy);
    } else if (k == "track_script" || k == "track_interface") {
      skip(c, "tandem tracks per instance: add it to each member instance");
    } else {
      skip(c, "no tandem equivalent");
    }
  }
  if (g.instances.empty()) {
    skip(n.line, "vrrp_sync_group " + arg(n), "no translated member instance: group left out");
    return;
  }
  groups_.push_back(std::move(g));
}

// keepalived fails over an instance in no vrrp_sync_group on its own; tandem puts all such
// instances in one implicit group. A group of one per ungrouped instance keeps keepalived's
// behaviour (with one ungrouped instance, there is nothing to keep apart).
void Importer::keep_ungrouped_apart() {
  std::vector<const Instance*> alone;
  for (const Instance& in : instances_) {
    if (grouped_.count(in.name) == 0) alone.push_back(&in);
  }
  if (alone.size() < 2) return;
  for (const Instance* in : alone) {
    std::string name = in->name + "_alone";
    while (std::any_of(groups_.begin(), groups_.end(),
                       [&](const SyncGroup& g) { return g.name == name; })) {
      name += "_";
    }
    SyncGroup g;
    g.name = name;
    g.instances = {in->name};
    g.notes.push_back("keepalived: " + in->name +
                      " is in no vrrp_sync_group, so it fails over on its own. tandem moves "
                      "ungrouped instances together; this group of one keeps them apart (remove "
                      "these groups to fail over together).");
    groups_.push_back(std::move(g));
  }
}

// ---------------------------------------------------------------------------------------------
// Load balancer: virtual_server -> lb.services

bool Importer::ours(uint32_t ip) const {
  if (vip_owner_.count(ip) != 0) return true;
  return std::any_of(ports_.begin(), ports_.end(), [&](const Port& p) {
    return std::any_of(p.addresses.begin(), p.addresses.end(),
                       [&](const Prefix& a) { return a.addr == ip; });
  });
}

// What tandem needs of a real server: on a prefix of one of the ports' addresses (the import
// writes no routes).
bool Importer::connected(uint32_t ip) const {
  return std::any_of(ports_.begin(), ports_.end(), [&](const Port& p) {
    return std::any_of(p.addresses.begin(), p.addresses.end(),
                       [&](const Prefix& a) { return a.len < 32 && a.contains(ip); });
  });
}

// delay_loop, connect_timeout, retry / nb_get_retry, delay_before_retry and virtualhost, at any
// level. False: `c` is none of them.
bool Importer::check_setting(const Node& c, CheckDefaults& d) {
  const std::string& k = c.key;
  if (k == "delay_loop" || k == "connect_timeout" || k == "delay_before_retry") {
    const auto v = parse_seconds_ms(arg(c));
    if (!v) {
      error(c.line, k + " must be a number of seconds");
    } else {
      (k == "delay_loop"        ? d.interval_ms
       : k == "connect_timeout" ? d.timeout_ms
                                : d.retry_delay_ms) = *v;
    }
  } else if (k == "retry" || k == "nb_get_retry") {
    const auto v = parse_int(arg(c));
    if (!v || *v < 0) {
      error(c.line, k + " must be a count");
    } else {
      d.retries = *v;
    }
  } else if (k == "virtualhost") {
    if (arg(c).empty() || arg(c).find_first_of(" \t\r\n") != std::string::npos) {
      skip(c, "not a host name tandem can send");
    } else {
      d.host = arg(c);
    }
  } else {
    return false;
  }
  return true;
}

// TCP_CHECK, HTTP_GET or SSL_GET { ... } as tandem's check (SSL_GET as a TCP connect).
std::optional<Check> Importer::checker(const Node& c, CheckDefaults d) {
  Check ck;
  ck.checker = c.key;
  ck.line = c.line;
  ck.type = c.key == "HTTP_GET" ? "http" : "tcp";
  if (c.key == "SSL_GET") {
    skip(c, "tandem's checks speak no TLS: translated as a TCP connect check");
  }
  std::vector<const Node*> urls;
  for (const Node& s : c.children) {
    if (check_setting(s, d)) continue;
    if (s.key == "connect_port") {
      const auto v = parse_int(arg(s));
      if (!v || *v < 1 || *v > 65535) {
        error(s.line, "connect_port must be 1..65535");
      } else {
        ck.port = *v;
      }
    } else if (s.key == "url" && c.key != "TCP_CHECK") {
      if (c.key == "HTTP_GET" && !urls.empty()) {
        skip(s, "tandem checks one URL: the first one is used");
      } else {
        urls.push_back(&s);
      }
    } else if (s.key == "connect_ip" || s.key == "bindto" || s.key == "bind_port") {
      skip(s, "tandem connects from the port's address to the real server's");
    } else {
      skip(s, "no tandem equivalent");
    }
  }
  if (ck.type == "http") {
    bool has_status = false;
    if (urls.empty()) ck.notes.push_back("keepalived: HTTP_GET without url: tandem gets /");
    for (const Node* url : urls) {
      for (const Node& u : url->children) {
        if (u.key == "path") {
          const std::string p = joined_args(u);
          if (p.empty() || p[0] != '/' || p.find_first_of(" \t\r\n") != std::string::npos) {
            skip(u, "tandem needs a path that starts with / and has no spaces: / is used");
          } else {
            ck.path = p;
          }
        } else if (u.key == "status_code") {
          const auto v = parse_int(arg(u));
          if (!v || *v < 100 || *v > 599 || u.args.size() != 1) {
            skip(u, "tandem expects one status code, 100..599: 200 is used");
          } else {
            ck.status = *v;
            has_status = true;
          }
        } else if (u.key == "digest") {
          skip(u, "tandem checks the status code, not a digest of the page");
        } else {
          skip(u, "no tandem equivalent");
        }
      }
    }
    if (!has_status) {
      ck.notes.push_back("keepalived: no status_code (any 2xx passed); tandem expects 200");
    }
    if (d.host) ck.host = *d.host;
  }
  // keepalived's defaults: delay_loop 60 s, connect_timeout 5 s.
  ck.interval_ms = std::clamp<int64_t>(d.interval_ms.value_or(60000), 20, 3600000);
  if (!d.interval_ms) ck.notes.push_back("keepalived: no delay_loop, its default is 60 s");
  if (ck.interval_ms != d.interval_ms.value_or(60000)) {
    ck.notes.push_back("keepalived: delay_loop: tandem allows 20 ms to 1 h");
  }
  ck.timeout_ms = std::clamp<int64_t>(d.timeout_ms.value_or(5000), 10, 600000);
  if (!d.timeout_ms) ck.notes.push_back("keepalived: no connect_timeout, its default is 5 s");
  if (ck.timeout_ms >= ck.interval_ms) {
    ck.timeout_ms = ck.interval_ms / 2;
    ck.notes.push_back(
        "keepalived: connect_timeout is not less than delay_loop; tandem needs it to be (half "
        "the interval is used)");
  }
  if (d.retries) {
    ck.retries = std::min<int64_t>(*d.retries, 100);
    if (*d.retries > 100) ck.notes.push_back("keepalived: retry: tandem allows at most 100");
  }
  if (d.retry_delay_ms) ck.retry_delay_ms = std::min<int64_t>(*d.retry_delay_ms, 600000);
  return ck;
}

void Importer::real_server(const Node& n, Service& svc, CheckDefaults d) {
  Real r;
  r.what = "real_server " + joined_args(n);
  r.line = n.line;
  if (arg(n).find(':') != std::string::npos) {
    skip(n.line, r.what, "IPv6: tandem's load balancer is IPv4 only");
    return;
  }
  std::string why;
  const auto a = parse_host_prefix(arg(n), why);
  if (!a || arg(n).find('/') != std::string::npos || n.args.size() > 2) {
    error(n.line, "real_server needs an IPv4 address and a port");
    return;
  }
  r.ip = a->addr;
  if (n.args.size() == 2) {
    const auto p = parse_int(arg(n, 1));
    if (!p || *p < 0 || *p > 65535) {
      error(n.line, "real_server port must be 0..65535");
      return;
    }
    r.port = *p;
  }
  if (ours(r.ip)) {
    skip(n.line, r.what, "one of this node's own addresses: real server left out");
    return;
  }
  std::vector<const Node*> checkers;
  for (const Node& c : n.children) {
    const std::string& k = c.key;
    if (check_setting(c, d)) continue;
    if (k == "weight") {
      const auto w = parse_int(arg(c));
      if (!w || *w < 0) {
        error(c.line, "weight must be a non-negative integer");
      } else {
        r.weight = std::min<int64_t>(*w, 65535);
        if (*w > 65535) r.notes.push_back("weight " + arg(c) + ": at most 65535");
      }
    } else if (k == "lb_kind" || k == "lvs_method") {
      std::string m = arg(c);
      std::transform(m.begin(), m.end(), m.begin(), [](char ch) { return char(ch | 0x20); });
      if (m == "nat" || m == "dr" || m == "tun") {
        r.mode = m;
      } else {
        skip(c, "tandem forwards by nat, dr or tun: the service's mode is used");
      }
    } else if (k == "inhibit_on_failure") {
      r.notes.push_back(
          "keepalived inhibit_on_failure: tandem always does this (a failed real server gets no "
          "new connections, its connections stay)");
    } else if (k == "TCP_CHECK" || k == "HTTP_GET" || k == "SSL_GET") {
      checkers.push_back(&c);
    } else if (k == "MISC_CHECK") {
      skip(c, "tandem runs no script checks (TCP connect or HTTP GET only)");
    } else if (k == "SMTP_CHECK" || k == "DNS_CHECK" || k == "UDP_CHECK" || k == "PING_CHECK" ||
               k == "BFD_CHECK" || k == "FILE_CHECK") {
      skip(c, "tandem checks with a TCP connect or an HTTP GET only");
    } else if (k == "notify_up" || k == "notify_down") {
      skip(c, "tandem runs no script when a real server changes state");
    } else if (k == "uthreshold" || k == "lthreshold") {
      skip(c, "tandem has no connection thresholds");
    } else {
      skip(c, "no tandem equivalent");
    }
  }
  for (size_t i = 0; i < checkers.size(); ++i) {
    if (i == 0) {
      r.check = checker(*checkers[0], d);
    } else {
      skip(*checkers[i], "tandem runs one check per service: the first one is used");
    }
  }
  // The port: all-port services (0) take 0; dr and tun cannot change it.
  const std::string mode = r.mode.empty() ? svc.mode : r.mode;
  if (svc.port == 0 && r.port.value_or(0) != 0) {
    r.notes.push_back("keepalived port " + std::to_string(*r.port) +
                      ": the real servers of an all-port service take port 0");
    r.port = 0;
  } else if (mode != "nat" && r.port && *r.port != svc.port) {
    r.notes.push_back("keepalived port " + std::to_string(*r.port) + ": " + mode +
                      " cannot change the destination port, the service's is used");
    r.port.reset();
  }
  const int64_t port = r.port.value_or(svc.port);
  for (const Real& o : svc.reals) {
    if (o.ip == r.ip && o.port.value_or(svc.port) == port) {
      skip(n.line, r.what, "already listed on line " + std::to_string(o.line));
      return;
    }
  }
  if (!connected(r.ip)) {
    r.live = false;
    skip(n.line, r.what,
         "not on a connected prefix of any port: commented out. Add this node's address on its "
         "network to a port's addresses (or a route in routing.routes), then uncomment it");
  }
  svc.reals.push_back(std::move(r));
}

// tandem runs one check per service: the first real server's, and says where the others differ.
void Importer::pick_check(Service& svc) {
  const Real* first = nullptr;
  for (const Real& r : svc.reals) {
    if (r.check) {
      first = &r;
      break;
    }
  }
  if (first == nullptr) return;
  svc.check = *first->check;
  const std::string used = first->check->checker + " of " + first->what + " (line " +
                           std::to_string(first->check->line) + ")";
  for (const Real& r : svc.reals) {
    if (&r == first) continue;
    if (!r.check) {
      skip(r.line, r.what,
           "no checker (always up in keepalived); tandem checks it with the service's check, the " +
               used);
    } else if (!r.check->same(*svc.check)) {
      skip(r.check->line, r.check->checker + " of " + r.what,
           "differs from the service's check, the " + used + ": tandem runs one check per service");
    }
  }
}

void Importer::virtual_server(const Node& n) {
  Service svc;
  svc.what = "virtual_server " + joined_args(n);
  svc.line = n.line;
  if (arg(n) == "group") {
    skip(n.line, svc.what,
         "tandem has no virtual_server_group: write one virtual_server per address");
    return;
  }
  if (arg(n) == "fwmark") {
    skip(n.line, svc.what,
         "tandem does not classify by firewall mark: write one virtual_server per address and "
         "port (port 0: every port)");
    return;
  }
  if (arg(n).find(':') != std::string::npos) {
    skip(n.line, svc.what, "IPv6: tandem's load balancer is IPv4 only");
    return;
  }
  std::string why;
  const auto vip = parse_host_prefix(arg(n), why);
  const auto port = parse_int(arg(n, 1));
  if (!vip || arg(n).find('/') != std::string::npos || n.args.size() != 2 || !port || *port < 0 ||
      *port > 65535) {
    error(n.line, "virtual_server needs an IPv4 address and a port (0..65535)");
    return;
  }
  svc.vip = vip->addr;
  svc.port = *port;

  CheckDefaults defaults;
  std::vector<const Node*> reals;
  bool sctp = false;
  for (const Node& c : n.children) {
    const std::string& k = c.key;
    if (check_setting(c, defaults)) continue;
    if (k == "lb_algo" || k == "lvs_sched") {
      static const std::set<std::string> kScheds{"rr", "wrr", "lc", "wlc", "sh", "mh"};
      if (kScheds.count(arg(c)) != 0) {
        svc.sched = arg(c);
      } else {
        skip(c, "tandem schedules with rr, wrr, lc, wlc, sh or mh: wlc is used");
        svc.notes.push_back("keepalived: " + k + " " + arg(c) + ", not in tandem: wlc instead");
      }
    } else if (k == "lb_kind" || k == "lvs_method") {
      std::string m = arg(c);
      std::transform(m.begin(), m.end(), m.begin(), [](char ch) { return char(ch | 0x20); });
      if (m == "nat" || m == "dr" || m == "tun") {
        svc.mode = m;
      } else {
        skip(c, "tandem forwards by nat, dr or tun: nat is used");
      }
    } else if (k == "protocol") {
      if (arg(c) == "TCP" || arg(c) == "tcp") {
        svc.proto = "tcp";
      } else if (arg(c) == "UDP" || arg(c) == "udp") {
        svc.proto = "udp";
      } else {
        sctp = true;
        skip(c, "tandem balances TCP and UDP only: service left out");
      }
    } else if (k == "persistence_timeout") {
      const auto v = parse_int(arg(c));
      if (!v || *v < 0) {
        error(c.line, "persistence_timeout must be a number of seconds");
      } else {
        svc.persistence_s = std::min<int64_t>(*v, 31536000);
      }
    } else if (k == "persistence_granularity") {
      const auto m = parse_ipv4(arg(c));
      if (!m || (~*m & (~*m + 1)) != 0) {
        skip(c, "not an IPv4 netmask (e.g. 255.255.255.0)");
      } else {
        svc.netmask = arg(c);
      }
    } else if (k == "real_server") {
      reals.push_back(&c);
    } else if (k == "sorry_server" || k == "sorry_server_inhibit" ||
               k == "sorry_server_lvs_method") {
      skip(c, "tandem has no sorry server");
    } else if (k == "quorum" || k == "quorum_up" || k == "quorum_down" || k == "hysteresis") {
      skip(c, "tandem has no quorum");
    } else if (k == "alpha" || k == "omega" || k == "ha_suspend") {
      skip(c, "no tandem equivalent");
    } else if (k == "ops" || k == "one_packet_scheduling") {
      skip(c, "tandem schedules per connection (UDP: per flow)");
    } else if (k == "smtp_alert") {
      skip(c, kMailWhy);
    } else {
      skip(c, "no tandem equivalent");
    }
  }
  if (sctp) return;
  for (const Service& o : services_) {
    if (o.proto == svc.proto && o.vip == svc.vip && o.port == svc.port) {
      skip(n.line, svc.what, "already defined on line " + std::to_string(o.line));
      return;
    }
  }
  for (const Node* r : reals) real_server(*r, svc, defaults);
  pick_check(svc);
  if (!ours(svc.vip)) {
    svc.live = false;
    skip(n.line, svc.what,
         format_ipv4(svc.vip) +
             " is not an address of this node (no translated virtual_ipaddress): commented out. "
             "Add it to a vrrp instance's virtual_ips or a port's addresses, then uncomment it");
  }
  services_.push_back(std::move(svc));
}

void Importer::other(const Node& n) {
  const std::string& k = n.key;
  if (k == "virtual_server") {
    virtual_server(n);
  } else if (k == "virtual_server_group") {
    skip(n.line, k + " " + joined_args(n),
         "tandem has no virtual_server_group: write one virtual_server per address");
  } else if (k == "include") {
    skip(n, "included files are not read: import each one, or concatenate them first");
  } else if (!k.empty() && (k[0] == '@' || k[0] == '$')) {
    skip(n, "keepalived conditional configuration and definitions are not translated");
  } else if (k == "vrrp_instance" || k == "vrrp_script" || k == "global_defs" ||
             k == "vrrp_sync_group") {
    // Handled in their own pass.
  } else {
    skip(n, "no tandem equivalent");
  }
}

ImportResult Importer::run(const std::string& text) {
  std::vector<Problem> syntax;
  const std::vector<Token> tokens = lex(text, syntax);
  TreeParser parser(tokens, syntax);
  const std::vector<Node> top = parser.block(0, 0);
  for (auto& e : syntax) errors_.push_back(e);

  // Scripts before instances (track_script), instances before sync groups (members), whatever
  // the order in the file.
  for (const Node& n : top) {
    if (n.key == "global_defs") global_defs(n);
    if (n.key == "vrrp_script") vrrp_script(n);
  }
  for (const Node& n : top) {
    if (n.key == "vrrp_instance") vrrp_instance(n);
  }
  for (const Node& n : top) {
    if (n.key == "vrrp_sync_group") {
      vrrp_sync_group(n);
    } else {
      other(n);
    }
  }

  keep_ungrouped_apart();

  auto by_line = [](const Problem& a, const Problem& b) { return a.line < b.line; };
  std::stable_sort(untranslated_.begin(), untranslated_.end(), by_line);
  std::stable_sort(errors_.begin(), errors_.end(), by_line);
  ImportResult r;
  for (const auto& u : untranslated_) r.untranslated.push_back(where(u.line) + ": " + u.text);
  for (const auto& e : errors_) r.errors.push_back(where(e.line) + ": " + e.text);
  r.config = render();
  for (const auto& u : r.untranslated) r.config += "#   " + u + "\n";
  if (!r.errors.empty()) {
    r.config += "#\n# Errors (these parts of " + file_ + " were left out):\n";
    for (const auto& e : r.errors) r.config += "#   " + e + "\n";
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Output

// Each note as comment lines of at most 100 columns (a longer word gets a line of its own).
void comment_lines(std::string& out, const std::string& indent,
                   const std::vector<std::string>& notes) {
  constexpr size_t kWidth = 100;
  for (const auto& note : notes) {
    std::string line = indent + "#";
    size_t at = 0;
    while (at < note.size()) {
      const size_t end = std::min(note.find(' ', at), note.size());
      const std::string word = note.substr(at, end - at);
      if (line.size() + 1 + word.size() > kWidth && line.size() > indent.size() + 1) {
        out += line + "\n";
        line = indent + "#";
      }
      line += " " + word;
      at = end + 1;
    }
    out += line + "\n";
  }
}

// `text` as comment lines, each "#" put after the line's indentation: a block the operator
// uncomments once the TODO above it is done.
std::string commented(const std::string& text) {
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find('\n', at), text.size());
    const std::string line = text.substr(at, end - at);
    const size_t body = line.find_first_not_of(' ');
    out += body == std::string::npos ? line : line.substr(0, body) + "# " + line.substr(body);
    out += "\n";
    at = end + 1;
  }
  return out;
}

std::string render_check(const Check& ck) {
  const std::string in = "        ";
  std::string o = "      check = {\n";
  comment_lines(o, in, ck.notes);
  o += in + "type = " + str(ck.type) + ";  # keepalived " + ck.checker + " (line " +
       std::to_string(ck.line) + ")\n";
  if (ck.port) o += in + "port = " + std::to_string(*ck.port) + ";  # connect_port\n";
  if (ck.type == "http") {
    o += in + "path = " + str(ck.path) + ";\n";
    o += in + "status = " + std::to_string(ck.status) + ";\n";
    if (!ck.host.empty()) o += in + "host = " + str(ck.host) + ";  # virtualhost\n";
  }
  o += in + "interval_ms = " + std::to_string(ck.interval_ms) + ";  # delay_loop\n";
  o += in + "timeout_ms = " + std::to_string(ck.timeout_ms) + ";  # connect_timeout\n";
  if (ck.retries) o += in + "retries = " + std::to_string(*ck.retries) + ";  # retry\n";
  if (ck.retry_delay_ms) {
    o +=
        in + "retry_delay_ms = " + std::to_string(*ck.retry_delay_ms) + ";  # delay_before_retry\n";
  }
  return o + "      };\n";
}

std::string render_real(const Real& r, const Service& svc, bool comma) {
  std::string o;
  comment_lines(o, "        ", r.notes);
  std::string entry = "        { address = " + str(format_ipv4(r.ip)) + ";";
  if (r.port) entry += " port = " + std::to_string(*r.port) + ";";
  entry += " weight = " + std::to_string(r.weight) + ";";
  if (!r.mode.empty() && r.mode != svc.mode) entry += " mode = " + str(r.mode) + ";";
  entry += std::string(" }") + (comma ? "," : "") + "  # keepalived " + r.what + " (line " +
           std::to_string(r.line) + ")\n";
  if (r.live) return o + entry;
  o += "        # TODO: " + format_ipv4(r.ip) +
       " is on no connected prefix of a port: add this node's address on its network to a "
       "port, then uncomment\n";
  return o + commented(entry);
}

std::string render_service(const Service& s, bool comma) {
  std::string o = "    {\n";
  o += "      # keepalived " + s.what + " (line " + std::to_string(s.line) + ")\n";
  comment_lines(o, "      ", s.notes);
  o += "      protocol = " + str(s.proto) + ";\n";
  o += "      vip = " + str(format_ipv4(s.vip)) + ";\n";
  o += "      port = " + std::to_string(s.port) + ";\n";
  o += "      scheduler = " + str(s.sched) + ";  # lb_algo\n";
  o += "      mode = " + str(s.mode) + ";  # lb_kind\n";
  if (s.persistence_s) {
    o += "      persistence_s = " + std::to_string(*s.persistence_s) + ";  # persistence_timeout\n";
  }
  if (!s.netmask.empty()) {
    o += "      persistence_netmask = " + str(s.netmask) + ";  # persistence_granularity\n";
  }
  if (s.check) {
    o += render_check(*s.check);
  } else {
    o += "      # no check: keepalived had no TCP_CHECK or HTTP_GET (real servers always up)\n";
  }
  o += "      reals = (\n";
  for (size_t i = 0; i < s.reals.size(); ++i) {
    // A comma after a live entry followed by another live one: commented entries stay out of
    // the list's syntax.
    bool more = false;
    for (size_t j = i + 1; j < s.reals.size(); ++j) more = more || s.reals[j].live;
    o += render_real(s.reals[i], s, s.reals[i].live && more);
  }
  o += "      );\n";
  o += std::string("    }") + (comma ? "," : "") + "\n";
  if (s.live) return o;
  return "    # TODO: " + format_ipv4(s.vip) +
         " is not an address of this node: add it to a vrrp instance's virtual_ips or a port's "
         "addresses, then uncomment\n" +
         commented(o);
}

std::string Importer::render() const {
  std::string o;
  o += "# tandem configuration imported from " + file_ + " by `tandemctl import keepalived`.\n";
  o += "# Review every TODO and the list of untranslated settings at the end, then check it:\n";
  o += "#   tandemd --config FILE --check\n";
  o += "# keys: docs/configuration.md (vrrp, and the keepalived mapping table).\n\n";

  if (node_) {
    o += "node = " + str(*node_) + ";  # keepalived global_defs router_id (line " +
         std::to_string(node_line_) + ")\n\n";
  } else {
    o += "# node = \"tandem\";  # TODO: this node's name (keepalived global_defs router_id)\n\n";
  }

  o += "# TODO: one port per keepalived interface, named after it. tandem drives its NICs with\n";
  o += "# DPDK: replace each device with the NIC's PCI address (bound to vfio-pci), or keep the\n";
  o += "# af_packet vdev to run on the kernel interface, and list this node's addresses on each\n";
  o += "# port (VRRP adverts are sent from them). Renaming a port? Rename it in vrrp below too.\n";
  o += "ports = (\n";
  if (ports_.empty()) {
    o += "  {\n    name = \"port0\";  # TODO: no keepalived interface was translated\n";
    o += "    device = \"net_af_packet0,iface=eth0\";\n  }\n";
  }
  for (size_t i = 0; i < ports_.size(); ++i) {
    const Port& p = ports_[i];
    o += "  {\n";
    o += "    name = " + str(as_name(p.interface)) + ";  # keepalived interface " + p.interface +
         "\n";
    o += "    device = " + str("net_af_packet" + std::to_string(i) + ",iface=" + p.interface) +
         ";  # TODO: PCI address or vdev\n";
    if (p.addresses.empty()) {
      o += "    # addresses = [ \"A.B.C.D/LEN\" ];  # TODO: this node's address on " + p.interface +
           "\n";
    } else {
      comment_lines(o, "    ", p.notes);
      o += "    addresses = [ ";
      for (size_t a = 0; a < p.addresses.size(); ++a) {
        o += (a ? ", " : "") + str(p.addresses[a].str());
      }
      o += " ];\n";
    }
    o += std::string("  }") + (i + 1 < ports_.size() ? "," : "") + "\n";
  }
  o += ");\n\n";

  o += "vrrp = {\n";
  if (std::any_of(instances_.begin(), instances_.end(),
                  [](const Instance& i) { return i.version == 3; })) {
    o += "  # VRRPv3 checksum as keepalived computes it (with the IPv4 pseudo-header): keep it\n";
    o += "  # while keepalived peers remain. tandem accepts both variants.\n";
    o += "  checksum = \"keepalived\";\n";
  }
  comment_lines(o, "  ", vrrp_notes_);
  if (garp_count_) {
    o += "  garp_count = " + std::to_string(*garp_count_) + ";  # vrrp_garp_master_repeat\n";
  }
  if (garp_interval_ms_) {
    o += "  garp_interval_ms = " + std::to_string(*garp_interval_ms_) + ";  # vrrp_garp_interval\n";
  }
  if (garp_refresh_s_) {
    o += "  garp_refresh_s = " + std::to_string(*garp_refresh_s_) +
         ";  # vrrp_garp_master_refresh\n";
  }

  if (!scripts_.empty()) {
    o += "  scripts = (\n";
    for (size_t i = 0; i < scripts_.size(); ++i) {
      const Script& s = scripts_[i];
      o += "    {\n";
      o += "      # keepalived vrrp_script " + s.name + " (line " + std::to_string(s.line) + ")\n";
      comment_lines(o, "      ", s.notes);
      o += "      name = " + str(s.name) + ";\n";
      o += "      command = " + str(s.command) + ";\n";
      if (s.interval_ms) o += "      interval_ms = " + std::to_string(*s.interval_ms) + ";\n";
      if (s.timeout_ms) o += "      timeout_ms = " + std::to_string(*s.timeout_ms) + ";\n";
      if (s.weight) o += "      weight = " + std::to_string(*s.weight) + ";\n";
      if (s.rise) o += "      rise = " + std::to_string(*s.rise) + ";\n";
      if (s.fall) o += "      fall = " + std::to_string(*s.fall) + ";\n";
      o += std::string("    }") + (i + 1 < scripts_.size() ? "," : "") + "\n";
    }
    o += "  );\n";
  }

  if (!instances_.empty()) {
    o += "  instances = (\n";
    for (size_t i = 0; i < instances_.size(); ++i) {
      const Instance& in = instances_[i];
      o += "    {\n";
      o += "      # keepalived vrrp_instance " + in.name + " (line " + std::to_string(in.line) +
           ")\n";
      comment_lines(o, "      ", in.notes);
      o += "      name = " + str(in.name) + ";\n";
      o += "      port = " + str(as_name(in.interface)) + ";  # TODO: keepalived interface " +
           in.interface + ": map it to a tandem port\n";
      o += "      vrid = " + std::to_string(in.vrid) + ";\n";
      o += "      version = " + std::to_string(in.version) + ";" +
           (in.version == 2 ? "  # keepalived's default; 3 allows sub-second adverts" : "") + "\n";
      o += "      priority = " + std::to_string(in.priority) + ";\n";
      o += "      advert_interval_ms = " + std::to_string(in.advert_ms) + ";\n";
      o += std::string("      preempt = ") + (in.preempt ? "true" : "false") + ";" +
           (in.preempt ? "" : "  # keepalived nopreempt") + "\n";
      if (in.preempt_delay_ms) {
        o += "      preempt_delay_ms = " + std::to_string(*in.preempt_delay_ms) + ";\n";
      }
      o += "      virtual_ips = [ ";
      for (size_t a = 0; a < in.vips.size(); ++a) o += (a ? ", " : "") + str(in.vips[a].str());
      o += " ];\n";
      if (in.virtual_mac) o += "      virtual_mac = true;  # keepalived use_vmac\n";
      if (!in.auth_pass.empty()) o += "      auth_pass = " + str(in.auth_pass) + ";\n";
      if (!in.peers.empty()) {
        o += "      unicast_peers = [ ";
        for (size_t a = 0; a < in.peers.size(); ++a) {
          o += (a ? ", " : "") + str(format_ipv4(in.peers[a]));
        }
        o += " ];\n";
      }
      if (!in.track_ports.empty()) {
        o += "      track_ports = (  # keepalived track_interface\n";
        for (size_t t = 0; t < in.track_ports.size(); ++t) {
          const TrackPort& tp = in.track_ports[t];
          o += "        { port = " + str(as_name(tp.port)) +
               "; weight = " + std::to_string(tp.weight) + "; }" +
               (t + 1 < in.track_ports.size() ? "," : "") +
               (tp.has_weight ? "" : "  # weight 0: FAULT while the link is down") + "\n";
        }
        o += "      );\n";
      }
      if (!in.track_scripts.empty()) {
        o += "      track_scripts = (\n";
        for (size_t t = 0; t < in.track_scripts.size(); ++t) {
          const TrackScript& ts = in.track_scripts[t];
          o += "        { script = " + str(ts.script) + ";" +
               (ts.weight ? " weight = " + std::to_string(*ts.weight) + ";" : "") + " }" +
               (t + 1 < in.track_scripts.size() ? "," : "") + "\n";
        }
        o += "      );\n";
      }
      if (!in.notify.empty()) o += "      notify = " + str(in.notify) + ";\n";
      o += std::string("    }") + (i + 1 < instances_.size() ? "," : "") + "\n";
    }
    o += "  );\n";
  }

  if (!groups_.empty()) {
    o += "  sync_groups = (\n";
    for (size_t i = 0; i < groups_.size(); ++i) {
      const SyncGroup& g = groups_[i];
      o += "    {\n";
      if (g.line != 0) {
        o += "      # keepalived vrrp_sync_group " + g.name + " (line " + std::to_string(g.line) +
             ")\n";
      }
      comment_lines(o, "      ", g.notes);
      o += "      name = " + str(g.name) + ";\n";
      o += "      instances = [ ";
      for (size_t a = 0; a < g.instances.size(); ++a) o += (a ? ", " : "") + str(g.instances[a]);
      o += " ];\n";
      if (!g.notify.empty()) o += "      notify = " + str(g.notify) + ";\n";
      o += std::string("    }") + (i + 1 < groups_.size() ? "," : "") + "\n";
    }
    o += "  );\n";
  }
  o += "};\n\n";

  if (!services_.empty()) {
    o += "lb = {\n";
    o += "  # keys: docs/configuration.md (lb, and the keepalived and ipvsadm mapping table).\n";
    o += "  services = (\n";
    for (size_t i = 0; i < services_.size(); ++i) {
      bool more = false;
      for (size_t j = i + 1; j < services_.size(); ++j) more = more || services_[j].live;
      o += render_service(services_[i], services_[i].live && more);
    }
    o += "  );\n};\n\n";
  }

  o += "# ------------------------------------------------------------------------------------\n";
  if (untranslated_.empty()) {
    o += "# Everything in " + file_ + " was translated.\n";
  } else {
    o += "# Not translated (" + file_ + ":LINE: setting: why):\n";
  }
  return o;
}

}  // namespace

ImportResult import_keepalived(const std::string& text, const std::string& file_name) {
  try {
    return Importer(file_name).run(text);
  } catch (const std::exception& e) {
    ImportResult r;
    r.errors.push_back(file_name + ": internal error: " + e.what());
    return r;
  }
}

}  // namespace ctl
