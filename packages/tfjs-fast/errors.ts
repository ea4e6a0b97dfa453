/**
 * The error every bad argument of this package throws. The course
 * (lib/validate.ts) re-exports this class, so one `instanceof ArgumentError`
 * covers the package's errors and the course's.
 *
 * @module
 */

/**
 * An error about a bad argument; the message names the function and the
 * argument: `new ArgumentError("adam", "learningRate must be ...")` reads
 * "adam: learningRate must be ...".
 */
export class ArgumentError extends Error {
  /** Creates the error; `where` is the function, `message` what was expected. */
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = "ArgumentError";
  }
}
