/**
 * `npm run bench:vm`: what one call into a workflow sandbox costs with and without the timeout the
 * Temporal SDK passes to each call (`vm` `timeout`: isolateExecutionTimeout, 5 s, not configurable).
 * With a timeout Node starts a watchdog thread for the call and joins it afterwards. The SDK calls
 * into the sandbox at least three times per activation (activate, tryUnblockConditions,
 * concludeActivation in @temporalio/worker lib/workflow/vm-shared.js), and a transfer has at least
 * six activations (its start and one per local activity). Alternating rounds in one process;
 * prints CPU and wall time per call and the ratio.
 */
import vm from 'node:vm';

const CALLS = Number(process.env.BENCH_VM_CALLS ?? 20_000);
const ROUNDS = 3;
const context = vm.createContext({ n: 0 });
const script = new vm.Script('n++');

function round(options: vm.RunningScriptOptions): { cpuUs: number; wallUs: number } {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) script.runInContext(context, options);
  const used = process.cpuUsage(cpu);
  return { cpuUs: (used.user + used.system) / CALLS, wallUs: ((performance.now() - t0) * 1000) / CALLS };
}

const results = { plain: [] as { cpuUs: number; wallUs: number }[], timeout: [] as { cpuUs: number; wallUs: number }[] };
round({}); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  results.plain.push(round({}));
  results.timeout.push(round({ timeout: 5000 }));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const plainCpu = median(results.plain.map((x) => x.cpuUs));
const timeoutCpu = median(results.timeout.map((x) => x.cpuUs));
console.log(`vm call, no timeout      ${plainCpu.toFixed(1)} µs CPU, ${median(results.plain.map((x) => x.wallUs)).toFixed(1)} µs wall per call`);
console.log(`vm call, timeout 5000 ms ${timeoutCpu.toFixed(1)} µs CPU, ${median(results.timeout.map((x) => x.wallUs)).toFixed(1)} µs wall per call (${(timeoutCpu / plainCpu).toFixed(1)}x the CPU)`);
console.log(`${CALLS} calls per round, ${ROUNDS} alternating rounds, medians; node ${process.version}`);
