// Graphile Worker 0.17.3 on PostgreSQL 15: the four workloads of `hack/bench.sh peers` (docs/benchmarks-peers.md).
//   node graphile.mjs run --pg URL --pg-pid PID --dir DIR [--quick] [--cases ABCD]    the load generator (JSON lines)
//   node graphile.mjs worker --pg URL --dir DIR --id w1 --concurrency N [--local-queue N]   one worker process
// A worker runs the tasks in-process (Graphile has no separate app): each task logs its start and end to
// DIR/<id>.events, from which the load generator computes rates, lateness and duplicates.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { run, makeWorkerUtils, Logger } from "graphile-worker";
import * as L from "./lib.mjs";

const args = L.parseArgs(process.argv.slice(2));
const me = fileURLToPath(import.meta.url);
const quiet = new Logger(() => (level, message) => {
  if (level === "error") process.stderr.write(`graphile: ${message}\n`);
});
const POLL_MS = 200; // pollInterval: future jobs (the hops' second step) are found by polling
const CONCURRENCY = 32; // jobs at once per worker process in A-C (D: 10)
const LOCAL_QUEUE = 64; // jobs fetched (and locked) per query in A-C (D: off, so a worker holds only what it runs)


async function worker() {
  const log = new L.EventLog(`${args.dir}/${args.id}.events`);
  const taskList = {
    noop: async (p) => {
      log.add("start", p.wf, 1);
      log.add("end", p.wf, 1);
    },
    hop1: async (p, helpers) => {
      log.add("start", p.wf, 1);
      const t = Date.now();
      log.add("end", p.wf, 1, t);
      // The durable sleep: the second step is a job due 1 s later (a job key makes a re-run add it once).
      await helpers.addJob("hop2", { wf: p.wf }, { runAt: new Date(t + 1000), jobKey: `hop2-${p.wf}` });
    },
    hop2: async (p) => {
      log.add("start", p.wf, 2);
      log.add("end", p.wf, 2);
    },
    slow: async (p) => {
      log.add("start", p.wf, 1);
      log.flush();
      await L.sleep(2000); // the 2 s job of case D
      log.add("end", p.wf, 1);
      log.flush();
    },
  };
  const concurrency = Number(args.concurrency);
  const localQueue = Number(args["local-queue"] ?? -1);
  const runner = await run({
    connectionString: args.pg,
    concurrency,
    maxPoolSize: Math.max(10, Math.min(concurrency + 2, 34)),
    pollInterval: POLL_MS,
    noHandleSignals: true,
    logger: quiet,
    taskList,
    preset: { worker: localQueue > 1 ? { localQueue: { size: localQueue } } : {} },
  });
  process.on("SIGTERM", async () => {
    await runner.stop();
    log.flush();
    process.exit(0);
  });
  process.stdout.write("ready\n");
}

class Workers {
  constructor(dir, concurrency, localQueue) {
    this.procs = [];
    this.dir = dir;
    this.concurrency = concurrency;
    this.localQueue = localQueue;
  }
  async start(n = 2) {
    const ready = [];
    for (let i = 1; i <= n; i++) {
      const p = spawn(process.execPath, [me, "worker", "--pg", args.pg, "--dir", this.dir, "--id", `w${i}`,
        "--concurrency", String(this.concurrency), "--local-queue", String(this.localQueue)],
      { stdio: ["ignore", "pipe", "inherit"] });
      this.procs.push(p);
      L.track(p);
      ready.push(new Promise((resolve, reject) => {
        p.stdout.on("data", (d) => d.toString().includes("ready") && resolve());
        p.on("exit", (code) => reject(new Error(`graphile worker w${i} exited (${code})`)));
      }));
    }
    await Promise.race([Promise.all(ready), L.sleep(30000).then(() => { throw new Error("workers did not start"); })]);
  }
  pids() {
    return this.procs.filter((p) => p.exitCode == null && p.signalCode == null).map((p) => p.pid);
  }
  async stop() {
    await Promise.all(this.procs.map((p) => new Promise((resolve) => {
      if (p.exitCode != null || p.signalCode != null) return resolve();
      const t = setTimeout(() => p.kill("SIGKILL"), 10000);
      p.on("exit", () => { clearTimeout(t); resolve(); });
      p.kill("SIGTERM");
    })));
  }
}


async function main() {
  L.guardChildren();
  const S = L.sizes(!!args.quick);
  const cases = (args.cases ?? "ABCD").split("");
  const utils = await makeWorkerUtils({ connectionString: args.pg, logger: quiet });
  await utils.migrate();
  const pending = async () =>
    Number((await utils.withPgClient((c) => c.query("select count(*) as n from graphile_worker._private_jobs")))
      .rows[0].n);
  const waitEmpty = async (capS) => {
    const until = Date.now() + capS * 1000;
    while (Date.now() < until) {
      if ((await pending()) === 0) return true;
      await L.sleep(100);
    }
    return false;
  };
  const storePid = Number(args["pg-pid"]);
  const base = { system: "graphile", store: "postgresql-15", versions: "graphile-worker 0.17.3, PostgreSQL 15",
    workers: 2, durability: "synchronous_commit=on, fsync=on" };
  const run_id = Date.now().toString(36);
  const wfIds = (prefix, n) => Array.from({ length: n }, (_, i) => `${run_id}-${prefix}-${i}`);
  try {
    for (const c of cases) {
      const dir = L.caseDir(args.dir, c);
      const w = c === "D" ? new Workers(dir, 10, -1) : new Workers(dir, CONCURRENCY, LOCAL_QUEUE);
      const groups = { store: () => [storePid], workers: () => w.pids(), loadgen: null };
      let line;
      if (c === "A" || c === "B") {
        const n = c === "A" ? S.A : S.B;
        const ids = wfIds(c, n);
        L.progress("graphile", `case ${c}: adding ${n} ${c === "A" ? "noop" : "hop"} jobs in one call`);
        await utils.addJobs(ids.map((wf) => ({ identifier: c === "A" ? "noop" : "hop1", payload: { wf } })));
        line = await L.measureCase(groups, async (cpuNow) => {
          const due = Date.now();
          await w.start();
          const finished = await waitEmpty(300);
          const cpu = cpuNow();
          await w.stop();
          return { ...L.dueAtOnceMetrics(c, ids, L.readEvents(dir), due, cpu), finished,
            due_at_once: "jobs added in one call before the workers start" };
        });
      } else if (c === "C") {
        await w.start();
        line = await L.measureCase(groups, async (cpuNow) => {
          const hops = wfIds("Ch", S.C_hops), noops = wfIds("Cn", S.C_noop);
          L.progress("graphile", `case C: ${S.C_hops} hops at ${S.C_hop_rate}/s, then ${S.C_noop} noop at ${S.C_noop_rate}/s`);
          await L.paced(hops, S.C_hop_rate, (wf) => utils.addJob("hop1", { wf }));
          const hopsDone = await waitEmpty(60);
          const submitted = new Map();
          await L.paced(noops, S.C_noop_rate, (wf) => {
            submitted.set(wf, Date.now());
            return utils.addJob("noop", { wf });
          });
          const noopDone = await waitEmpty(60);
          const cpu = cpuNow();
          await w.stop();
          return { ...L.lightMetrics(L.readEvents(dir), hops, noops, submitted, S, cpu), finished: hopsDone && noopDone };
        });
      } else if (c === "D") {
        await w.start();
        line = await L.measureCase(groups, async (cpuNow) => {
          const ids = wfIds("D", S.D);
          L.progress("graphile", `case D: ${S.D} jobs of 2 s, 10 at a time per worker; kill -9 of w1`);
          await utils.addJobs(ids.map((wf) => ({ identifier: "slow", payload: { wf } })));
          const victim = w.procs[0];
          // Wait until the victim runs 10 (its concurrency), then kill it in the middle of them.
          const t0 = Date.now();
          while (L.inFlight(dir, "w1").length < 10 && Date.now() - t0 < 10000) await L.sleep(50);
          await L.sleep(500);
          const victimCpu = L.treeCpu([victim.pid]);
          const held = L.inFlight(dir, "w1");
          victim.kill("SIGKILL");
          const killed = Date.now();
          L.progress("graphile", `case D: killed w1 holding ${held.length} jobs; waiting up to ${L.D_CAP_S} s`);
          const { done: doneElsewhere, at: all } = await L.waitDoneElsewhere(dir, held, "w1", killed);
          const cpu = cpuNow();
          cpu.workers = L.round(cpu.workers + victimCpu, 2);
          const locked = Number((await utils.withPgClient((cl) =>
            cl.query("select count(*) as n from graphile_worker._private_jobs where locked_by is not null"))).rows[0].n);
          await w.stop();
          const ev = L.readEvents(dir);
          const takeover = doneElsewhere.length === held.length ? L.round((all - killed) / 1000, 2) : null;
          const rest = new Set(ev.filter((e) => e.ev === "end").map((e) => e.wf)).size;
          await utils.withPgClient((cl) => cl.query("delete from graphile_worker._private_jobs"));
          return { case: "D", n: S.D, per_worker: 10, held: held.length, held_done_elsewhere: doneElsewhere.length,
            takeover_s: takeover, cap_s: L.D_CAP_S, completed_within_cap: rest, still_locked_at_cap: locked,
            duplicates: L.duplicates(ev), steps: S.D, cpu_s: cpu, cpu_us_per_step: L.cpuPerStep(cpu, rest),
            note: takeover == null
              ? "no automatic takeover within cap: Graphile Worker OSS releases the locks of a dead worker after 4 h " +
                "(jobs locked longer than 4 h are reset, scanned every 8-10 min: minResetLockedInterval 480000 ms, " +
                "maxResetLockedInterval 600000 ms)"
              : undefined };
        });
      }
      const config = c === "D" ? { concurrency: 10, local_queue: null, poll_interval_ms: POLL_MS }
        : { concurrency: CONCURRENCY, local_queue: LOCAL_QUEUE, poll_interval_ms: POLL_MS };
      L.emit({ ...base, ...config, ...line });
    }
  } finally {
    await utils.release();
  }
}

if (args._[0] === "worker") await worker();
else await main();
