/** What a chaos run observed: violations (must stay empty), faults injected, and counters. */
export interface ChaosViolation {
  check: string;
  transfer?: string;
  account?: string;
  message: string;
}

export class Findings {
  readonly violations: ChaosViolation[] = [];
  readonly faults = new Map<string, number>();
  readonly counters = new Map<string, number>();

  constructor(private readonly log: (line: string) => void) {}

  violation(v: ChaosViolation): void {
    this.violations.push(v);
    this.log(`VIOLATION ${v.check}${v.transfer ? ` ${v.transfer}` : ''}${v.account ? ` ${v.account}` : ''}: ${v.message}`);
  }

  fault(kind: string): void {
    this.faults.set(kind, (this.faults.get(kind) ?? 0) + 1);
  }

  count(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }
}
