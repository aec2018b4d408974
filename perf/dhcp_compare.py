#!/usr/bin/env python3
"""Helper of perf/dhcp_compare.sh: turns one generator run into a JSON line, and the lines of a
whole comparison into the final JSON object (and a Markdown table on stderr).

  dhcp_compare.py step SERVER GENERATOR RATE DURATION_S GEN_OUT TIMES_FILE [KEY=VALUE ...]
  dhcp_compare.py kea-stats SOCKET
  dhcp_compare.py sample SERVER_PID NETNS OUT MAX_S
  dhcp_compare.py summary STEPS_JSONL CEILINGS_JSONL META_JSON

An exchange is one DORA; its drop % is 100 * (1 - ACKs received / DISCOVERs sent), the same for
both generators (a NAK or a lost leg is a drop). A run is generator-bound when the generator sent
fewer than 90% of the DISCOVERs per second it was asked for. A step (one rate) is the median of
its runs, and clean when that drop % is at most the limit (ISC's 2.5%).
"""
import json
import os
import re
import signal
import socket
import sys
import time

GEN_BOUND_SHARE = 0.9


def parse_times(path):
    """CPU seconds (user + system) of the children, from bash's `times` (second line)."""
    try:
        lines = open(path).read().split("\n")
    except OSError:
        return None
    if len(lines) < 2:
        return None
    total = 0.0
    for tok in lines[1].split():
        m = re.fullmatch(r"(\d+)m([\d.]+)s", tok)
        if m:
            total += int(m.group(1)) * 60 + float(m.group(2))
    return total


def parse_perfdhcp(text):
    out = {"sections": {}}
    section = None
    for line in text.splitlines():
        m = re.match(r"\*\*\*Statistics for: (\S+)\*\*\*", line)
        if m:
            section = m.group(1)
            out["sections"][section] = {}
            continue
        m = re.match(r"Rate: ([\d.]+) 4-way exchanges/second", line)
        if m:
            out["rate_4way"] = float(m.group(1))
            continue
        m = re.match(r"(sent packets|received packets|drops|orphans|rejected leases|"
                     r"non unique addresses|avg delay|max delay|min delay|std deviation)"
                     r": ([\d.eE+-]+)", line)
        if m and section:
            key = m.group(1).replace(" ", "_")
            out["sections"][section][key] = float(m.group(2))
    return out


def ticks(pid):
    """utime + stime of a process, in clock ticks (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def sample(argv):
    """Every 0.2 s: time, CPU ticks of the server, CPU ticks summed over the processes of the
    generator's namespace (rescanned every second; an exited process keeps what it used). Stops
    on SIGTERM or after MAX_S seconds."""
    server_pid, netns, out, max_s = int(argv[0]), argv[1], argv[2], float(argv[3])
    ns_ino = os.stat(f"/run/netns/{netns}").st_ino
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    seen = {}  # pid -> last ticks
    gone = 0
    end = time.monotonic() + max_s
    next_scan = 0.0
    with open(out, "w", buffering=1) as f:
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_scan:
                next_scan = now + 1.0
                for d in os.listdir("/proc"):
                    if d.isdigit() and int(d) not in seen:
                        try:
                            if os.stat(f"/proc/{d}/ns/net").st_ino == ns_ino:
                                seen[int(d)] = 0
                        except OSError:
                            pass
            total = 0
            for pid in list(seen):
                t = ticks(pid)
                if t is None:
                    gone += seen.pop(pid)
                else:
                    seen[pid] = t
                    total += t
            f.write(f"{now:.3f} {ticks(server_pid) or 0} {total + gone}\n")
            time.sleep(0.2)


def peak_cores(path, col, window=1.0):
    """The most cores used over any window of at least `window` seconds (from `sample`)."""
    try:
        rows = [tuple(map(float, line.split())) for line in open(path) if line.strip()]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    best = None
    j = 0
    for i in range(len(rows)):
        while j < len(rows) and rows[j][0] - rows[i][0] < window:
            j += 1
        if j >= len(rows):
            break
        v = (rows[j][col] - rows[i][col]) / hz / (rows[j][0] - rows[i][0])
        best = v if best is None or v > best else best
    return round(best, 3) if best is not None else None


def step(argv):
    server, gen, rate, dur, gen_out, times_file = argv[:6]
    rate, dur = float(rate), float(dur)
    extra = {}
    for kv in argv[6:]:
        k, _, v = kv.partition("=")
        try:
            extra[k] = json.loads(v)
        except ValueError:
            extra[k] = v
    text = open(gen_out, errors="replace").read()
    rec = {"server": server, "generator": gen, "rate": int(rate), "duration_s": dur}
    discovers = acks = None
    detail = {}
    if gen == "perfdhcp":
        p = parse_perfdhcp(text)
        do = p["sections"].get("DISCOVER-OFFER", {})
        ra = p["sections"].get("REQUEST-ACK", {})
        discovers = do.get("sent_packets")
        acks = ra.get("received_packets")
        detail = {"offers": do.get("received_packets"), "requests": ra.get("sent_packets"),
                  "do_drops": do.get("drops"), "ra_drops": ra.get("drops"),
                  "orphans": (do.get("orphans") or 0) + (ra.get("orphans") or 0),
                  "non_unique": (do.get("non_unique_addresses") or 0)
                  + (ra.get("non_unique_addresses") or 0),
                  "rejected": (do.get("rejected_leases") or 0) + (ra.get("rejected_leases") or 0),
                  "avg_delay_ms_do": do.get("avg_delay"), "avg_delay_ms_ra": ra.get("avg_delay"),
                  "rate_4way": p.get("rate_4way")}
        sent_rate = discovers / dur if discovers is not None and dur > 0 else None
    else:
        try:
            j = json.loads(text[text.index("{"):])
        except (ValueError, json.JSONDecodeError):
            j = None
        if j:
            ex = j["exchanges"]
            discovers = j["sent"]["discover"]
            acks = ex["completed"]
            g = j["generator"]
            lat = j.get("latency_us", {}).get("dora", {})
            detail = {"started": ex["started"], "offers": j["received"]["offer"],
                      "requests": j["sent"]["request_selecting"], "naks": ex["naks"],
                      "timed_out": ex["dropped"], "duplicates": j["duplicates"],
                      "bad_yiaddr": j["bad_yiaddr"], "load_s": j["load_s"],
                      "max_backlog": g["max_backlog"], "tx_refused": g["tx_refused"],
                      "fifo_full": g["fifo_full"], "mbuf_alloc_failed": g["mbuf_alloc_failed"],
                      "port_imissed": g["port_imissed"],
                      "dora_p50_us": lat.get("p50"), "dora_p99_us": lat.get("p99")}
            sent_rate = discovers / j["load_s"] if j["load_s"] > 0 else None
        else:
            sent_rate = None
    rec["discovers"] = discovers
    rec["acks"] = acks
    if discovers:
        rec["drop_pct"] = round(100.0 * (1.0 - (acks or 0) / discovers), 3)
    else:
        rec["drop_pct"] = None
    rec["sent_rate"] = round(sent_rate, 1) if sent_rate is not None else None
    rec["generator_bound"] = bool(sent_rate is not None and sent_rate < GEN_BOUND_SHARE * rate)
    wall = extra.get("wall_s") or 0
    rec["generator_cpu_s"] = parse_times(times_file)
    if wall:
        for k in ("server_cpu_s", "worker_cpu_s", "generator_cpu_s"):
            v = extra.get(k) if k != "generator_cpu_s" else rec["generator_cpu_s"]
            if v is not None:
                rec[k.replace("_cpu_s", "_cores")] = round(v / wall, 3)
    if extra.get("samples"):
        rec["server_peak_cores"] = peak_cores(extra["samples"], 1)
        rec["generator_peak_cores"] = peak_cores(extra["samples"], 2)
        extra.pop("samples")
    # Where the lost exchanges went: requests the server never answered, or answers the
    # generator never got (its socket or its loop could not keep up).
    st = extra.get("server_stats") or {}
    if "acks_sent" in st:
        replies = st["offers_sent"] + st["acks_sent"] + st["naks_sent"]
    elif "pkt4-sent" in st or "pkt4-received" in st:
        replies = st.get("pkt4-offer-sent", 0) + st.get("pkt4-ack-sent", 0) + st.get("pkt4-nak-sent", 0)
    else:
        replies = None
    requests = (discovers or 0) + (detail.get("requests") or 0)
    got = (detail.get("offers") or 0) + (acks or 0) + (detail.get("naks") or 0)
    if replies is not None and discovers:
        rec["server_replies"] = replies
        rec["lost_before_server"] = max(0, requests - replies)
        rec["lost_after_server"] = max(0, replies - got)
    # Of those lost before the server: frames its kernel interface took but its code never saw
    # (a full AF_PACKET ring for tandemd, a full socket buffer for Kea).
    if extra.get("server_kernel_rx") is not None and extra.get("server_app_rx") is not None:
        rec["lost_in_server_socket"] = max(0, extra["server_kernel_rx"] - extra["server_app_rx"])
    if acks and extra.get("server_cpu_s") is not None:
        rec["server_cpu_us_per_ack"] = round(extra["server_cpu_s"] / acks * 1e6, 1)
    rec.update({k: v for k, v in extra.items() if k not in rec})
    rec["detail"] = detail
    if rec["discovers"] is None:
        rec["error"] = text.strip().splitlines()[-3:] if text.strip() else "no output"
    print(json.dumps(rec), flush=True)


def kea_stats(argv):
    """statistic-get-all over Kea's control socket: the pkt4 counters, as one JSON object."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(argv[0])
        s.sendall(b'{"command": "statistic-get-all"}')
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            try:
                json.loads(buf)
                break
            except ValueError:
                continue
        args = json.loads(buf).get("arguments", {})
        print(json.dumps({k: v[0][0] for k, v in sorted(args.items())
                          if k.startswith("pkt4-") and v[0][0]}))
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(json.dumps({"error": str(e)}))
    finally:
        s.close()


STEP_FIELDS = ("duration_s", "sent_rate", "drop_pct", "server_cores", "worker_cores",
               "server_peak_cores", "generator_cores", "generator_peak_cores",
               "server_cpu_us_per_ack", "lost_before_server", "lost_after_server",
               "lost_in_server_socket", "others_before", "others_cores", "softirq_cores",
               "steal_cores", "loadavg")


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    m = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
    return round(m, 3) if isinstance(m, float) else m


def aggregate(runs):
    """One step from its runs: the median of every field, and each run's drop %."""
    step = {"rate": runs[0]["rate"], "runs": len(runs)}
    for k in STEP_FIELDS:
        step[k] = median([r.get(k) for r in runs])
    step["runs_drop_pct"] = [r.get("drop_pct") for r in runs]
    step["generator_bound"] = 2 * sum(bool(r.get("generator_bound")) for r in runs) > len(runs)
    return step


def summary(argv):
    records = [json.loads(line) for line in open(argv[0]) if line.strip()]
    ceilings = [json.loads(line) for line in open(argv[1]) if line.strip()]
    meta = json.load(open(argv[2]))
    limit = meta["params"]["drop_limit_pct"]
    target = meta["params"].get("target_drop_pct", 0.1)
    combos = []
    for r in records:
        key = (r["server"], r["generator"])
        if key not in combos:
            combos.append(key)
    results = []
    for server, gen in combos:
        rates = sorted({r["rate"] for r in records if (r["server"], r["generator"]) == (server, gen)})
        ss = [aggregate([r for r in records if (r["server"], r["generator"], r["rate"]) ==
                         (server, gen, rate)]) for rate in rates]
        ok = [s for s in ss if s["drop_pct"] is not None and s["drop_pct"] <= limit]
        bad = [s for s in ss if s["drop_pct"] is None or s["drop_pct"] > limit]
        best = max(ok, key=lambda s: s["rate"]) if ok else None
        first_bad = min(bad, key=lambda s: s["rate"]) if bad else None
        # Which side stopped the ramp: the server dropped, or the generator could not send more
        # (or lost the answers itself).
        if best and first_bad and first_bad["rate"] > best["rate"]:
            limited_by = "server"
            if (first_bad.get("lost_after_server") or 0) > (first_bad.get("lost_before_server") or 0):
                limited_by = "generator (the server answered; the replies were lost on its side)"
            elif first_bad.get("generator_bound"):
                limited_by = "server (generator also short of the asked rate)"
        elif best and best.get("generator_bound"):
            limited_by = "generator (could not send the rate asked)"
        elif best:
            limited_by = "not reached (ramp or budget ended)"
        elif first_bad and (first_bad.get("lost_after_server") or 0) > (
                first_bad.get("lost_before_server") or 0):
            limited_by = "generator (no clean step; the server answered, replies lost on its side)"
        else:
            limited_by = "server (no clean step)"
        under_target = [s for s in ok if s["drop_pct"] <= target]
        results.append({
            "server": server, "generator": gen,
            "highest_clean_rate": best["rate"] if best else 0,
            "highest_clean_sent_rate": best["sent_rate"] if best else 0,
            "drop_pct_at_highest_clean": best["drop_pct"] if best else None,
            "highest_rate_under_target": max((s["rate"] for s in under_target), default=0),
            "first_failing_rate": first_bad["rate"] if first_bad else None,
            "drop_pct_at_first_failing": first_bad["drop_pct"] if first_bad else None,
            "server_cores_at_highest_clean": best.get("server_cores") if best else None,
            "server_peak_cores_at_highest_clean": best.get("server_peak_cores") if best else None,
            "generator_cores_at_highest_clean": best.get("generator_cores") if best else None,
            "generator_peak_cores_at_highest_clean":
                best.get("generator_peak_cores") if best else None,
            "server_cpu_us_per_ack_at_highest_clean":
                best.get("server_cpu_us_per_ack") if best else None,
            "limited_by": limited_by,
            "steps": ss,
        })
    ratios = {}
    by = {(r["server"], r["generator"]): r for r in results}
    for (server, gen), r in by.items():
        if server == "tandemd":
            continue
        t = by.get(("tandemd", gen))
        if t and r["highest_clean_sent_rate"]:
            ratios[f"tandemd/{server} ({gen})"] = round(
                t["highest_clean_sent_rate"] / r["highest_clean_sent_rate"], 2)
    loads = [r.get("loadavg") for r in records if r.get("loadavg") is not None]
    out = dict(meta)
    out["generator_ceilings"] = ceilings
    out["results"] = results
    out["ratio_highest_clean_sent_rate"] = ratios
    out["loadavg_during_steps"] = {"min": min(loads), "max": max(loads)} if loads else None
    print(json.dumps(out), flush=True)

    # The Markdown table for docs/benchmarks.md, on stderr.
    w = sys.stderr.write
    w("\n| server | generator | highest clean rate asked (DISCOVER/s sent) | drop % there | "
      "first failing rate (drop %) | server cores: run / peak 1 s | server CPU µs per ACK | "
      "generator cores: run / peak 1 s | limited by |\n")
    w("|---|---|---|---|---|---|---|---|---|\n")
    for r in results:
        ff = (f"{r['first_failing_rate']} ({r['drop_pct_at_first_failing']})"
              if r["first_failing_rate"] else "—")
        w(f"| {r['server']} | {r['generator']} | {r['highest_clean_rate']} "
          f"({r['highest_clean_sent_rate']}) | {r['drop_pct_at_highest_clean']} | {ff} | "
          f"{r['server_cores_at_highest_clean']} / {r['server_peak_cores_at_highest_clean']} | "
          f"{r['server_cpu_us_per_ack_at_highest_clean']} | "
          f"{r['generator_cores_at_highest_clean']} / "
          f"{r['generator_peak_cores_at_highest_clean']} | {r['limited_by']} |\n")
    w("\nsteps (rate asked: median drop % [each run], sent/s, server cores run/peak, generator "
      "cores run/peak, others' cores incl. softirq and steal, load, packets lost before (in the "
      "server's socket) / after the server):\n")
    for r in results:
        w(f"- {r['server']} × {r['generator']}: " + "; ".join(
            f"{s['rate']}: {s['drop_pct']}% {s['runs_drop_pct']}, {s['sent_rate']}/s, "
            f"{s['server_cores']}/{s['server_peak_cores']}, {s['generator_cores']}/"
            f"{s['generator_peak_cores']}, {s['others_cores']}, {s['loadavg']}, "
            f"{s['lost_before_server']} ({s['lost_in_server_socket']})/{s['lost_after_server']}"
            for s in r["steps"]) + "\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "step":
        step(argv)
    elif cmd == "kea-stats":
        kea_stats(argv)
    elif cmd == "sample":
        sample(argv)
    elif cmd == "summary":
        summary(argv)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
