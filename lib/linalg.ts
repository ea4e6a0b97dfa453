/**
 * Small dense linear algebra in float64 JavaScript, for what tfjs lacks
 * (it has no eig or SVD): the symmetric eigendecomposition behind PCA and
 * the matrix square root of the Frechet distance.
 *
 * @module
 */
import { ArgumentError, checkInteger, checkOptions } from "./validate.ts";

/** Eigenvalues and eigenvectors of a symmetric matrix. */
export interface JacobiEigen {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** Row-major d x d matrix whose column k is the unit eigenvector of values[k]. */
  vectors: Float64Array;
}

/**
 * Eigendecomposition of a symmetric d x d matrix (row-major, float64) by the
 * cyclic Jacobi method: plane rotations zero one off-diagonal pair at a time
 * until the off-diagonal mass is negligible. Slow for large d (O(d^3) per
 * sweep, ~10 sweeps) but accurate to a few ulps, even for the nearly
 * singular covariances that feature statistics often have.
 *
 * @example
 * jacobiEigen([2, 1, 1, 2], 2).values; // Float64Array [1, 3]
 */
export function jacobiEigen(
  matrix: ArrayLike<number>,
  d: number,
  options: { maxSweeps?: number } = {},
): JacobiEigen {
  const where = "jacobiEigen";
  const { maxSweeps = 100 } = checkOptions(where, options, ["maxSweeps"]);
  checkInteger(where, "d", d, { min: 1 });
  checkInteger(where, "maxSweeps", maxSweeps, { min: 1 });
  if (!matrix || matrix.length !== d * d) {
    throw new ArgumentError(
      where,
      `matrix must hold d * d = ${
        d * d
      } numbers (row-major), got ${matrix?.length}`,
    );
  }
  const a = Float64Array.from(matrix);
  let scale = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const v = a[i * d + j];
      if (!Number.isFinite(v)) {
        throw new ArgumentError(
          where,
          `matrix[${i}][${j}] must be finite, got ${v}`,
        );
      }
      if (
        Math.abs(v - a[j * d + i]) >
          1e-9 * (Math.abs(v) + Math.abs(a[j * d + i]) + 1e-300)
      ) {
        throw new ArgumentError(
          where,
          `matrix must be symmetric, but [${i}][${j}] = ${v} and [${j}][${i}] = ${
            a[j * d + i]
          }`,
        );
      }
      scale += v * v;
    }
  }
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  const tiny = 1e-30 * scale;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) off += a[p * d + q] ** 2;
    }
    if (off <= tiny || off === 0) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        // The smaller rotation angle (|t| <= 1) keeps the method stable.
        const t = (theta >= 0 ? 1 : -1) /
          (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p];
          const akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k];
          const aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p];
          const vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) =>
    a[i * d + i] - a[j * d + j]
  );
  const values = Float64Array.from(order, (i) => a[i * d + i]);
  const vectors = new Float64Array(d * d);
  order.forEach((src, dst) => {
    for (let k = 0; k < d; k++) vectors[k * d + dst] = v[k * d + src];
  });
  return { values, vectors };
}
