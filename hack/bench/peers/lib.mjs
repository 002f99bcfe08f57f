// Shared by the peer load generators (graphile.mjs, restate.mjs): case sizes, CPU of process trees from /proc,
// load averages, the per-step event logs the workers write, percentiles, and the JSON line of a case.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const CLK_TCK = 100; // Linux USER_HZ for /proc/<pid>/stat
export const D_CAP_S = 60;

// Case sizes: full (the default) and --quick.
export function sizes(quick) {
  return quick
    ? { A: 2000, B: 500, C_hops: 50, C_hop_rate: 20, C_noop: 100, C_noop_rate: 50, D: 40 }
    : { A: 20000, B: 5000, C_hops: 200, C_hop_rate: 20, C_noop: 500, C_noop_rate: 50, D: 200 };
}

export function parseArgs(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) {
      const key = a.slice(2);
      if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) out[key] = argv[++i];
      else out[key] = true;
    } else out._.push(a);
  }
  return out;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const progress = (who, text) => process.stderr.write(`${who}: ${text}\n`);

// /proc/<pid>/stat: [ppid, utime+stime, cutime+cstime] in clock ticks, or null when the process is gone.
function statOf(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // f[0] is field 3 (state): field n is f[n - 3].
  return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

function childrenMap() {
  const map = new Map();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = statOf(name);
    if (!s) continue;
    if (!map.has(s.ppid)) map.set(s.ppid, []);
    map.get(s.ppid).push(Number(name));
  }
  return map;
}

// CPU seconds of each process tree (the root, its live descendants, and the children they already reaped).
export function treeCpu(pids) {
  const kids = childrenMap();
  let ticks = 0;
  const seen = new Set();
  const visit = (pid) => {
    if (seen.has(pid)) return;
    seen.add(pid);
    const s = statOf(pid);
    if (!s) return;
    ticks += s.own + s.reaped;
    for (const c of kids.get(pid) ?? []) visit(c);
  };
  for (const p of pids) if (p) visit(p);
  return ticks / CLK_TCK;
}

export const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

export const loadavg = () => fs.readFileSync("/proc/loadavg", "utf8").trim().split(" ").slice(0, 3).join(" ");

export function percentile(values, p) {
  if (!values.length) return null;
  const v = [...values].sort((a, b) => a - b);
  const rank = Math.ceil(p * v.length);
  return v[Math.min(v.length - 1, Math.max(0, rank - 1))];
}

export const round = (v, d = 3) => (v == null || !Number.isFinite(v) ? null : Math.round(v * 10 ** d) / 10 ** d);

// Workers append JSON lines {ev, wf, step, t} to their own file, flushed every 20 ms (a kill -9 loses at most that).
export class EventLog {
  constructor(file) {
    this.fd = fs.openSync(file, "a");
    this.buf = [];
    this.timer = setInterval(() => this.flush(), 20);
    this.timer.unref();
  }
  add(ev, wf, step, t = Date.now()) {
    this.buf.push(JSON.stringify({ ev, wf, step, t }));
  }
  flush() {
    if (!this.buf.length) return;
    fs.writeSync(this.fd, this.buf.join("\n") + "\n");
    this.buf = [];
  }
}

export function readEvents(dir) {
  const out = [];
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith(".events")) continue;
    const worker = name.replace(/\.events$/, "");
    for (const line of fs.readFileSync(path.join(dir, name), "utf8").split("\n")) {
      if (!line) continue;
      try {
        out.push({ ...JSON.parse(line), worker });
      } catch {
        // a line cut by kill -9
      }
    }
  }
  return out;
}

// (wf, step) pairs that ended more than once: an executed-and-finished step counted twice.
export function duplicates(events) {
  const ends = new Map();
  for (const e of events) {
    if (e.ev !== "end") continue;
    const k = `${e.wf}/${e.step}`;
    ends.set(k, (ends.get(k) ?? 0) + 1);
  }
  let dup = 0;
  for (const n of ends.values()) if (n > 1) dup += n - 1;
  return dup;
}

// Finished steps per worker process (how the work was shared).
export function byWorker(events) {
  const out = {};
  for (const e of events) if (e.ev === "end") out[e.worker] = (out[e.worker] ?? 0) + 1;
  return out;
}

// First "end" per (wf, step) → time.
export function endTimes(events) {
  const m = new Map();
  for (const e of events) if (e.ev === "end" && !m.has(`${e.wf}/${e.step}`)) m.set(`${e.wf}/${e.step}`, e.t);
  return m;
}
export function startTimes(events) {
  const m = new Map();
  for (const e of events) if (e.ev === "start" && !m.has(`${e.wf}/${e.step}`)) m.set(`${e.wf}/${e.step}`, e.t);
  return m;
}

// Lateness of hops wf ids: start of step 2 − (end of step 1 + 1 s), in ms.
export function hopLateness(events, ids) {
  const ends = endTimes(events);
  const starts = startTimes(events);
  const out = [];
  for (const id of ids) {
    const e1 = ends.get(`${id}/1`);
    const s2 = starts.get(`${id}/2`);
    if (e1 != null && s2 != null) out.push(s2 - (e1 + 1000));
  }
  return out;
}

// Measures a case: CPU of each group and load averages around `body`, which returns the metrics.
export async function measureCase(groups, body) {
  const before = { load: loadavg(), cpu: {} };
  for (const [g, pidsFn] of Object.entries(groups)) before.cpu[g] = g === "loadgen" ? selfCpu() : treeCpu(pidsFn());
  const metrics = await body(() => {
    // Called by the case at its end, before it stops its workers: CPU deltas of the live processes.
    const cpu = {};
    for (const [g, pidsFn] of Object.entries(groups))
      cpu[g] = round((g === "loadgen" ? selfCpu() : treeCpu(pidsFn())) - before.cpu[g], 2);
    return cpu;
  });
  return { ...metrics, loadavg_before: before.load, loadavg_after: loadavg() };
}

export function cpuPerStep(cpu, steps) {
  const out = {};
  let total = 0;
  for (const [g, s] of Object.entries(cpu)) {
    out[g] = steps > 0 && s != null ? Math.round((s * 1e6) / steps) : null;
    total += s ?? 0;
  }
  out.total = steps > 0 ? Math.round((total * 1e6) / steps) : null;
  return out;
}

export function emit(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

export const hostInfo = () => ({ cores: os.cpus().length });

// A fresh directory for one case's event files.
export function caseDir(base, name) {
  const d = `${base}/case-${name}`;
  fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(d, { recursive: true });
  return d;
}

// Calls `fn(id)` for each id at `rate` per second (not awaiting the previous call: a steady arrival rate).
export async function paced(ids, rate, fn) {
  const start = Date.now();
  const calls = [];
  for (let i = 0; i < ids.length; i++) {
    const wait = start + (i * 1000) / rate - Date.now();
    if (wait > 0) await sleep(wait);
    calls.push(fn(ids[i]));
  }
  await Promise.all(calls);
}

// The load generator's children (worker processes, and the processes they fork when known): killed by pid when
// the load generator exits for any reason but SIGKILL (a timeout's SIGTERM, ^C, an exception).
const children = new Set();
export function track(proc, extraPids = []) {
  const pids = [proc.pid, ...extraPids];
  for (const p of pids) children.add(p);
  proc.on("exit", () => {
    for (const p of pids) children.delete(p);
  });
}
export function guardChildren() {
  process.on("exit", () => {
    for (const p of children) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
  for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(130));
}

// Cases A and B: rate (completed / (last step end − first step start)), time from the due instant, lateness (B).
export function dueAtOnceMetrics(c, ids, ev, due, cpu) {
  const starts = startTimes(ev), ends = endTimes(ev);
  const lastStep = c === "A" ? 1 : 2;
  const first = Math.min(...ids.map((id) => starts.get(`${id}/1`) ?? Infinity));
  const last = Math.max(...ids.map((id) => ends.get(`${id}/${lastStep}`) ?? -Infinity));
  const done = ids.filter((id) => ends.has(`${id}/${lastStep}`)).length;
  const rate = round(done / ((last - first) / 1000), 1);
  const steps = ids.length * lastStep;
  const m = { case: c, n: ids.length, completed: done, elapsed_s: round((last - first) / 1000),
    from_due_s: round((last - due) / 1000), duplicates: duplicates(ev), steps_by_worker: byWorker(ev), steps,
    cpu_s: cpu, cpu_us_per_step: cpuPerStep(cpu, steps) };
  if (c === "A") return { ...m, jobs_per_s: rate };
  const late = hopLateness(ev, ids);
  return { ...m, wf_per_s: rate, lateness_p50_ms: percentile(late, 0.5), lateness_p99_ms: percentile(late, 0.99) };
}

// Case C: hop lateness and noop pickup (step start − submit time).
export function lightMetrics(ev, hops, noops, submitted, S, cpu) {
  const starts = startTimes(ev);
  const late = hopLateness(ev, hops);
  const pickup = noops.filter((id) => starts.has(`${id}/1`)).map((id) => starts.get(`${id}/1`) - submitted.get(id));
  const steps = 2 * hops.length + noops.length;
  return { case: "C", hops: hops.length, hop_rate: S.C_hop_rate, noop: noops.length, noop_rate: S.C_noop_rate,
    hops_completed: late.length, noop_completed: pickup.length,
    lateness_p50_ms: percentile(late, 0.5), lateness_p99_ms: percentile(late, 0.99),
    pickup_p50_ms: percentile(pickup, 0.5), pickup_p99_ms: percentile(pickup, 0.99),
    duplicates: duplicates(ev), steps_by_worker: byWorker(ev), steps, cpu_s: cpu, cpu_us_per_step: cpuPerStep(cpu, steps) };
}

// Case D: the jobs `worker` started and has not finished.
export function inFlight(dir, worker) {
  const ev = readEvents(dir).filter((e) => e.worker === worker);
  const ended = new Set(ev.filter((e) => e.ev === "end").map((e) => e.wf));
  return [...new Set(ev.filter((e) => e.ev === "start" && !ended.has(e.wf)).map((e) => e.wf))];
}

// Case D: waits (up to D_CAP_S after `killed`) until every held job has finished on another worker; returns those
// that did and when the last one did.
export async function waitDoneElsewhere(dir, held, victim, killed) {
  let done = [];
  while (Date.now() - killed < D_CAP_S * 1000) {
    const ended = new Set(readEvents(dir).filter((e) => e.worker !== victim && e.ev === "end").map((e) => e.wf));
    done = held.filter((id) => ended.has(id));
    if (done.length === held.length) break;
    await sleep(100);
  }
  return { done, at: Date.now() };
}
