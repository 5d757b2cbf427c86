/** A clock the test moves by hand. */
export class ManualClock {
  constructor(public now = Date.UTC(2030, 0, 1, 12, 0, 0)) {}

  advance(ms: number): void {
    this.now += ms;
  }

  readonly read = (): number => this.now;
}
