/**
 * Check cells for exercises. A check cell runs a few tests against the
 * student's code and says in plain words what is right or wrong; it throws
 * (so the autograder scores it zero) when something is wrong.
 *
 * ```ts
 * await checkExercise("kmeans-assign", () => {
 *   expectClose(assign(points, centroids), [0, 1, 1], "assignments of three points");
 * });
 * ```
 *
 * Under the autograder (tasks/grade.ts) the same functions also record
 * what they saw, for the grader to compare in its own process; see
 * "Grading mode" at the end of this file.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { written } from "./iopub.ts";
import { ArgumentError } from "./validate.ts";

// The built-ins and tf entry points the checks rely on, taken when this
// module is first imported. Under the grader that happens in a setup cell
// before any submitted code runs, so a later `Math.abs = () => 0` or a
// patched Array.prototype or Tensor.prototype does not reach these.
const {
  create: objectCreate,
  defineProperty,
  freeze,
  getOwnPropertyDescriptor,
  getPrototypeOf,
  hasOwn,
} = Object;
const {
  apply: reflectApply,
  defineProperty: reflectDefineProperty,
  deleteProperty,
  ownKeys,
  setPrototypeOf: reflectSetPrototypeOf,
} = Reflect;
const { abs: mathAbs } = Math;
const arrayFrom = Array.from;
const arrayIsArray = Array.isArray;
const isView = ArrayBuffer.isView;
const numberIsFinite = Number.isFinite;
const toText = String;
const jsonParse = JSON.parse;
const hasInstance = Function.prototype[Symbol.hasInstance];
const typedArrayLength = getOwnPropertyDescriptor(
  getPrototypeOf(Uint8Array.prototype),
  "length",
)!.get!;
const PromiseClass = Promise;
const later = setTimeout;
const TensorClass = tf.Tensor;
const tensorDataSync = tf.Tensor.prototype.dataSync;
const jupyter = jupyterOrNull();
const broadcast = jupyter?.broadcast;

function jupyterOrNull():
  | { broadcast?: (...args: unknown[]) => unknown }
  | null {
  try {
    // Its getter throws outside `deno jupyter`.
    return (Deno as unknown as {
      jupyter?: { broadcast?: (...args: unknown[]) => unknown };
    }).jupyter ?? null;
  } catch {
    return null;
  }
}

/** `list.push(value)` that no patched Array.prototype can intercept. */
function append<T>(list: T[], value: T): void {
  defineProperty(list, list.length, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

function isTensor(x: unknown): x is tf.Tensor {
  return reflectApply(hasInstance, TensorClass, [x]) as boolean;
}

/**
 * A wrong answer; the message says what was expected and what came out. Its
 * stack names no line of this file (the check's machinery is not the
 * student's business); `frames` are kept for errors thrown by the student's
 * own code.
 */
export class ExerciseError extends Error {
  /** Creates the error. */
  constructor(message: string, frames: string[] = []) {
    super(message);
    this.name = "ExerciseError";
    this.stack = [`${this.name}: ${message}`, ...frames].join("\n");
  }
}

/** The stack frames of `e` that are the student's (not this file, tfjs or Deno's internals). */
function studentFrames(e: unknown): string[] {
  const stack = e instanceof Error ? e.stack ?? "" : "";
  return stack.split("\n").filter((line) =>
    /^\s+at /.test(line) && !line.includes("/lib/exercise.ts") &&
    !line.includes("node_modules") && !line.includes("ext:")
  );
}

/** Which input of a tf.grad/tf.grads call got no gradient (recorded while a check runs). */
interface MissingGradient {
  index: number;
  count: number;
  shape: number[];
}

type Gradients = (
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allowNoGradients?: boolean,
) => { value: tf.Tensor; grads: (tf.Tensor | null)[] };

/**
 * Runs `fn` while watching the engine's gradient computations: tfjs says
 * only "Cannot compute gradient of y=f(x) with respect to x"; this records
 * which input of the tf.grad/tf.grads call it was about.
 */
async function watchingGradients<T>(
  fn: () => Promise<T>,
): Promise<
  { ok: true; result: T; missing: MissingGradient | null } | {
    ok: false;
    error: unknown;
    missing: MissingGradient | null;
  }
> {
  const engine = tf.engine() as unknown as { gradients: Gradients };
  const original = engine.gradients;
  let missing: MissingGradient | null = null;
  engine.gradients = function (this: unknown, f, xs, dy, allowNoGradients) {
    let out;
    try {
      out = original.call(this, f, xs, dy, allowNoGradients);
    } catch (e) {
      // No path from any input: the first one is as good a name as any.
      if (xs.length > 0) missing = { index: -1, count: xs.length, shape: [] };
      throw e;
    }
    const index = out.grads.findIndex((g) => g == null);
    if (index >= 0 && !allowNoGradients) {
      missing = { index, count: xs.length, shape: xs[index].shape };
    }
    return out;
  };
  try {
    return { ok: true, result: await fn(), missing };
  } catch (error) {
    return { ok: false, error, missing };
  } finally {
    engine.gradients = original;
  }
}

const ORDINALS = ["first", "second", "third", "fourth", "fifth"];

function describeMissing(m: MissingGradient | null): string {
  if (!m) return "the input";
  if (m.index < 0) {
    return m.count === 1 ? "the input" : `any of the ${m.count} inputs`;
  }
  const shape = `(shape [${m.shape.join(", ")}])`;
  if (m.count === 1) return `the input ${shape}`;
  const nth = ORDINALS[m.index] ?? `#${m.index + 1}`;
  return `the ${nth} of the ${m.count} inputs ${shape}`;
}

type Numeric = number | ArrayLike<number> | number[][] | tf.Tensor;

function flat(x: Numeric): number[] {
  const out: number[] = [];
  const walk = (v: unknown) => {
    if (typeof v === "number") append(out, v);
    else if (isTensor(v)) walkList(reflectApply(tensorDataSync, v, []));
    else if (typeof v === "object" && v !== null) walkList(v);
    // Other values (strings, booleans, undefined) carry no numbers.
  };
  const walkList = (v: unknown) => {
    // Real arrays and typed arrays by index (no iterator to patch), the rest
    // (an array-like of the student's own making) the way Array.from reads it.
    const list = arrayIsArray(v)
      ? v
      : isView(v)
      ? null
      : arrayFrom(v as ArrayLike<unknown>);
    if (list === null) {
      const n = reflectApply(typedArrayLength, v, []) as number;
      for (let i = 0; i < n; i++) walk((v as ArrayLike<unknown>)[i]);
    } else {
      for (let i = 0; i < list.length; i++) walk(list[i]);
    }
  };
  if (isTensor(x)) walkList(reflectApply(tensorDataSync, x, []));
  else if (typeof x === "number") append(out, x);
  else walk(x);
  return out;
}

function show(values: number[]): string {
  const head = values.slice(0, 6).map((v) => Number(v.toPrecision(5))).join(
    ", ",
  );
  return values.length === 1
    ? head
    : `[${head}${values.length > 6 ? ", ..." : ""}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Throws `ExerciseError` with `message` unless `condition` holds. */
export function expect(condition: unknown, message: string): asserts condition {
  const holds = condition ? true : false;
  record({ kind: "expect", what: toText(message), value: holds });
  if (!holds) throw new ExerciseError(message);
}

/**
 * The options of `expectClose`: only rtol and atol, finite and >= 0 (an
 * instructor's typo must not loosen a check unseen). Written with the
 * built-ins this module keeps, like the rest of the checks.
 */
function checkTolerances(
  options: unknown,
): { rtol?: number; atol?: number } {
  if (options === null || typeof options !== "object") {
    throw new ArgumentError(
      "expectClose",
      `options must be an object like { rtol, atol }, got ${toText(options)}`,
    );
  }
  const keys = ownKeys(options);
  for (let i = 0; i < keys.length; i++) {
    const key = toText(keys[i]);
    if (key === "rtol" || key === "atol") continue;
    const closest = key[0] === "a" ? "atol" : "rtol";
    throw new ArgumentError(
      "expectClose",
      `unknown option "${key}" in options (did you mean "${closest}"?); known options: rtol, atol`,
    );
  }
  const o = options as { rtol?: unknown; atol?: unknown };
  checkTolerance("rtol", o.rtol);
  checkTolerance("atol", o.atol);
  return o as { rtol?: number; atol?: number };
}

function checkTolerance(name: string, value: unknown): void {
  if (
    value !== undefined &&
    !(typeof value === "number" && value >= 0 && numberIsFinite(value))
  ) {
    throw new ArgumentError(
      "expectClose",
      `options.${name} must be a finite number >= 0, got ${toText(value)}`,
    );
  }
}

/**
 * Throws `ExerciseError` unless `actual` and `expected` (numbers, arrays or
 * tensors) have the same size and agree within atol + rtol * |expected|.
 */
export function expectClose(
  actual: Numeric,
  expected: Numeric,
  what: string,
  options: { rtol?: number; atol?: number } = {},
): void {
  const { rtol = 1e-4, atol = 1e-5 } = checkTolerances(options);
  if (actual === undefined || actual === null) {
    throw new ExerciseError(
      `${what}: your code returned ${actual}; return a value`,
    );
  }
  // Under the grader the actual values are recorded before `expected` is
  // looked at; a submission's run records nothing else (the grader takes the
  // expected values, tolerances and message from the master's run).
  const a = flat(actual);
  if (grading?.role === "submission") {
    record({
      kind: "close",
      what: toText(what),
      actual: encodeValues(a),
      actualShape: isTensor(actual) ? arrayFrom(actual.shape) : null,
    });
  }
  const e = flat(expected);
  if (grading?.role === "master") {
    record({
      kind: "close",
      what: toText(what),
      expected: encodeValues(e),
      expectedShape: isTensor(expected) ? arrayFrom(expected.shape) : null,
      rtol,
      atol,
    });
  }
  // The grader applies these same rules to the records (tasks/grade.ts).
  if (isTensor(actual) && isTensor(expected)) {
    if (!sameShape(actual.shape, expected.shape)) {
      throw new ExerciseError(
        `${what}: expected shape [${expected.shape}], got [${actual.shape}]`,
      );
    }
  }
  if (a.length !== e.length) {
    throw new ExerciseError(
      `${what}: expected ${e.length} values, got ${a.length}`,
    );
  }
  for (let i = 0; i < a.length; i++) {
    if (!(mathAbs(a[i] - e[i]) <= atol + rtol * mathAbs(e[i]))) {
      throw new ExerciseError(
        `${what}: expected ${show(e)}, got ${
          show(a)
        } (first difference at index ${i}: ` +
          `${a[i]} vs ${e[i]})`,
      );
    }
  }
}

/**
 * Runs the tests of exercise `id`. Prints "Exercise <id>: correct" when they
 * pass. When they fail it throws an `ExerciseError` that says what is wrong,
 * or that the exercise is not implemented yet.
 */
export async function checkExercise(
  id: string,
  tests: () => void | Promise<void>,
): Promise<void> {
  if (typeof id !== "string" || id === "") {
    throw new ArgumentError(
      "checkExercise",
      `id must be an exercise id like "02-iwae", got ${toText(id)}`,
    );
  }
  if (typeof tests !== "function") {
    throw new ArgumentError(
      "checkExercise",
      `tests must be a function () => { ... } holding the checks, got ${
        toText(tests)
      }`,
    );
  }
  if (grading) restoreBuiltins(current ?? toText(id));
  depth++;
  // A scope frees the tensors the tests create, even when they are async.
  tf.engine().startScope();
  let outcome;
  try {
    outcome = await watchingGradients(async () => await tests());
  } finally {
    tf.engine().endScope();
    if (--depth === 0 && grading) await flushRecords();
  }
  if (!outcome.ok) {
    throw explain(id, outcome.error, outcome.missing);
  }
  console.log(`✅ Exercise ${id}: correct`);
}

function explain(
  id: string,
  e: unknown,
  missing: MissingGradient | null,
): ExerciseError {
  const message = e instanceof Error ? e.message : String(e);
  if (/not implemented/i.test(message)) {
    return new ExerciseError(
      `❌ Exercise ${id}: not implemented yet (fill in the cell above)`,
    );
  }
  if (e instanceof ExerciseError) {
    return new ExerciseError(`❌ Exercise ${id}: ${message}`);
  }
  if (/Cannot compute gradient of y=f\(x\) with respect to x/.test(message)) {
    return new ExerciseError(
      `❌ Exercise ${id}: no gradient reaches ${describeMissing(missing)}. ` +
        "The value may be right, but the result is not computed from that " +
        "input by operations tfjs can differentiate: a copy of another tensor " +
        "(e.g. q.clone()), a constant, or numbers read out with dataSync() and " +
        "put back carry no gradient to it.",
      studentFrames(e),
    );
  }
  if (e instanceof ReferenceError) {
    return new ExerciseError(
      `❌ Exercise ${id}: ${message}: run the first cell (the imports) first, ` +
        "then the cells above this one (after a kernel restart nothing is defined yet)",
      studentFrames(e),
    );
  }
  const name = e instanceof Error ? e.name : "Error";
  return new ExerciseError(
    `❌ Exercise ${id}: your code threw ${name}: ${message}`,
    studentFrames(e),
  );
}

// ---------------------------------------------------------------- grading mode
//
// Used only by the autograder, tasks/grade.ts (what it guarantees, and what
// not, is in docs/instructors.md). The grader starts each kernel with
// COURSE_GRADING naming a token file, {"nonce": "...", "role": "master" |
// "submission"}, and imports this module in a setup cell before any
// submitted code runs; at that import the file is removed and the variable
// deleted. (A file, not the variable's value: /proc/self/environ keeps a
// process's first environment after it is deleted.) Then:
//
// - every expect/expectClose of a check the grader runs adds a record, and
//   the check's records go out as one display output of type CHECK_MIME,
//   with the nonce, when its checkExercise ends: the master's run records the
//   expected values, tolerances and messages, a submission's run only its
//   actual values (and whether each expect held). The grader compares them
//   in its own process. The nonce marks genuine records; the score does not
//   rest on it staying secret, since adding records, genuine or not, fails
//   the count.
// - `__courseGrading__`, a global that submitted code can neither replace
//   nor shadow, gives the check cells the grader runs the course's own
//   checkExercise/expect/expectClose and the master's imports, and puts back
//   the built-ins (Math, JSON, Reflect, Object, Array, Number, String,
//   Promise, the typed arrays, their prototypes and iterators,
//   tf.Tensor and its prototype) to the state they had at this import.

/** The display type of a grading record (also in tasks/grade.ts). */
const CHECK_MIME = "application/vnd.course.check+json";
const GRADING_ENV = "COURSE_GRADING";
const GRADING_GLOBAL = "__courseGrading__";

interface Grading {
  nonce: string;
  role: "master" | "submission";
}

/** The grader's token, taken at import; null outside the grader. */
const grading: Grading | null = takeGradingToken();
/** The exercise whose check cell is running (set by `__courseGrading__.check`). */
let current: string | null = null;
/** Between `__courseGrading__.check` and the end of its checkExercise. */
let active = false;
/** Set when a check is started again while one runs: it then scores nothing. */
let spoiled = false;
/** Nesting of checkExercise calls; the outermost sends the records. */
let depth = 0;
let sequence = 0;
let pending: Record<string, unknown>[] = [];

function takeGradingToken(): Grading | null {
  // Asked first, so that importing the course without --allow-env never prompts.
  const env = Deno.permissions.querySync?.({
    name: "env",
    variable: GRADING_ENV,
  });
  if (env?.state !== "granted") return null;
  const path = Deno.env.get(GRADING_ENV);
  if (path === undefined) return null;
  Deno.env.delete(GRADING_ENV);
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    // Another copy of this module (imported by another URL) took it first.
    return null;
  }
  try {
    Deno.removeSync(path);
  } catch {
    Deno.writeTextFileSync(path, "");
  }
  const token = jsonParse(text) as Partial<Grading>;
  if (
    typeof token?.nonce !== "string" ||
    (token.role !== "master" && token.role !== "submission")
  ) {
    throw new Error(`${GRADING_ENV}: not a grading token: ${path}`);
  }
  return freeze({ nonce: token.nonce, role: token.role });
}

function encodeValues(values: number[]): (number | string)[] {
  // JSON has no NaN or infinities: those travel as "NaN", "Infinity", "-Infinity".
  const out: (number | string)[] = [];
  for (let i = 0; i < values.length; i++) {
    append(out, numberIsFinite(values[i]) ? values[i] : toText(values[i]));
  }
  return out;
}

/**
 * Keeps one grading record for the running check (nothing outside the
 * grader, nothing outside a check cell the grader runs). Consecutive
 * passing expects with the same message are kept as one (with a count): a
 * guard in a callback that the student's code calls once per evaluation
 * would otherwise make the number of records depend on how the answer is
 * written.
 */
function record(fields: Record<string, unknown>): void {
  if (!grading || !active) return;
  const last = pending[pending.length - 1];
  if (
    fields.kind === "expect" && fields.value === true && last !== undefined &&
    last.kind === "expect" && last.value === true && last.what === fields.what
  ) {
    last.count = (last.count as number) + 1;
    return;
  }
  append(pending, {
    seq: sequence++,
    ...fields,
    ...(fields.kind === "expect" ? { count: 1 } : {}),
  });
}

/**
 * Sends the running check's records as one display output (thousands of
 * separate messages overflow the kernel's channel) and returns once the
 * kernel has written it (lib/iopub.ts), so while this cell is still the one
 * running: the kernel only queues the message, labels it with the request
 * current when it goes out, and reports the cell finished without waiting.
 * (Where that cannot be told, it lets the event loop send it, at least.)
 */
async function flushRecords(): Promise<void> {
  if (!grading || !active) return;
  const body = {
    v: 1,
    token: grading.nonce,
    exercise: current,
    records: pending,
    ...(spoiled ? { spoiled: true } : {}),
  };
  active = false;
  spoiled = false;
  pending = [];
  if (typeof broadcast !== "function") {
    throw new Error("grading records need the Jupyter kernel (Deno.jupyter)");
  }
  reflectApply(broadcast, jupyter, ["display_data", {
    data: { [CHECK_MIME]: body },
    metadata: {},
    transient: {},
  }]);
  if (await written()) return;
  await new PromiseClass((resolve) =>
    reflectApply(later, globalThis, [resolve, 0])
  );
}

interface BuiltinSnapshot {
  name: string;
  target: object;
  keys: PropertyKey[];
  /** Own property descriptors at import (null-prototype copies). */
  descriptors: Record<PropertyKey, PropertyDescriptor>;
  proto: object | null;
  /** Only `keys` are restored (globalThis: the notebook's own globals stay). */
  partial: boolean;
}

const DESCRIPTOR_FIELDS = [
  "value",
  "writable",
  "get",
  "set",
  "enumerable",
  "configurable",
] as const;

function copyDescriptor(d: PropertyDescriptor): PropertyDescriptor {
  const copy = objectCreate(null) as Record<string, unknown>;
  for (let i = 0; i < DESCRIPTOR_FIELDS.length; i++) {
    const f = DESCRIPTOR_FIELDS[i];
    if (hasOwn(d, f)) copy[f] = (d as Record<string, unknown>)[f];
  }
  return copy as PropertyDescriptor;
}

function sameDescriptor(a: PropertyDescriptor, b: PropertyDescriptor): boolean {
  for (let i = 0; i < DESCRIPTOR_FIELDS.length; i++) {
    const f = DESCRIPTOR_FIELDS[i];
    const x = hasOwn(a, f) ? (a as Record<string, unknown>)[f] : undefined;
    const y = hasOwn(b, f) ? (b as Record<string, unknown>)[f] : undefined;
    if (!(x === y || (x !== x && y !== y))) return false;
  }
  return true;
}

function snapshotOf(
  name: string,
  target: object,
  keys: PropertyKey[],
  partial = false,
): BuiltinSnapshot {
  const descriptors = objectCreate(null) as Record<
    PropertyKey,
    PropertyDescriptor
  >;
  const present: PropertyKey[] = [];
  for (let i = 0; i < keys.length; i++) {
    const d = getOwnPropertyDescriptor(target, keys[i]);
    if (d) {
      descriptors[keys[i]] = copyDescriptor(d);
      append(present, keys[i]);
    }
  }
  return {
    name,
    target,
    keys: present,
    descriptors,
    proto: getPrototypeOf(target),
    partial,
  };
}

function snapshotBuiltins(): BuiltinSnapshot[] {
  const typedArray = getPrototypeOf(Uint8Array) as object;
  const arrayIterator = getPrototypeOf([][Symbol.iterator]()) as object;
  const typed = [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
  ];
  const objects: [string, object][] = [
    ["Object.prototype", Object.prototype],
    ["Object", Object],
    ["Function.prototype", Function.prototype],
    ["Array.prototype", Array.prototype],
    ["Array", Array],
    ["ArrayIterator", arrayIterator],
    ["Iterator.prototype", getPrototypeOf(arrayIterator) as object],
    ["Math", Math],
    ["JSON", JSON],
    ["Reflect", Reflect],
    ["Number", Number],
    ["Number.prototype", Number.prototype],
    ["String", String],
    ["String.prototype", String.prototype],
    ["Boolean.prototype", Boolean.prototype],
    ["Symbol", Symbol],
    ["Promise", Promise],
    ["Promise.prototype", Promise.prototype],
    ["Map.prototype", Map.prototype],
    ["Set.prototype", Set.prototype],
    ["Error.prototype", Error.prototype],
    ["TypedArray", typedArray],
    ["TypedArray.prototype", (typedArray as { prototype: object }).prototype],
    ...typed.map((t): [string, object] => [`${t.name}.prototype`, t.prototype]),
    ["tf.Tensor", tf.Tensor],
    ["tf.Tensor.prototype", tf.Tensor.prototype],
    ["tf.Variable.prototype", tf.Variable.prototype],
  ];
  const globals = [
    "Object",
    "Function",
    "Array",
    "Math",
    "JSON",
    "Reflect",
    "Number",
    "String",
    "Boolean",
    "Symbol",
    "Promise",
    "Map",
    "Set",
    "Error",
    "TypeError",
    "RangeError",
    "ArrayBuffer",
    "isFinite",
    "isNaN",
    "parseFloat",
    "parseInt",
    ...typed.map((t) => t.name),
  ];
  return [
    ...objects.map(([name, target]) =>
      snapshotOf(name, target, ownKeys(target))
    ),
    snapshotOf("globalThis", globalThis, globals, true),
  ];
}

const BUILTINS: BuiltinSnapshot[] = grading ? snapshotBuiltins() : [];

function label(name: string, key: PropertyKey): string {
  return typeof key === "symbol"
    ? `${name}[${toText(key)}]`
    : `${name}.${toText(key)}`;
}

/**
 * Puts the built-ins back as they were at import (index loops only: the
 * iterators themselves may be patched). Records what it changed, so the
 * report can say so; throws when something cannot be put back (made
 * non-configurable by the submission).
 */
function restoreBuiltins(exercise: string): void {
  const changed: string[] = [];
  const stuck: string[] = [];
  for (let i = 0; i < BUILTINS.length; i++) {
    const s = BUILTINS[i];
    if (!s.partial) {
      const keys = ownKeys(s.target);
      for (let k = 0; k < keys.length; k++) {
        if (hasOwn(s.descriptors, keys[k])) continue;
        append(changed, label(s.name, keys[k]));
        if (!deleteProperty(s.target, keys[k])) {
          append(stuck, label(s.name, keys[k]));
        }
      }
    }
    for (let k = 0; k < s.keys.length; k++) {
      const key = s.keys[k];
      const was = s.descriptors[key];
      const now = getOwnPropertyDescriptor(s.target, key);
      if (now && sameDescriptor(now, was)) continue;
      append(changed, label(s.name, key));
      if (!reflectDefineProperty(s.target, key, was)) {
        append(stuck, label(s.name, key));
      }
    }
    if (getPrototypeOf(s.target) !== s.proto) {
      append(changed, `${s.name} [[Prototype]]`);
      if (!reflectSetPrototypeOf(s.target, s.proto)) {
        append(stuck, `${s.name} [[Prototype]]`);
      }
    }
  }
  if (changed.length > 0) record({ kind: "restored", names: changed });
  if (stuck.length > 0) {
    throw new ExerciseError(
      `❌ Exercise ${exercise}: the notebook changed built-ins the checks use ` +
        `so that they cannot be put back (${stuck.join(", ")})`,
    );
  }
}

if (grading) {
  let bindings: Record<string, unknown> | null = null;
  const kit = objectCreate(null) as {
    prepare(given: Record<string, unknown>): void;
    check(id: string): Record<string, unknown>;
  };
  // Called once, by the grader's setup cell: the master's imports.
  kit.prepare = (given) => {
    if (bindings !== null) throw new Error(`${GRADING_GLOBAL}: prepared twice`);
    bindings = objectCreate(null) as Record<string, unknown>;
    const keys = ownKeys(given);
    for (let i = 0; i < keys.length; i++) {
      const d = getOwnPropertyDescriptor(given, keys[i]);
      if (d && hasOwn(d, "value")) bindings[keys[i] as string] = d.value;
    }
    freeze(bindings);
  };
  // The first line of every check cell the grader runs.
  kit.check = (id) => {
    // Only the grader's line at the top of a check cell calls this, once per
    // cell; called again while a check runs (by submitted code) it would
    // throw away that check's records, so that check scores nothing.
    if (active && depth > 0) {
      spoiled = true;
      return namesFor();
    }
    // (Active with no checkExercise running: the previous check cell failed
    // before it called checkExercise, and this cell starts afresh.)
    current = toText(id);
    active = true;
    spoiled = false;
    pending = [];
    restoreBuiltins(current);
    return namesFor();
  };
  const namesFor = () => {
    const names = objectCreate(null) as Record<string, unknown>;
    const keys = bindings === null ? [] : ownKeys(bindings);
    for (let i = 0; i < keys.length; i++) {
      names[keys[i] as string] = bindings![keys[i] as string];
    }
    names.checkExercise = checkExercise;
    names.expect = expect;
    names.expectClose = expectClose;
    return names;
  };
  defineProperty(globalThis, GRADING_GLOBAL, {
    value: freeze(kit),
    writable: false,
    enumerable: false,
    configurable: false,
  });
}
