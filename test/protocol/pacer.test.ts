import { describe, expect, it } from 'vitest';
import { Pacer } from '../../src/limiter/pacer.js';

/** Most sends in any half-open window [t, t + 1000). */
function windowMax(times: number[]): number {
  let max = 0;
  let first = 0;
  for (let i = 0; i < times.length; i++) {
    while ((times[i] as number) - (times[first] as number) >= 1000) first++;
    max = Math.max(max, i - first + 1);
  }
  return max;
}

/** Drive a pacer on a simulated clock, sleeping exactly as long as it asks. */
function simulate(
  maxEps: number,
  messages: number,
  step = (wait: number) => Math.max(1, Math.ceil(wait)),
) {
  let now = 0;
  const pacer = new Pacer(maxEps, () => now);
  const times: number[] = [];
  while (times.length < messages) {
    const wait = pacer.tryAcquire();
    if (wait === 0) times.push(now);
    else now += step(wait);
  }
  return times;
}

describe('Pacer', () => {
  it.each([1, 7, 100, 2000, 5000])(
    'never lets more than %i messages into any 1-second window',
    (maxEps) => {
      const times = simulate(maxEps, maxEps * 5 + 3);
      expect(windowMax(times)).toBeLessThanOrEqual(maxEps);
    },
  );

  it('holds the rule even when timers fire late or early by varying amounts', () => {
    let n = 0;
    const times = simulate(500, 4000, (wait) =>
      Math.max(0.1, wait * (0.5 + ((n++ * 7919) % 100) / 50)),
    );
    expect(windowMax(times)).toBeLessThanOrEqual(500);
  });

  it('reaches the configured rate, spread over the second rather than in one burst', () => {
    const times = simulate(2000, 10_000);
    const seconds = ((times.at(-1) as number) - (times[0] as number)) / 1000;
    expect(10_000 / seconds).toBeGreaterThan(1900);
    // No 100 ms slice carries much more than its share (200), unlike a per-second burst of 2000.
    const perSlice = new Map<number, number>();
    for (const t of times)
      perSlice.set(Math.floor(t / 100), (perSlice.get(Math.floor(t / 100)) ?? 0) + 1);
    expect(Math.max(...perSlice.values())).toBeLessThanOrEqual(260);
  });

  it('refuses a maxEps that is not a positive integer', () => {
    expect(() => new Pacer(0)).toThrow(RangeError);
    expect(() => new Pacer(2.5)).toThrow(RangeError);
  });

  it('acquire() waits and can be aborted', async () => {
    const pacer = new Pacer(1);
    await pacer.acquire();
    const controller = new AbortController();
    const waiting = pacer.acquire(controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
  });
});

describe('Pacer.markSent', () => {
  it('keeps the 1-second rule between actual sends when sends happen late', () => {
    let now = 0;
    const pacer = new Pacer(10, () => now);
    const sendTimes: number[] = [];
    while (sendTimes.length < 100) {
      const wait = pacer.tryAcquire();
      if (wait > 0) {
        now += wait;
        continue;
      }
      // Every third send is handed over 7 ms after its slot was taken (a GC, a slow transport).
      if (sendTimes.length % 3 === 0) now += 7;
      sendTimes.push(now);
      pacer.markSent();
    }
    let max = 0;
    let first = 0;
    for (let i = 0; i < sendTimes.length; i++) {
      while ((sendTimes[i] as number) - (sendTimes[first] as number) >= 1000) first++;
      max = Math.max(max, i - first + 1);
    }
    expect(max).toBeLessThanOrEqual(10);
  });
});
