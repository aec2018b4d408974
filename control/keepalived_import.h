#pragma once
// `tandemctl import keepalived FILE`: a keepalived.conf in, a tandem configuration (libconfig
// text, see docs/configuration.md) out. Pure text processing: no DPDK, no libconfig. What has no
// tandem equivalent is listed, with its line, rather than guessed.

#include <string>
#include <vector>

namespace ctl {

struct ImportResult {
  // A complete tandem configuration: `node`, a `ports` placeholder (one af_packet port per
  // keepalived interface, marked TODO), `vrrp` and `lb` (from virtual_server; services and real
  // servers the file's addresses do not cover are commented out with a TODO), then a comment
  // block listing every untranslated item and error. Always set, even when `errors` is not empty.
  std::string config;
  // "FILE:LINE: item: why", in file order: keepalived settings left out of `config`.
  std::vector<std::string> untranslated;
  // "FILE:LINE: message", in file order: input keepalived itself would refuse (unbalanced braces,
  // an instance without interface or virtual_router_id, ...). The affected part is left out.
  std::vector<std::string> errors;
};

// tandemctl (any thread; linear in the size of `text`). `file_name` names the input in messages
// and in the output's comments. Never throws for bad input.
ImportResult import_keepalived(const std::string& text, const std::string& file_name);

}  // namespace ctl
