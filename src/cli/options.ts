// Option definitions shared by every CLI command.

/** `--help/-h`, accepted by every command. */
export const helpOption = { help: { type: 'boolean', short: 'h' } } as const;
