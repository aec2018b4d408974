// VrrpService without EAL: two nodes wired back to back through fake hooks, on a fake clock.
// Covers what the daemon glue adds to the state machine: sync groups, tracking, VIP ownership,
// graceful handover, notify hooks and unicast peers.

#include "control/vrrp_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <functional>
#include <sstream>

namespace {

constexpr uint64_t kMs = 1'000'000;

uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

cfg::Config node_config(uint32_t last_octet, uint32_t priority) {
  cfg::Config c;
  c.file = "test.conf";
  cfg::Port front;
  front.name = "front0";
  front.addresses = {{ip(192, 0, 2, last_octet), 24}};
  cfg::Port back;
  back.name = "back0";
  back.addresses = {{ip(198, 51, 100, last_octet), 24}};
  c.ports = {front, back};
  cfg::VrrpInstance f;
  f.name = "VI_FRONT";
  f.port = "front0";
  f.vrid = 51;
  f.priority = priority;
  f.advert_interval_ms = 100;
  f.virtual_ips = {{ip(192, 0, 2, 100), 24}};
  cfg::VrrpInstance b = f;
  b.name = "VI_BACK";
  b.port = "back0";
  b.vrid = 52;
  b.virtual_ips = {{ip(198, 51, 100, 1), 24}};
  c.vrrp.instances = {f, b};
  c.vrrp.garp_count = 2;
  return c;
}

struct Node;

// The wire: frames sent by one node reach the other, unless cut.
struct Wire {
  std::vector<Node*> nodes;
  std::deque<std::tuple<Node*, uint32_t, std::vector<uint8_t>>> in_flight;
};

struct Node {
  Node(Wire& w, cfg::Config c, std::string n) : wire(w), name(std::move(n)) {
    ctl::VrrpService::Hooks h;
    h.send = [this](uint32_t port, const uint8_t* f, uint32_t len) {
      ++sent;
      last_frame.assign(f, f + len);
      if (!alive) return false;
      for (Node* other : wire.nodes)
        if (other != this) wire.in_flight.emplace_back(other, port, last_frame);
      return true;
    };
    h.ownership_changed = [this] {
      ++ownership_changes;
      hook_calls.push_back("ownership_changed");
    };
    h.announce = [this](uint32_t, uint32_t vip, const dp::Mac&, uint32_t count, uint32_t) {
      announced.push_back(vip);
      garps += count;
      hook_calls.push_back("announce");
    };
    h.before_master = [this] { hook_calls.push_back("before_master"); };
    h.resolve = [this](uint32_t, uint32_t) -> std::optional<dp::Mac> { return peer_mac; };
    svc = std::make_unique<ctl::VrrpService>(
        c, std::vector<dp::Mac>{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}}, std::move(h));
  }
  std::vector<std::string> states() const {
    std::vector<std::string> out;
    for (const auto& i : svc->status(0)) out.push_back(i["state"].get<std::string>());
    return out;
  }
  size_t owned() const {
    std::vector<ctl::ExtraAddress> v;
    svc->owned(v);
    return v.size();
  }

  Wire& wire;
  std::string name;
  std::unique_ptr<ctl::VrrpService> svc;
  bool alive = true;
  int sent = 0, ownership_changes = 0;
  uint32_t garps = 0;
  std::vector<uint32_t> announced;
  std::vector<std::string> hook_calls;  // before_master, ownership_changed, announce in order
  std::vector<uint8_t> last_frame;
  std::optional<dp::Mac> peer_mac;
};

// Runs the pair for `ms` milliseconds of fake time in 1 ms steps.
void run(Wire& w, uint64_t& now, uint64_t ms) {
  for (uint64_t t = 0; t < ms; ++t) {
    now += kMs;
    for (Node* n : w.nodes)
      if (n->alive) n->svc->tick(now);
    while (!w.in_flight.empty()) {
      auto [to, port, frame] = w.in_flight.front();
      w.in_flight.pop_front();
      if (to->alive)
        to->svc->on_frame(port, frame.data(), static_cast<uint32_t>(frame.size()), now);
    }
  }
}

const std::vector<std::string> kMasters{"MASTER", "MASTER"};
const std::vector<std::string> kBackups{"BACKUP", "BACKUP"};

TEST(VrrpService, HigherPriorityOwnsEveryVip) {
  Wire w;
  Node a(w, node_config(2, 150), "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), kMasters);
  EXPECT_EQ(b.states(), kBackups);
  EXPECT_EQ(a.owned(), 2u);
  EXPECT_EQ(b.owned(), 0u);
  EXPECT_GE(a.ownership_changes, 1);
  EXPECT_EQ(a.announced.size(), 2u);  // each VIP announced once on becoming master
  // Multicast adverts from the port's MAC to 01:00:5e:00:00:12.
  ASSERT_GE(a.last_frame.size(), 14u);
  EXPECT_EQ(std::vector<uint8_t>(a.last_frame.begin(), a.last_frame.begin() + 6),
            (std::vector<uint8_t>{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}));
  const auto st = b.svc->status(now);
  EXPECT_EQ(st[0]["master"], "192.0.2.2");
  EXPECT_EQ(st[0]["peer_checksum"], "keepalived");
  EXPECT_GT(b.svc->stats().instances[0]->adverts_received.get(), 5u);
  for (const auto& c : b.svc->stats().invalid) EXPECT_EQ(c.get(), 0u);
}

TEST(VrrpService, KilledMasterIsReplacedWithinMasterDown) {
  Wire w;
  Node a(w, node_config(2, 150), "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  a.alive = false;  // kill -9: no priority 0, nothing more on the wire
  const uint64_t killed = now;
  uint64_t took_over = 0;
  for (int i = 0; i < 1000 && !took_over; ++i) {
    run(w, now, 1);
    if (b.states() == kMasters) took_over = now;
  }
  ASSERT_NE(took_over, 0u);
  // Master_Down for priority 100 at 100 ms: 360.9 ms after the last advert (≤ 100 ms earlier).
  EXPECT_LE(took_over - killed, 361 * kMs);
  EXPECT_GE(took_over - killed, 260 * kMs);
  EXPECT_EQ(b.owned(), 2u);
}

TEST(VrrpService, CleanStopHandsOverAfterSkewOnly) {
  Wire w;
  Node a(w, node_config(2, 150), "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  a.svc->stop(now);  // priority 0 on both instances
  run(w, now, 0);
  a.alive = false;
  const uint64_t stopped = now;
  uint64_t took_over = 0;
  for (int i = 0; i < 1000 && !took_over; ++i) {
    run(w, now, 1);
    if (b.states() == kMasters) took_over = now;
  }
  ASSERT_NE(took_over, 0u);
  EXPECT_LE(took_over - stopped, 62 * kMs);  // skew = 60.9 ms
  EXPECT_EQ(a.owned(), 0u);
}

TEST(VrrpService, TrackedPortMovesTheWholeGroup) {
  Wire w;
  cfg::Config ca = node_config(2, 150);
  // back0 down costs node a 60: 150 → 90 < 100 on both instances of the group? Only VI_BACK
  // tracks it; the sync group still moves VI_FRONT along.
  ca.vrrp.instances[1].track_ports = {{"back0", -60, 0}};
  Node a(w, ca, "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  ASSERT_EQ(a.states(), kMasters);
  a.svc->on_link(1, false, now);
  EXPECT_EQ(a.svc->status(now)[1]["effective_priority"], 90);
  run(w, now, 1000);
  EXPECT_EQ(b.states(), kMasters);
  EXPECT_EQ(a.states(), kBackups);
  a.svc->on_link(1, true, now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), kMasters);
  EXPECT_EQ(b.states(), kBackups);
}

TEST(VrrpService, AnObjectTrackedByTwoMembersCountsOnce) {
  Wire w;
  cfg::Config ca = node_config(2, 150);
  for (auto& in : ca.vrrp.instances) in.track_ports = {{"back0", -60, 0}};
  Node a(w, ca, "a");
  w.nodes = {&a};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  a.svc->on_link(1, false, now);
  const auto st = a.svc->status(now);
  EXPECT_EQ(st[0]["effective_priority"], 90);
  EXPECT_EQ(st[1]["effective_priority"], 90);
}

TEST(VrrpService, UnweightedTrackFaultsTheGroup) {
  Wire w;
  cfg::Config ca = node_config(2, 150);
  ca.vrrp.instances[0].track_ports = {{"front0", 0, 0}};
  Node a(w, ca, "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  a.svc->on_link(0, false, now);
  EXPECT_EQ(a.states(), (std::vector<std::string>{"FAULT", "FAULT"}));
  EXPECT_EQ(a.owned(), 0u);
  run(w, now, 200);  // the priority-0 adverts make b take over after skew
  EXPECT_EQ(b.states(), kMasters);
  a.svc->on_link(0, true, now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), kMasters);
}

// keepalived operators fail the pair over when a node's service has too few healthy real
// servers; tandem tracks the load balancer's own health checks (track_services).
TEST(VrrpService, TrackedServiceBelowMinHealthyMovesTheGroup) {
  Wire w;
  cfg::Config ca = node_config(2, 150);
  ca.vrrp.instances[0].track_services = {{"web", 2, -60, 0}};
  Node a(w, ca, "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->set_service_health({{"web", 2}}, now);
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  ASSERT_EQ(a.states(), kMasters);
  EXPECT_EQ(a.svc->status(now)[0]["effective_priority"], 150);
  a.svc->set_service_health({{"web", 1}}, now);  // one real server failed its check
  EXPECT_EQ(a.svc->status(now)[0]["effective_priority"], 90);
  run(w, now, 1000);
  EXPECT_EQ(b.states(), kMasters);
  EXPECT_EQ(a.states(), kBackups);
  a.svc->set_service_health({{"web", 2}}, now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), kMasters);
}

TEST(VrrpService, UnweightedTrackedServiceFaultsWhenNoneIsHealthy) {
  Wire w;
  cfg::Config ca = node_config(2, 150);
  ca.vrrp.instances[1].track_services = {{"web", 1, 0, 0}};
  Node a(w, ca, "a");
  w.nodes = {&a};
  uint64_t now = 1000 * kMs;
  a.svc->set_service_health({{"web", 1}}, now);
  a.svc->start(now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), kMasters);
  a.svc->set_service_health({{"web", 0}}, now);
  EXPECT_EQ(a.states(), (std::vector<std::string>{"FAULT", "FAULT"}));
  a.svc->set_service_health({}, now);  // a service nobody reports counts as 0 healthy
  EXPECT_EQ(a.states(), (std::vector<std::string>{"FAULT", "FAULT"}));
  a.svc->set_service_health({{"web", 3}}, now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), kMasters);
}

TEST(VrrpService, ExplicitGroupsFailOverSeparately) {
  Wire w;
  cfg::Config ca = node_config(2, 150), cb = node_config(3, 100);
  for (cfg::Config* c : {&ca, &cb}) {
    c->vrrp.sync_groups = {{"G_FRONT", {"VI_FRONT"}, "", 0}, {"G_BACK", {"VI_BACK"}, "", 0}};
  }
  ca.vrrp.instances[1].track_ports = {{"back0", 0, 0}};
  Node a(w, ca, "a"), b(w, cb, "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  a.svc->on_link(1, false, now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), (std::vector<std::string>{"MASTER", "FAULT"}));
  EXPECT_EQ(b.states(), (std::vector<std::string>{"BACKUP", "MASTER"}));
}

TEST(VrrpService, NotifyHookGetsKeepalivedArguments) {
  char dir[] = "/tmp/vrrp-notify.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string script = std::string(dir) + "/notify.sh";
  const std::string out = std::string(dir) + "/calls";
  {
    std::ofstream s(script);
    s << "#!/bin/sh\necho \"$1 $2 $3 $4\" >> " << out << "\n";
  }
  chmod(script.c_str(), 0755);
  Wire w;
  cfg::Config ca = node_config(2, 150);
  ca.vrrp.notify = script;
  Node a(w, ca, "a");
  w.nodes = {&a};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  std::string calls;
  // The script runs for real: allow it 10 s of wall-clock time on a loaded machine.
  const time_t deadline = time(nullptr) + 10;
  // Several scripts run at once and finish in any order: wait for every expected line.
  auto complete = [&] {
    for (const char* want : {"INSTANCE VI_FRONT BACKUP 150", "INSTANCE VI_FRONT MASTER 150",
                             "INSTANCE VI_BACK MASTER 150"})
      if (calls.find(want) == std::string::npos) return false;
    return true;
  };
  while (!complete() && time(nullptr) < deadline) {
    run(w, now, 1);
    usleep(1000);
    std::ifstream f(out);
    std::stringstream ss;
    ss << f.rdbuf();
    calls = ss.str();
  }
  EXPECT_NE(calls.find("INSTANCE VI_FRONT BACKUP 150"), std::string::npos) << calls;
  EXPECT_NE(calls.find("INSTANCE VI_FRONT MASTER 150"), std::string::npos) << calls;
  EXPECT_NE(calls.find("INSTANCE VI_BACK MASTER 150"), std::string::npos) << calls;
  std::remove(out.c_str());
  std::remove(script.c_str());
  rmdir(dir);
}

TEST(VrrpService, UnicastPeersGetUnicastAdvertsOnceResolved) {
  Wire w;
  cfg::Config ca = node_config(2, 150);
  for (auto& in : ca.vrrp.instances) in.unicast_peers = {ip(192, 0, 2, 3)};
  Node a(w, ca, "a");
  w.nodes = {&a};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), kMasters);
  EXPECT_EQ(a.sent, 0);  // the peer is not resolved yet: nothing can be sent
  a.peer_mac = dp::Mac{2, 0, 0, 0, 0, 3};
  run(w, now, 200);
  ASSERT_GT(a.sent, 0);
  EXPECT_EQ(std::vector<uint8_t>(a.last_frame.begin(), a.last_frame.begin() + 6),
            (std::vector<uint8_t>{2, 0, 0, 0, 0, 3}));
  EXPECT_EQ(dp::load_be32(a.last_frame.data() + 14 + 16), ip(192, 0, 2, 3));
}

TEST(VrrpService, InvalidAdvertsAreCountedByReason) {
  Wire w;
  Node a(w, node_config(2, 150), "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  run(w, now, 1000);
  std::vector<uint8_t> f = a.last_frame;
  f[14 + 8] = 254;  // TTL
  b.svc->on_frame(0, f.data(), static_cast<uint32_t>(f.size()), now);
  f = a.last_frame;
  f[14 + 20 + 2] ^= 0xff;  // the priority byte: the checksum no longer verifies
  b.svc->on_frame(0, f.data(), static_cast<uint32_t>(f.size()), now);
  const auto& inv = b.svc->stats().invalid;
  EXPECT_EQ(inv[static_cast<size_t>(ctl::vrrp::Invalid::kTtl)].get(), 1u);
  EXPECT_EQ(inv[static_cast<size_t>(ctl::vrrp::Invalid::kChecksum)].get(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Replication coupling (set_sync_coupling) and the before_master hook

// As run(), calling `each` after every 1 ms step (the daemon's control loop).
void run_with(Wire& w, uint64_t& now, uint64_t ms, const std::function<void()>& each) {
  for (uint64_t t = 0; t < ms; ++t) {
    run(w, now, 1);
    each();
  }
}

const auto kNoPeerMaster = [](uint8_t) { return false; };

TEST(VrrpService, ResyncDemotesABackupAndHoldsItsTakeoverUntilComplete) {
  Wire w;
  Node a(w, node_config(2, 150), "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  ASSERT_EQ(a.states(), kMasters);
  ASSERT_EQ(b.states(), kBackups);

  b.svc->set_sync_coupling(true, kNoPeerMaster, now);
  for (const auto& i : b.svc->status(now)) {
    EXPECT_EQ(i["effective_priority"], 1) << i["name"];
    EXPECT_EQ(i["priority"], 100);
    EXPECT_EQ(i["sync_demoted"], true);
    EXPECT_EQ(i["split_brain_alarm"], false);
  }
  for (const auto& st : b.svc->stats().instances) {
    EXPECT_EQ(st->effective_priority.load(), 1);
    EXPECT_EQ(st->demoted.load(), 1);
  }
  // A master keeps its priority: it holds the state.
  a.svc->set_sync_coupling(true, kNoPeerMaster, now);
  for (const auto& i : a.svc->status(now)) {
    EXPECT_EQ(i["effective_priority"], 150);
    EXPECT_EQ(i["sync_demoted"], false);
  }
  a.svc->set_sync_coupling(false, kNoPeerMaster, now);

  // The master dies while b resyncs: b does not take over, however long it waits.
  a.alive = false;
  run_with(w, now, 2000, [&] { b.svc->set_sync_coupling(true, kNoPeerMaster, now); });
  EXPECT_EQ(b.states(), kBackups);
  EXPECT_EQ(b.owned(), 0u);
  for (const auto& i : b.svc->status(now)) {
    EXPECT_EQ(i["takeover_held"], true);
    EXPECT_EQ(i["split_brain_alarm"], false);  // no witness: not a split brain
    // 2 s after the last advert at 1 ms steps: expiries at 361, 722, ..., 1805 ms.
    EXPECT_GE(i["held_takeovers"].get<uint64_t>(), 4u);
    EXPECT_LE(i["held_takeovers"].get<uint64_t>(), 6u);
  }
  EXPECT_EQ(b.svc->stats().instances[0]->held_takeovers.get(),
            b.svc->status(now)[0]["held_takeovers"].get<uint64_t>());

  // Resync complete: priorities back, and the held takeover happens at the next tick.
  b.svc->set_sync_coupling(false, kNoPeerMaster, now);
  for (const auto& i : b.svc->status(now)) {
    EXPECT_EQ(i["effective_priority"], 100);
    EXPECT_EQ(i["sync_demoted"], false);
    EXPECT_EQ(i["takeover_held"], false);
  }
  EXPECT_EQ(b.svc->stats().instances[0]->demoted.load(), 0);
  run(w, now, 1);
  EXPECT_EQ(b.states(), kMasters);
  EXPECT_EQ(b.owned(), 2u);
}

TEST(VrrpService, PeerMasterWitnessHoldsTheTakeoverAndRaisesTheAlarm) {
  Wire w;
  Node a(w, node_config(2, 150), "a"), b(w, node_config(3, 100), "b");
  w.nodes = {&a, &b};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  b.svc->start(now);
  run(w, now, 1000);
  ASSERT_EQ(a.states(), kMasters);

  // The VRRP path between the nodes breaks; the sync link still says a is alive and master.
  bool peer_master = true;
  std::vector<uint8_t> asked;
  auto witness = [&](uint8_t vrid) {
    asked.push_back(vrid);
    return peer_master;
  };
  a.alive = false;
  run_with(w, now, 2000, [&] { b.svc->set_sync_coupling(false, witness, now); });
  EXPECT_EQ(b.states(), kBackups);
  EXPECT_EQ(b.owned(), 0u);
  EXPECT_EQ(b.ownership_changes, 0);
  for (size_t i = 0; i < 2; ++i) {
    const auto st = b.svc->status(now)[i];
    EXPECT_EQ(st["split_brain_alarm"], true);
    EXPECT_EQ(st["takeover_held"], true);
    EXPECT_EQ(st["sync_demoted"], false);
    EXPECT_EQ(st["effective_priority"], 100);  // held, not demoted
    EXPECT_EQ(b.svc->stats().instances[i]->split_brain_alarm.load(), 1);
    EXPECT_GE(b.svc->stats().instances[i]->held_takeovers.get(), 4u);
  }
  EXPECT_NE(std::find(asked.begin(), asked.end(), 51), asked.end());
  EXPECT_NE(std::find(asked.begin(), asked.end(), 52), asked.end());

  // The sync link no longer sees a master: the alarm clears and b takes over at the next tick.
  peer_master = false;
  b.svc->set_sync_coupling(false, witness, now);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(b.svc->stats().instances[i]->split_brain_alarm.load(), 0);
    EXPECT_EQ(b.svc->status(now)[i]["split_brain_alarm"], false);
  }
  run(w, now, 1);
  EXPECT_EQ(b.states(), kMasters);
  EXPECT_EQ(b.owned(), 2u);
  b.svc->set_sync_coupling(false, witness, now);
  for (size_t i = 0; i < 2; ++i) {
    const auto st = b.svc->status(now)[i];
    EXPECT_EQ(st["split_brain_alarm"], false);
    EXPECT_EQ(st["takeover_held"], false);
  }
}

TEST(VrrpService, WitnessWithoutAHeldTakeoverRaisesNoAlarm) {
  Wire w;
  Node b(w, node_config(3, 100), "b");
  w.nodes = {&b};
  uint64_t now = 1000 * kMs;
  b.svc->start(now);
  // Peer said master from the start, before any Master_Down ran out: held only once it does.
  b.svc->set_sync_coupling(
      false, [](uint8_t) { return true; }, now);
  EXPECT_EQ(b.svc->stats().instances[0]->split_brain_alarm.load(), 0);
  EXPECT_EQ(b.svc->status(now)[0]["takeover_held"], false);
  run_with(w, now, 400, [&] {
    b.svc->set_sync_coupling(
        false, [](uint8_t) { return true; }, now);
  });
  EXPECT_EQ(b.states(), kBackups);
  EXPECT_EQ(b.svc->stats().instances[0]->split_brain_alarm.load(), 1);
}

TEST(VrrpService, BeforeMasterRunsBeforeTheDataPlaneAnswersAndTheFirstGarp) {
  Wire w;
  Node a(w, node_config(2, 150), "a");
  w.nodes = {&a};
  uint64_t now = 1000 * kMs;
  a.svc->start(now);
  EXPECT_TRUE(a.hook_calls.empty());  // INIT -> BACKUP touches nothing
  run(w, now, 1000);
  ASSERT_EQ(a.states(), kMasters);
  // Each member of the group: replicated state in, then VIPs owned, then announced.
  const std::vector<std::string> want{"before_master", "ownership_changed", "announce",
                                      "before_master", "ownership_changed", "announce"};
  EXPECT_EQ(a.hook_calls, want);

  // Stepping down is not preceded by it.
  Node b(w, node_config(3, 200), "b");
  w.nodes = {&a, &b};
  a.hook_calls.clear();
  b.svc->start(now);
  run(w, now, 1000);
  EXPECT_EQ(a.states(), kBackups);
  EXPECT_EQ(a.hook_calls, (std::vector<std::string>{"ownership_changed", "ownership_changed"}));
  EXPECT_EQ(b.hook_calls, want);
}

}  // namespace
