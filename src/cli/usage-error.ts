/** A command line or input the CLI refuses: one line on stderr, exit 64 (EX_USAGE). */
export class UsageError extends Error {}
