// Restate 1.7.12 (server) with the TypeScript SDK: the four workloads of `hack/bench.sh peers`
// (docs/benchmarks-peers.md). The server runs already (run-peers.sh starts it); this script starts the service
// endpoint, registers it, and drives the cases.
//   node restate.mjs run --dir DIR --server-pid PID [--quick] [--cases ABCD]     the load generator (JSON lines)
//   node restate.mjs endpoint --dir DIR --port 9080 --workers 2                  the endpoint (node cluster)
// Two worker processes share 127.0.0.1:9080 through node's cluster module (the primary only hands connections
// over): Restate knows one deployment URL, as it would behind a Kubernetes Service, and after a kill -9 its
// retries reconnect to the survivor. Handlers log their start and end to DIR/<worker>.events.
import cluster from "node:cluster";
import http2 from "node:http2";
import { spawn } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import * as L from "./lib.mjs";

const args = L.parseArgs(process.argv.slice(2));
const me = fileURLToPath(import.meta.url);
const INGRESS = "http://127.0.0.1:8080";
const ADMIN = "http://127.0.0.1:9070";
const PORT = 9080;
const SLOTS = 20; // case D: 20 keys of a virtual object, so at most 20 (10 per worker) 2 s jobs run at once


async function endpoint() {
  if (cluster.isPrimary) {
    const n = Number(args.workers ?? 2);
    for (let i = 1; i <= n; i++) cluster.fork({ BENCH_WORKER: `w${i}` });
    let ready = 0;
    cluster.on("message", (w, m) => {
      if (m === "ready" && ++ready === n) process.stdout.write(`ready ${Object.values(cluster.workers).map((x) => x.process.pid).join(" ")}\n`);
    });
    // No replacement for a killed worker: the benchmark wants to see the survivor take over.
    process.on("SIGTERM", () => {
      for (const w of Object.values(cluster.workers)) w.process.kill("SIGTERM");
      setTimeout(() => process.exit(0), 200);
    });
    return;
  }
  // The SDK calls Promise.withResolvers (Node >= 22); this is the standard polyfill for Node 20.
  Promise.withResolvers ??= function withResolvers() {
    let resolve, reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
  const restate = await import("@restatedev/restate-sdk");
  const log = new L.EventLog(`${args.dir}/${process.env.BENCH_WORKER}.events`);
  const bench = restate.service({
    name: "bench",
    handlers: {
      // A job without journal entries: the handler body is the step (a retry runs it again).
      noop: async (ctx, p) => {
        log.add("start", p.wf, 1);
        log.add("end", p.wf, 1);
      },
      // Step, durable sleep, step: the steps are ctx.run, so a replay after the sleep does not run step 1 again.
      hop: async (ctx, p) => {
        await ctx.run("s1", () => {
          log.add("start", p.wf, 1);
          const t = Date.now();
          log.add("end", p.wf, 1, t);
          return t;
        });
        await ctx.sleep(1000);
        await ctx.run("s2", () => {
          log.add("start", p.wf, 2);
          log.add("end", p.wf, 2);
        });
      },
    },
  });
  const slot = restate.object({
    name: "slot",
    handlers: {
      slow: async (ctx, p) => {
        log.add("start", p.wf, 1);
        log.flush();
        await new Promise((r) => setTimeout(r, 2000)); // the 2 s job of case D (not a durable sleep)
        log.add("end", p.wf, 1);
        log.flush();
      },
    },
  });
  const ep = restate.endpoint().bind(bench).bind(slot).setLogger(() => {});
  const server = http2.createServer(ep.http2Handler());
  server.listen(Number(args.port ?? PORT), "127.0.0.1", () => process.send("ready"));
  process.on("SIGTERM", () => {
    log.flush();
    process.exit(0);
  });
}

class Endpoint {
  constructor(dir) {
    this.dir = dir;
  }
  async start() {
    this.proc = spawn(process.execPath, [me, "endpoint", "--dir", this.dir, "--port", String(PORT), "--workers", "2"],
      { stdio: ["ignore", "pipe", "inherit"] });
    this.workerPids = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("restate endpoint did not start")), 30000);
      this.proc.stdout.on("data", (d) => {
        const m = d.toString().match(/ready ([\d ]+)/);
        if (m) {
          clearTimeout(t);
          resolve(m[1].trim().split(" ").map(Number));
        }
      });
      this.proc.on("exit", (code) => reject(new Error(`restate endpoint exited (${code})`)));
    });
    L.track(this.proc, this.workerPids);
  }
  pids() {
    return this.proc && this.proc.exitCode == null ? [this.proc.pid] : [];
  }
  async stop() {
    if (!this.proc || this.proc.exitCode != null || this.proc.signalCode != null) return;
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        for (const p of [...this.workerPids, this.proc.pid]) {
          try { process.kill(p, "SIGKILL"); } catch { /* gone */ }
        }
      }, 10000);
      this.proc.on("exit", () => { clearTimeout(t); resolve(); });
      this.proc.kill("SIGTERM");
    });
  }
}

async function post(url, body) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify(body) });
      const text = await r.text();
      if (!r.ok) throw new Error(`${url}: ${r.status} ${text}`);
      return text;
    } catch (e) {
      if (attempt >= 5) throw e;
      await L.sleep(200 * (attempt + 1));
    }
  }
}

// Sends every invocation with `window` requests in flight; `delayOf(i)` gives the delay in ms (or 0).
async function sendAll(items, window, delayOf) {
  let next = 0;
  const one = async () => {
    while (next < items.length) {
      const i = next++;
      const d = Math.max(0, Math.round(delayOf(i)));
      await post(`${INGRESS}/${items[i].path}/send${d > 0 ? `?delay=${d}ms` : ""}`, items[i].body);
    }
  };
  await Promise.all(Array.from({ length: window }, one));
}

function countEnds(dir) {
  let n = 0;
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith(".events")) continue;
    const text = fs.readFileSync(`${dir}/${name}`, "utf8");
    for (let i = text.indexOf('"ev":"end"'); i >= 0; i = text.indexOf('"ev":"end"', i + 1)) n++;
  }
  return n;
}

async function waitEnds(dir, target, capS) {
  const until = Date.now() + capS * 1000;
  while (Date.now() < until) {
    if (countEnds(dir) >= target) return true;
    await L.sleep(200);
  }
  return false;
}


async function main() {
  L.guardChildren();
  const S = L.sizes(!!args.quick);
  const cases = (args.cases ?? "ABCD").split("");
  const serverPid = Number(args["server-pid"]);
  const base = { system: "restate", store: "restate-server", versions: "restate-server 1.7.12, @restatedev/restate-sdk 1.16.9",
    workers: 2, durability: "Restate defaults (single node, replicated loglet, RocksDB WAL fsync on)" };
  const run_id = Date.now().toString(36);
  const wfIds = (prefix, n) => Array.from({ length: n }, (_, i) => `${run_id}-${prefix}-${i}`);
  let registered = false;
  for (const c of cases) {
    const dir = L.caseDir(args.dir, c);
    const ep = new Endpoint(dir);
    await ep.start();
    if (!registered) {
      await post(`${ADMIN}/deployments`, { uri: `http://127.0.0.1:${PORT}`, force: true });
      registered = true;
      await L.sleep(1000); // the registration reaches the ingress
    }
    const groups = { store: () => [serverPid], workers: () => ep.pids(), loadgen: null };
    let line;
    if (c === "A" || c === "B") {
      const n = c === "A" ? S.A : S.B;
      const ids = wfIds(c, n);
      const items = ids.map((wf) => ({ path: c === "A" ? "bench/noop" : "bench/hop", body: { wf } }));
      line = await L.measureCase(groups, async (cpuNow) => {
        // All due at one instant: far enough ahead for every send to be accepted before it.
        const due = Date.now() + Math.round(1.5 * n) + 3000;
        L.progress("restate", `case ${c}: sending ${n} invocations due in ${((due - Date.now()) / 1000).toFixed(1)} s`);
        await sendAll(items, 64, () => due - Date.now());
        const sentBy = Date.now();
        if (sentBy > due) L.progress("restate", `case ${c}: the sends ended ${sentBy - due} ms after the due time`);
        const lastStep = c === "A" ? 1 : 2;
        const finished = await waitEnds(dir, n * lastStep, 300 + (due - Date.now()) / 1000);
        await L.sleep(100);
        const cpu = cpuNow();
        return { ...L.dueAtOnceMetrics(c, ids, L.readEvents(dir), due, cpu), finished,
          sends_done_before_due: sentBy <= due,
          due_at_once: "each invocation sent with ?delay= so that all are due at one instant" };
      });
    } else if (c === "C") {
      line = await L.measureCase(groups, async (cpuNow) => {
        const hops = wfIds("Ch", S.C_hops), noops = wfIds("Cn", S.C_noop);
        L.progress("restate", `case C: ${S.C_hops} hops at ${S.C_hop_rate}/s, then ${S.C_noop} noop at ${S.C_noop_rate}/s`);
        await L.paced(hops, S.C_hop_rate, (wf) => post(`${INGRESS}/bench/hop/send`, { wf }));
        const hopsDone = await waitEnds(dir, 2 * hops.length, 60);
        const submitted = new Map();
        await L.paced(noops, S.C_noop_rate, (wf) => {
          submitted.set(wf, Date.now());
          return post(`${INGRESS}/bench/noop/send`, { wf });
        });
        const noopDone = await waitEnds(dir, 2 * hops.length + noops.length, 60);
        await L.sleep(100);
        const cpu = cpuNow();
        return { ...L.lightMetrics(L.readEvents(dir), hops, noops, submitted, S, cpu), finished: hopsDone && noopDone };
      });
    } else if (c === "D") {
      line = await L.measureCase(groups, async (cpuNow) => {
        const ids = wfIds("D", S.D);
        L.progress("restate", `case D: ${S.D} jobs of 2 s on ${SLOTS} virtual-object keys; kill -9 of worker w1`);
        await sendAll(ids.map((wf, i) => ({ path: `slot/k${i % SLOTS}/slow`, body: { wf } })), 16, () => 0);
        const t0 = Date.now();
        while (L.inFlight(dir, "w1").length < 1 && Date.now() - t0 < 10000) await L.sleep(50);
        await L.sleep(1000); // in the middle of its jobs
        // The cluster primary reaps it, so its CPU stays in the endpoint's process tree.
        const victimPid = ep.workerPids[0];
        const held = L.inFlight(dir, "w1");
        process.kill(victimPid, "SIGKILL");
        const killed = Date.now();
        L.progress("restate", `case D: killed w1 (pid ${victimPid}) holding ${held.length} jobs; waiting up to ${L.D_CAP_S} s`);
        const { done: doneElsewhere, at: all } = await L.waitDoneElsewhere(dir, held, "w1", killed);
        const takeover = doneElsewhere.length === held.length ? L.round((all - killed) / 1000, 2) : null;
        // The rest of the jobs, for the duplicate count (bounded by the same cap).
        await waitEnds(dir, S.D, Math.max(5, L.D_CAP_S - (Date.now() - killed) / 1000));
        const cpu = cpuNow();
        const ev = L.readEvents(dir);
        const rest = new Set(ev.filter((e) => e.ev === "end").map((e) => e.wf)).size;
        return { case: "D", n: S.D, per_worker: 10, held: held.length, held_done_elsewhere: doneElsewhere.length,
          takeover_s: takeover, cap_s: L.D_CAP_S, completed_within_cap: rest, duplicates: L.duplicates(ev), steps: S.D,
          cpu_s: cpu, cpu_us_per_step: L.cpuPerStep(cpu, rest),
          note: "at most 20 jobs at once via 20 virtual-object keys (Restate queues the rest per key); the killed " +
            "worker's invocations are retried by the server and reach the survivor through the shared port" +
            (takeover == null ? "; no automatic takeover within cap" : "") };
      });
    }
    await ep.stop();
    L.emit({ ...base, ...line });
  }
}

if (args._[0] === "endpoint") await endpoint();
else await main();
