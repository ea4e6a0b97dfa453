/**
 * A training loop that shows live progress and keeps a history.
 *
 * In a Jupyter notebook (the Deno kernel) the progress is one output that is
 * updated in place (`display_data`, then `update_display_data` with the same
 * display id); in a terminal it is a progress bar on stderr; in a log (CI) it
 * is a line every tenth of the run. A loss that turns NaN or infinite stops
 * training with an error that says which metric and at which step.
 *
 * Kernel > Interrupt (SIGINT) stops a running loop between two steps: the
 * model keeps what it learned, `trainLoop` returns the history so far and
 * says at which step it stopped, and the kernel lives on. (The Deno kernel
 * dies on SIGINT unless someone listens, so inside Jupyter the listener,
 * once a loop has run, stays for the session; an interrupt outside a loop
 * then only prints a note. In a terminal, Ctrl+C stops a loop the same way
 * and a second Ctrl+C ends the program.)
 *
 * @module
 */
import { written } from "./iopub.ts";
import { ArgumentError, checkInteger, checkOptions } from "./validate.ts";

/** What one training step reports: a loss, or several named metrics. */
export type StepMetrics = number | Record<string, number>;

/** Metrics recorded per step, plus the step index and the elapsed seconds. */
export interface History {
  /** Step indices (0-based). */
  step: number[];
  /** Seconds since the start of the loop, after each recorded step. */
  time: number[];
  /** One array per metric, aligned with `step`. */
  [metric: string]: number[];
}

/** Raised when a metric becomes NaN or infinite. */
export class NonFiniteLossError extends Error {
  /** The step at which it happened. */
  readonly step: number;
  /** The metric that was not finite. */
  readonly metric: string;
  /** Creates the error. */
  constructor(step: number, metric: string, value: number, history: History) {
    const last = history[metric]?.at(-1);
    super(
      `training stopped at step ${step}: ${metric} is ${value}` +
        (last !== undefined
          ? ` (it was ${last} at step ${history.step.at(-1)})`
          : "") +
        `. Try a smaller learning rate, or check the inputs for NaN.`,
    );
    this.name = "NonFiniteLossError";
    this.step = step;
    this.metric = metric;
  }
}

/** Options for `trainLoop`. */
export interface TrainLoopOptions {
  /** Number of steps. */
  steps: number;
  /** Title shown on the progress bar. */
  label?: string;
  /** Record metrics every `recordEvery` steps (default 1). */
  recordEvery?: number;
  /** Show no progress at all. */
  quiet?: boolean;
  /** Called after each recorded step (e.g. to draw a sample grid). */
  onRecord?: (
    step: number,
    metrics: Record<string, number>,
  ) => void | Promise<void>;
}

function formatMetric(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1000 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(4);
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${
    String(Math.round(s % 60)).padStart(2, "0")
  }s`;
}

function escapeHTML(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

interface JupyterLike {
  broadcast(type: string, content: Record<string, unknown>): Promise<void>;
}

function jupyter(): JupyterLike | null {
  try {
    // Deno.jupyter exists only inside the kernel; elsewhere the getter throws.
    const j = (Deno as unknown as { jupyter?: JupyterLike }).jupyter;
    return j && typeof j.broadcast === "function" ? j : null;
  } catch {
    return null;
  }
}

let displayCounter = 0;

/**
 * SIGINT while loops run: the flag the running loop reads between steps.
 * Inside Jupyter the listener is installed once and kept (removing it would
 * let the next interrupt kill the kernel); elsewhere it lives only while a
 * loop runs, so Ctrl+C outside a loop ends the program as usual.
 */
const interrupts = {
  running: 0,
  requested: false,
  persistent: false,
  installed: false,
};

function onInterrupt(): void {
  if (interrupts.running > 0) {
    if (interrupts.requested && !interrupts.persistent) Deno.exit(130);
    interrupts.requested = true;
  } else if (interrupts.persistent) {
    console.log(
      "Interrupt: no training loop is running, so nothing was stopped " +
        "(only trainLoop stops between steps). Kernel > Restart stops anything else.",
    );
  }
}

function listenForInterrupts(): void {
  interrupts.running++;
  interrupts.requested = false;
  if (interrupts.installed) return;
  try {
    Deno.addSignalListener("SIGINT", onInterrupt);
    interrupts.installed = true;
    interrupts.persistent = jupyter() !== null;
  } catch { /* no signals here (e.g. a platform or sandbox without them) */ }
}

function stopListening(): void {
  interrupts.running--;
  if (interrupts.running > 0 || !interrupts.installed) return;
  interrupts.requested = false;
  if (!interrupts.persistent) {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    interrupts.installed = false;
  }
}

/** Lets the event loop run (a signal listener only fires then). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A progress display: one updating output in Jupyter, a bar on a terminal,
 * a line every 10% in a log.
 */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #start = performance.now();
  readonly #jupyter = jupyter();
  readonly #displayId = `progress-${Date.now()}-${displayCounter++}`;
  #shown = false;
  #lastDraw = -Infinity;
  #lastLoggedTenth = -1;
  #stoppedAt: number | null = null;
  #note = "";
  readonly #isTerminal: boolean;

  /** Creates a progress display for `total` steps. */
  constructor(label: string, total: number) {
    this.#label = label;
    this.#total = total;
    let tty = false;
    try {
      tty = Deno.stderr.isTerminal();
    } catch { /* no tty information */ }
    this.#isTerminal = tty;
  }

  /** Seconds since the display was created. */
  get elapsed(): number {
    return (performance.now() - this.#start) / 1000;
  }

  #stats(done: number, metrics: Record<string, number>): string {
    const eta = done > 0 ? (this.elapsed / done) * (this.#total - done) : NaN;
    const ms = Object.entries(metrics).map(([k, v]) =>
      `${k}=${formatMetric(v)}`
    ).join(" ");
    return `${done}/${this.#total} [${formatSeconds(this.elapsed)}<${
      formatSeconds(eta)
    }] ${ms}`;
  }

  #fraction(done: number): number {
    return this.#total > 0 ? done / this.#total : 1;
  }

  /** Shows that `done` steps are finished with the latest metrics. Throttled to ~5 updates/s. */
  async update(
    done: number,
    metrics: Record<string, number>,
    force = false,
  ): Promise<void> {
    // The last update of a run: at its end, or where it was interrupted.
    const final = force && (done >= this.#total || this.#stoppedAt !== null);
    if (!this.#jupyter && !this.#isTerminal) {
      // A log (CI): a line per tenth of the run, however fast the steps are.
      const tenth = Math.floor((10 * done) / Math.max(this.#total, 1));
      if (tenth === this.#lastLoggedTenth && !final) return;
      this.#lastLoggedTenth = tenth;
      console.error(this.#line(done, metrics));
      return;
    }
    const now = performance.now();
    if (!force && now - this.#lastDraw < 200 && done < this.#total) return;
    this.#lastDraw = now;
    const stats = this.#stats(done, metrics);
    const text = this.#line(done, metrics);
    if (this.#jupyter) {
      const html =
        `<div style="font-family:monospace">${escapeHTML(this.#label)} ` +
        `<progress value="${
          this.#fraction(done)
        }" max="1" style="width:240px"></progress> ` +
        `${escapeHTML(stats + this.#note)}</div>`;
      await this.#jupyter.broadcast(
        this.#shown ? "update_display_data" : "display_data",
        {
          data: { "text/plain": text, "text/html": html },
          metadata: {},
          transient: { display_id: this.#displayId },
        },
      );
      this.#shown = true;
      // The kernel only queues it. The last one waits until it is written,
      // with every update before it, so that the bar is under the cell that
      // ran the loop and not the next one (lib/iopub.ts); the others do not.
      if (final) await written();
    } else {
      Deno.stderr.writeSync(new TextEncoder().encode(`\r${text}\x1b[K`));
      if (done >= this.#total || this.#stoppedAt !== null) {
        Deno.stderr.writeSync(new TextEncoder().encode("\n"));
      }
    }
  }

  /**
   * Shows that the run stopped early after `done` steps (an interrupt): the
   * display keeps the bar where it stopped and says so.
   */
  async stop(done: number, metrics: Record<string, number>): Promise<void> {
    this.#stoppedAt = done;
    this.#note = ` (interrupted)`;
    this.#lastLoggedTenth = -1;
    await this.update(done, metrics, true);
  }

  /** The progress as one line of text: label, bar, counts, times, metrics. */
  #line(done: number, metrics: Record<string, number>): string {
    const filled = Math.round(this.#fraction(done) * 24);
    const bar = "█".repeat(filled) + "░".repeat(24 - filled);
    return `${this.#label} ${bar} ${this.#stats(done, metrics)}${this.#note}`;
  }
}

function record(
  history: History,
  i: number,
  start: number,
  metrics: Record<string, number>,
): void {
  history.step.push(i);
  history.time.push((performance.now() - start) / 1000);
  for (const [name, value] of Object.entries(metrics)) {
    (history[name] ??= []).push(value);
  }
}

/**
 * Runs `step(i)` for i = 0..steps-1, records what it returns, shows live
 * progress and stops with `NonFiniteLossError` when a metric is NaN or
 * infinite. Returns the history. `step` should do its tensor work inside
 * `tf.tidy` and return plain numbers.
 *
 * Kernel > Interrupt (or Ctrl+C) stops the loop after the step that is
 * running: it prints at which step it stopped and returns the history of the
 * steps done; the model keeps their updates.
 */
export async function trainLoop(
  step: (i: number) => StepMetrics | Promise<StepMetrics>,
  options: TrainLoopOptions,
): Promise<History> {
  if (typeof step !== "function") {
    throw new ArgumentError(
      "trainLoop",
      "step must be a function (i) => loss or metrics",
    );
  }
  checkOptions("trainLoop", options ?? null, [
    "steps",
    "label",
    "recordEvery",
    "quiet",
    "onRecord",
  ]);
  const steps = checkInteger("trainLoop", "options.steps", options?.steps, {
    min: 0,
  });
  const recordEvery = checkInteger(
    "trainLoop",
    "options.recordEvery",
    options.recordEvery ?? 1,
    {
      min: 1,
    },
  );
  const history: History = { step: [], time: [] };
  const progress = options.quiet
    ? null
    : new Progress(options.label ?? "train", steps);
  const start = performance.now();
  let latest: Record<string, number> = {};
  let lastYield = start;
  let stoppedAfter: number | null = null;
  listenForInterrupts();
  try {
    for (let i = 0; i < steps; i++) {
      const raw = await step(i);
      const metrics = typeof raw === "number" ? { loss: raw } : raw;
      if (
        metrics !== null && typeof metrics === "object" &&
        typeof (metrics as { dataSync?: unknown }).dataSync === "function"
      ) {
        throw new ArgumentError(
          "trainLoop",
          `step must return plain numbers, got a tf.Tensor at step ${i}: return e.g. loss.dataSync()[0], or trainStep's metrics`,
        );
      }
      if (metrics === null || typeof metrics !== "object") {
        throw new ArgumentError(
          "trainLoop",
          `step must return a number or a record of numbers, got ${
            String(raw)
          } at step ${i}`,
        );
      }
      for (const [name, value] of Object.entries(metrics)) {
        if (typeof value !== "number" || !Number.isFinite(value)) {
          throw new NonFiniteLossError(i, name, value as number, history);
        }
      }
      latest = metrics;
      if (i % recordEvery === 0 || i === steps - 1) {
        record(history, i, start, metrics);
        await options.onRecord?.(i, metrics);
      }
      await progress?.update(i + 1, latest);
      // A signal listener runs only when the event loop does: let it, a few
      // times a second (a sync step never would).
      if (performance.now() - lastYield > 100) {
        await yieldToEventLoop();
        lastYield = performance.now();
      }
      if (interrupts.requested && i < steps - 1) {
        if (history.step.at(-1) !== i) record(history, i, start, metrics);
        stoppedAfter = i + 1;
        break;
      }
    }
  } finally {
    stopListening();
  }
  if (stoppedAfter !== null) {
    await progress?.stop(stoppedAfter, latest);
    console.log(
      `${
        options.label ?? "train"
      }: interrupted after step ${stoppedAfter} of ${steps}. ` +
        `The model keeps what those ${stoppedAfter} steps learned; ` +
        `the returned history has them.`,
    );
    return history;
  }
  await progress?.update(steps, latest, true);
  return history;
}
