#!/usr/bin/python3
"""Make doc/metrics.png: rblmuxd under a dnsperf load, scraped every 2 s.

Runs on loopback only, for about 80 s: the black-box tests' lists (rbldnsd)
plus a stand-in list that goes silent after 25 s and comes back at 50 s;
dnsperf asks about 3,000 addresses at 400 questions a second; answers are
cached for 15 s at most, so the lists keep being asked. Needs a built
rblmuxd (RBLMUX_BUILD, default build), dnsperf and python3-matplotlib.

    /usr/bin/python3 doc/metrics-plot.py [out.png]
"""

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import harness  # noqa: E402

import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DURATION, STEP, SILENT_AT, BACK_AT = 80, 2.0, 25, 50


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def total(sample, name, *labels):
    return sum(v for k, v in sample.items()
               if k.split("{")[0] == name and all(lab in k for lab in labels))


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "metrics.png")
    port = harness.free_port(("127.0.0.1",))
    sources = harness.standard_sources() + [
        harness.source("flaky", 2, {"192.0.2.1": {}}, backend="standin", timeout="500ms")]
    stack = harness.Stack(Path("/tmp/rblmux-metrics-plot"), sources,
                          server={"metrics": f"127.0.0.1:{port}"},
                          upstream={"probe_interval": "5s"}, cache={"min_ttl": "5s", "max_ttl": "15s"})
    try:
        harness.wait_all_ok(stack)
        qfile = Path("/tmp/rblmux-metrics-plot/queries")
        # One question in ten about an address every list lists.
        qfile.write_text("".join(("1.2.0.192" if i % 10 == 0 else f"{i % 250}.{i // 250}.2.192")
                                 + ".rblmux.internal A\n" for i in range(3000)))
        perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(stack.port), "-d",
                                 str(qfile), "-l", str(DURATION), "-Q", "400", "-t", "3"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        samples = []
        silent = back = False
        while time.monotonic() - t0 < DURATION:
            t = time.monotonic() - t0
            if t >= SILENT_AT and not silent:
                stack.standin.set("flaky.bl.invalid", mode="drop")
                silent = True
            if t >= BACK_AT and not back:
                stack.standin.set("flaky.bl.invalid", mode="normal")
                back = True
            samples.append((t, scrape(port)))
            time.sleep(STEP - (time.monotonic() - t0) % STEP)
        perf.wait(30)
    finally:
        stack.stop()

    ts = [t for t, _ in samples[1:]]

    def rate(name, *labels):
        return [(total(b, name, *labels) - total(a, name, *labels)) / (tb - ta)
                for (ta, a), (tb, b) in zip(samples, samples[1:])]

    fig, ax = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    fig.suptitle("rblmuxd under load (dnsperf, 400 q/s over 3,000 addresses); "
                 f"list 'flaky' silent from {SILENT_AT} s to {BACK_AT} s", fontsize=11)
    a = ax[0][0]
    for rc in ("NOERROR", "NXDOMAIN", "SERVFAIL"):
        a.plot(ts, rate("rblmux_queries_total", 'view="combined"', f'rcode="{rc}"'), label=rc)
    a.set_title("answers/s by rcode  (rblmux_queries_total)", fontsize=10)
    a = ax[0][1]
    tiers = ("mem", "upstream", "coalesced", "stale")
    a.stackplot(ts, *[rate("rblmux_lookups_total", f'tier="{t}"') for t in tiers], labels=tiers)
    a.set_title("list answers/s by tier  (rblmux_lookups_total)", fontsize=10)
    a = ax[1][0]
    a.plot(ts, rate("rblmux_upstream_queries_total", 'source="alpha"'), label="alpha, all",
           color="grey", lw=1)
    a.plot(ts, rate("rblmux_upstream_queries_total", 'source="flaky"'), label="flaky, all",
           color="tab:blue", lw=2.5, alpha=0.6)
    a.plot(ts, rate("rblmux_upstream_queries_total", 'source="flaky"', 'result="timeout"'),
           label="flaky, timeouts", color="tab:red", lw=1.5)
    a.set_title("upstream questions/s  (rblmux_upstream_queries_total)", fontsize=10)
    a.set_xlabel("seconds")
    a = ax[1][1]
    a.plot(ts, [s['rblmux_source_state{source="flaky",state="down"}'] for _, s in samples[1:]],
           label="flaky down", drawstyle="steps-post")
    a.plot(ts, [s['rblmux_source_error_ratio{source="flaky"}'] for _, s in samples[1:]],
           label="flaky error ratio")
    a.set_ylim(-0.05, 1.1)
    a.set_title("health  (rblmux_source_state, rblmux_source_error_ratio)", fontsize=10)
    a.set_xlabel("seconds")
    for row in ax:
        for a in row:
            a.grid(alpha=0.3)
            a.legend(fontsize=8, loc="upper right")
            a.axvspan(SILENT_AT, BACK_AT, color="grey", alpha=0.08)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(out)


if __name__ == "__main__":
    main()
