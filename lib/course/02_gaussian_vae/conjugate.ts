/**
 * A latent-variable model of notebook 02 that can be solved exactly:
 * z ~ N(0, 1), x | z ~ N(a z, c). Its evidence p(x) = N(x; 0, a^2 + c) is
 * closed form, and so is the beta objective of a Gaussian q(z) = N(m, s^2),
 * `E_q[log p(x|z)] - beta KL(q || p(z))` (beta = 1: the ELBO). The notebook
 * fits q by gradient ascent, as a VAE's encoder does, and measures what the
 * image models cannot show: the ELBO gap, the beta objective against
 * log p(x), and the rate-distortion trade-off along beta.
 *
 * ```ts
 * const model = new LinearGaussianModel({ a: 1, c: 0.5 });
 * const qs = new BetaObjectiveFit(model, [0.5, 1, 2]);
 * const optimizer = adam(0.05);
 * for (let i = 0; i < 500; i++) trainStep(qs, optimizer, 1.5);
 * qs.results(1.5); // per beta: objective, rate, distortion, mean, variance
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  ArgumentError,
  checkFinite,
  checkNumber,
  checkOptions,
} from "../../validate.ts";
import type { LossTerms, Trainable } from "../../model.ts";

const LOG_2PI = Math.log(2 * Math.PI);

/** The beta objective of q = N(mean, e^logVar) and its two parts (tensors of the shape of `mean`). */
export type BetaObjectiveTerms = {
  /** E_q[log p(x|z)] - beta KL(q || p(z)), in nats (beta = 1: the ELBO). */
  objective: tf.Tensor;
  /** E_q (x - a z)^2: the expected squared reconstruction error. */
  distortion: tf.Tensor;
  /** KL(q || N(0, 1)) in nats. */
  rate: tf.Tensor;
};

/**
 * The beta objective of the linear-Gaussian model in closed form: no
 * sampling, so its gradient is exact.
 */
function betaObjective(
  { a, c }: { a: number; c: number },
  x: number | tf.Tensor,
  mean: tf.Tensor,
  logVar: tf.Tensor,
  beta: number | tf.Tensor,
): BetaObjectiveTerms {
  const variance = logVar.exp();
  // E_q (x - a z)^2 = (x - a m)^2 + a^2 s^2 for z ~ N(m, s^2).
  const distortion = tf.sub(x, mean.mul(a)).square().add(variance.mul(a * a));
  const logLikelihood = distortion.div(-2 * c).sub(
    0.5 * Math.log(2 * Math.PI * c),
  );
  const rate = variance.add(mean.square()).sub(1).sub(logVar).mul(0.5);
  return {
    objective: logLikelihood.sub(rate.mul(beta)),
    distortion,
    rate,
  };
}

/**
 * The model z ~ N(0, 1), x | z ~ N(a z, c) with a scalar latent and a
 * scalar observation: everything about it is a Gaussian integral.
 */
export class LinearGaussianModel {
  /** Decoder weight: the mean of x given z is a z. */
  readonly a: number;
  /** Decoder variance c > 0. */
  readonly c: number;

  /** Checks a (finite) and c (> 0). */
  constructor(options: { a: number; c: number }) {
    const where = "LinearGaussianModel";
    if (options === undefined) {
      throw new ArgumentError(where, "options must be an object { a, c }");
    }
    const { a, c } = checkOptions(where, options, ["a", "c"]);
    this.a = checkNumber(where, "options.a", a);
    this.c = checkNumber(where, "options.c", c, { min: 0, minExclusive: true });
  }

  /** log p(x) = log N(x; 0, a^2 + c) in nats (float64). */
  logEvidence(x: number): number {
    checkNumber("LinearGaussianModel.logEvidence", "x", x);
    const v = this.a * this.a + this.c;
    return -0.5 * (LOG_2PI + Math.log(v)) - (x * x) / (2 * v);
  }

  /**
   * The beta objective `E_q[log p(x|z)] - beta KL(q || N(0, 1))` of
   * q = N(mean, e^logVar), elementwise (x, mean, logVar and beta
   * broadcast), with its distortion and rate: differentiable tensors (the
   * caller disposes them). beta = 1 gives the ELBO.
   *
   * ```ts
   * const { objective } = model.betaObjective(1.5, tf.scalar(1), tf.scalar(-1));
   * ```
   *
   * @param x one observation, or a tensor of them (one q each)
   * @throws ArgumentError for non-tensor mean/logVar, a non-finite x or a negative beta
   */
  betaObjective(
    x: number | tf.Tensor,
    mean: tf.Tensor,
    logVar: tf.Tensor,
    beta: number | tf.Tensor = 1,
  ): BetaObjectiveTerms {
    const where = "LinearGaussianModel.betaObjective";
    if (x instanceof tf.Tensor) checkFinite(where, "x", x);
    else checkNumber(where, "x", x);
    if (!(mean instanceof tf.Tensor) || !(logVar instanceof tf.Tensor)) {
      throw new ArgumentError(where, "mean and logVar must be tensors");
    }
    if (typeof beta === "number") {
      checkNumber(where, "beta", beta, { min: 0 });
    }
    return tf.tidy(() => betaObjective(this, x, mean, logVar, beta));
  }
}

/** One fitted q of a `BetaObjectiveFit` (plain numbers, float64). */
export interface BetaFitResult {
  /** The weight of the KL term. */
  beta: number;
  /** The beta objective at the fitted q, nats. */
  objective: number;
  /** Its ELBO (the same q with beta = 1), nats. */
  elbo: number;
  /** KL(q || p(z)), nats. */
  rate: number;
  /** E_q (x - a z)^2. */
  distortion: number;
  /** Mean of q. */
  mean: number;
  /** Variance of q. */
  variance: number;
}

/**
 * One Gaussian q_beta = N(mean, e^logVar) per beta, fitted together by
 * gradient ascent on their beta objectives for one observation x (the
 * batch). The objectives are independent (each q appears in one term), so
 * maximising their sum maximises each. Starts at the prior N(0, 1).
 * Follows the `Trainable` contract: `trainStep(fit, adam(0.05), x)`.
 */
export class BetaObjectiveFit implements Trainable<number> {
  /** The means of the q's, one per beta. */
  readonly mean: tf.Variable;
  /** The log-variances of the q's. */
  readonly logVar: tf.Variable;
  /** The betas, in the order given. */
  readonly betas: readonly number[];
  readonly #model: LinearGaussianModel;
  readonly #beta: tf.Tensor1D;

  /** Checks the arguments, then makes one q per beta at the prior. */
  constructor(model: LinearGaussianModel, betas: number[]) {
    const where = "BetaObjectiveFit";
    if (!(model instanceof LinearGaussianModel)) {
      throw new ArgumentError(where, "model must be a LinearGaussianModel");
    }
    if (!Array.isArray(betas) || betas.length === 0) {
      throw new ArgumentError(where, "betas must be a non-empty number[]");
    }
    betas.forEach((b, i) =>
      checkNumber(where, `betas[${i}]`, b, { min: 0, minExclusive: true })
    );
    this.#model = model;
    this.betas = Object.freeze([...betas]);
    this.#beta = tf.tensor1d(betas);
    // Inside tidy: tf.variable would otherwise keep its initial zeros alive.
    [this.mean, this.logVar] = tf.tidy(() => [
      tf.variable(tf.zeros([betas.length])),
      tf.variable(tf.zeros([betas.length])),
    ]);
  }

  /** The means and log-variances. */
  trainableVariables(): tf.Variable[] {
    return [this.mean, this.logVar];
  }

  /** Minus the sum of the beta objectives of q(z | x). */
  loss(x: number): LossTerms {
    checkNumber("BetaObjectiveFit.loss", "x", x);
    const { objective } = betaObjective(
      this.#model,
      x,
      this.mean,
      this.logVar,
      this.#beta,
    );
    return { total: objective.sum().neg() as tf.Scalar };
  }

  /** The fitted q's and their objectives for observation x, recomputed in float64. */
  results(x: number): BetaFitResult[] {
    checkNumber("BetaObjectiveFit.results", "x", x);
    const { a, c } = this.#model;
    const means = this.mean.dataSync();
    const logVars = this.logVar.dataSync();
    return this.betas.map((beta, i) => {
      const [m, lv] = [means[i], logVars[i]];
      const s2 = Math.exp(lv);
      const distortion = (x - a * m) ** 2 + a * a * s2;
      const logLikelihood = -distortion / (2 * c) -
        0.5 * (LOG_2PI + Math.log(c));
      const rate = 0.5 * (s2 + m * m - 1 - lv);
      return {
        beta,
        objective: logLikelihood - beta * rate,
        elbo: logLikelihood - rate,
        rate,
        distortion,
        mean: m,
        variance: s2,
      };
    });
  }

  /** Frees the variables. */
  dispose(): void {
    this.mean.dispose();
    this.logVar.dispose();
    this.#beta.dispose();
  }
}
