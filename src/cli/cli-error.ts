// An error meant for the person at the terminal: printed as one plain line, with its exit code.
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
