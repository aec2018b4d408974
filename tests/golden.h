#pragma once
// Golden fixtures for tests: tests/fixtures/*_golden.txt, one case per line,
// "name | column | ... | hex", '#' comments. Written by independent Python generators beside
// them, so expected bytes never come from the code under test.

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace tandem_test {

inline std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

inline std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  const size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Every case of `file` (relative to tests/fixtures/) as its trimmed '|'-separated columns,
// the name first. Empty when the file cannot be read (tests then fail on missing cases).
inline std::vector<std::vector<std::string>> read_golden(const std::string& file) {
  std::vector<std::vector<std::string>> cases;
  std::ifstream in(std::string(TANDEM_SOURCE_DIR) + "/tests/fixtures/" + file);
  std::string line;
  while (std::getline(in, line)) {
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '|')) cols.push_back(trim(col));
    cases.push_back(std::move(cols));
  }
  return cases;
}

// For fixtures of the form "name | hex": name → bytes.
inline std::map<std::string, std::vector<uint8_t>> read_golden_frames(const std::string& file) {
  std::map<std::string, std::vector<uint8_t>> m;
  for (const auto& c : read_golden(file))
    if (c.size() == 2) m[c[0]] = from_hex(c[1]);
  return m;
}

}  // namespace tandem_test
