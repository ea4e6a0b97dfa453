/**
 * One contract for every trainable model of the course, and the one training
 * step they all share.
 *
 * A model says which variables it learns and what its loss of a batch is
 * (the total and its named terms); `trainStep` does the rest, the same way
 * for a k-means-free autoencoder, a VQ-VAE, a PixelCNN prior, a dVAE, a GAN's
 * discriminator and generator, or a neural ODE: differentiate the total,
 * let each optimizer move its group of variables, run the model's
 * `afterStep` hook (an EMA codebook update, dead-code restarts), free every
 * tensor, and return the metrics as plain numbers.
 *
 * ```ts
 * const optimizer = adam(1e-3);
 * for (let i = 0; i < 100; i++) {
 *   const x = sampler.next();
 *   const metrics = trainStep(model, optimizer, x); // { loss, recon, kl, ... }
 *   x.dispose();
 * }
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ArgumentError } from "./validate.ts";

/** What a model's `loss` returns. Every tensor is new; `trainStep` frees them. */
export interface LossTerms {
  /** The scalar that is minimised. */
  total: tf.Scalar;
  /** Named scalar parts of the total (or other scalars to watch), reported as metrics. */
  terms?: Record<string, tf.Scalar>;
  /** Tensors the model's `afterStep` hook needs (e.g. encoder outputs and codes). */
  saved?: Record<string, tf.Tensor>;
}

/** Variables learned by the model: one list, or named groups with their own optimizers. */
export type VariableGroups = tf.Variable[] | Record<string, tf.Variable[]>;

/**
 * The contract every trainable model follows: its variables, its loss of a
 * batch, and optionally a hook that runs after the optimizer step.
 */
export interface Trainable<Batch = tf.Tensor> {
  /** The variables the optimizer moves (named groups get one optimizer each). */
  trainableVariables(): VariableGroups;
  /** The loss of one batch: total, named terms, tensors for the hook. */
  loss(batch: Batch): LossTerms;
  /**
   * Runs after the optimizer step (an EMA update, restarting dead codes);
   * may return more metrics. `saved` is what `loss` saved; do not dispose it.
   */
  afterStep?(
    batch: Batch,
    saved: Record<string, tf.Tensor>,
  ): Record<string, number> | void;
}

/** One optimizer for all variables, or one per variable group. */
export type Optimizers = tf.Optimizer | Record<string, tf.Optimizer>;

/** Metrics of one step: `loss` (the total) and every named term, as plain numbers. */
export type StepResult = Record<string, number>;

/**
 * One gradient step of `model` on `batch`: gradients of the total loss,
 * an optimizer step per variable group, the `afterStep` hook, and the
 * metrics as plain numbers. Frees every tensor it made, also when it throws.
 *
 * @throws ArgumentError when the model breaks the contract or an optimizer is missing
 */
export function trainStep<Batch>(
  model: Trainable<Batch>,
  optimizer: Optimizers,
  batch: Batch,
): StepResult {
  const where = "trainStep";
  if (
    model === null || typeof model !== "object" ||
    typeof model.trainableVariables !== "function" ||
    typeof model.loss !== "function"
  ) {
    throw new ArgumentError(
      where,
      "model must follow the Trainable contract: trainableVariables() and loss(batch)",
    );
  }
  const groups = groupsOf(where, model.trainableVariables());
  const updates = updatesOf(
    optimizersFor(where, optimizer, Object.keys(groups)),
    groups,
  );
  const kept: tf.Tensor[] = [];
  try {
    return tf.tidy(() => stepCore(model, updates, batch, kept));
  } finally {
    tf.dispose(kept);
  }
}

/** Each optimizer with the variables it moves, in a fixed order. */
type Updates = [tf.Optimizer, tf.Variable[]][];

/** The step itself, as the notebooks show it. */
function stepCore<Batch>(
  model: Trainable<Batch>,
  updates: Updates,
  batch: Batch,
  kept: tf.Tensor[],
): StepResult {
  let out: LossTerms = { total: tf.scalar(0) };
  const { value, grads } = gradientsOf(() => {
    out = model.loss(batch);
    // Terms and saved tensors must outlive the gradient tape's own tidy.
    kept.push(
      ...Object.values(out.terms ?? {}),
      ...Object.values(out.saved ?? {}),
    );
    kept.forEach((t) => tf.keep(t));
    return out.total;
  }, updates.flatMap(([, variables]) => variables));
  for (const [optimizer, variables] of updates) {
    // One call per optimizer, each variable always at the same position (Adam
    // keys its moments by position); a variable without a gradient is skipped.
    optimizer.applyGradients(
      variables.map((v) => ({ name: v.name, tensor: grads[v.name] ?? null! })),
    );
  }
  const metrics: StepResult = { loss: value.dataSync()[0] };
  for (const [name, t] of Object.entries(out.terms ?? {})) {
    metrics[name] = t.dataSync()[0];
  }
  return { ...metrics, ...model.afterStep?.(batch, out.saved ?? {}) };
}

/**
 * `tf.variableGrads`, except that a loss that throws (or returns no scalar)
 * leaves nothing behind: tfjs keeps copies of the tensors the forward pass
 * saved for backpropagation and frees them only in a backward pass, so on a
 * failure a backward pass from a constant runs before the error is rethrown.
 */
function gradientsOf(
  loss: () => tf.Scalar,
  variables: tf.Variable[],
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  let failure: unknown = null;
  const guarded = () => {
    try {
      const total = loss();
      if (!(total instanceof tf.Tensor) || total.rank !== 0) {
        throw new ArgumentError(
          "trainStep",
          `model.loss(batch).total must be a scalar tensor, got ${
            total instanceof tf.Tensor
              ? `shape [${total.shape}]`
              : String(total)
          }`,
        );
      }
      return total;
    } catch (e) {
      failure = e;
      return tf.scalar(0);
    }
  };
  try {
    const result = tf.variableGrads(guarded, variables);
    if (failure === null) return result;
  } catch (e) {
    if (failure === null) throw e;
  }
  throw failure;
}

/** Groups the variables by optimizer: one optimizer shared by several groups gets them all at once. */
function updatesOf(
  optimizers: Record<string, tf.Optimizer>,
  groups: Record<string, tf.Variable[]>,
): Updates {
  const byOptimizer = new Map<tf.Optimizer, tf.Variable[]>();
  const owner = new Map<string, string>();
  for (const [group, variables] of Object.entries(groups)) {
    for (const v of variables) {
      if (owner.has(v.name)) {
        throw new ArgumentError(
          "trainStep",
          `variable ${v.name} is in two groups (${
            owner.get(v.name)
          } and ${group}) of model.trainableVariables()`,
        );
      }
      owner.set(v.name, group);
    }
    const list = byOptimizer.get(optimizers[group]) ?? [];
    byOptimizer.set(optimizers[group], [...list, ...variables]);
  }
  return [...byOptimizer.entries()];
}

function groupsOf(
  where: string,
  v: VariableGroups,
): Record<string, tf.Variable[]> {
  const groups = Array.isArray(v) ? { all: v } : v;
  if (groups === null || typeof groups !== "object") {
    throw new ArgumentError(
      where,
      "model.trainableVariables() must return variables or named groups of them",
    );
  }
  for (const [name, list] of Object.entries(groups)) {
    if (!Array.isArray(list) || list.some((x) => !(x instanceof tf.Variable))) {
      throw new ArgumentError(
        where,
        `model.trainableVariables() group ${name} must be an array of tf.Variable`,
      );
    }
  }
  return groups;
}

function optimizersFor(
  where: string,
  optimizer: Optimizers,
  groups: string[],
): Record<string, tf.Optimizer> {
  if (isOptimizer(optimizer)) {
    return Object.fromEntries(groups.map((g) => [g, optimizer]));
  }
  if (optimizer === null || typeof optimizer !== "object") {
    throw new ArgumentError(
      where,
      `optimizer must be a tf.Optimizer or one per variable group (${
        groups.join(", ")
      })`,
    );
  }
  for (const g of groups) {
    if (!isOptimizer(optimizer[g])) {
      throw new ArgumentError(
        where,
        `no optimizer for the variable group ${JSON.stringify(g)}; pass { ${
          groups.map((k) => `${k}: adam(...)`).join(", ")
        } }`,
      );
    }
  }
  const extra = Object.keys(optimizer).filter((k) => !groups.includes(k));
  if (extra.length > 0) {
    throw new ArgumentError(
      where,
      `optimizer for unknown variable group ${
        JSON.stringify(extra[0])
      }; the model's groups are ${groups.join(", ")}`,
    );
  }
  return optimizer as Record<string, tf.Optimizer>;
}

// tf.Optimizer's instanceof reads properties of its operand, so guard null first.
function isOptimizer(x: unknown): x is tf.Optimizer {
  return x !== null && typeof x === "object" && x instanceof tf.Optimizer;
}
