// tandemd: the Tandem daemon. Parses the command line and the configuration, then hands over to
// ctl::Daemon (control thread = EAL main lcore).

#include <cstdio>
#include <cstring>
#include <string>

#include "config/model.h"
#include "control/daemon.h"
#include "control/translate.h"
#include "tandem_version.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: tandemd --config FILE [--check]\n"
               "  -c, --config FILE  configuration file (libconfig syntax)\n"
               "  -t, --check        validate the configuration and exit (0: ok, 1: errors)\n"
               "  -v, --version      print the version\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string file;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      file = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      file = a.substr(9);
    } else if (a == "-t" || a == "--check") {
      check = true;
    } else if (a == "-v" || a == "--version") {
      std::printf("tandemd %s (%s)\n", TANDEM_VERSION, TANDEM_GIT);
      return 0;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "tandemd: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (file.empty()) {
    std::fprintf(stderr, "tandemd: --config FILE is required\n");
    usage(stderr);
    return 2;
  }
  cfg::LoadResult r = cfg::load_file(file);
  for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
  if (!r.config) return 1;
  if (std::string lim = ctl::validate_limits(*r.config); !lim.empty()) {
    std::fprintf(stderr, "%s\n", lim.c_str());
    return 1;
  }
  if (check) {
    std::printf("%s: configuration ok\n", file.c_str());
    return 0;
  }
  ctl::Daemon daemon(std::move(*r.config));
  return daemon.run(argv[0]);
}
